// Operator housekeeping (admin token, checked before the body is read): `POST /api/admin/cleanup`
// runs the retention workflow now (`{"dryRun": true}` only counts) and `GET /api/admin/orphan-snapshots`
// runs the orphan snapshot audit now; both answer with the workflow's report.
import express, { type Request, type Response, type Router } from 'express';
import { STRICT_ROUTING } from '../strict-routing.js';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure, TimeoutFailure } from '@temporalio/common';
import { z } from 'zod';
import { E2epoolError, isErrorCode } from '../../domain/errors.js';
import type { AuditRecorder } from '../../services/audit.js';
import type { Logger } from '../../logger.js';
import { requireAdminToken, type AdminIdentity } from '../auth.js';
import { jsonBody, parseBody } from '../errors.js';

export const cleanupBodySchema = z.object({ dryRun: z.boolean() });

export interface HousekeepingRouterOptions {
  client: Client;
  taskQueue: string;
  retentionDays: number;
  /** E2EPOOL_ADMIN_TOKEN; unset answers 503 `Admin API not configured`. */
  adminToken: string | undefined;
  /** How long a run may take before the request gives up (workflow execution timeout); default 10 min. */
  runTimeoutMs?: number;
  /** A clean-up that deleted (not a dry run) is written here. */
  audit?: AuditRecorder;
  logger?: Logger;
}

/** Turns a failed or timed-out housekeeping run into a domain error with a stable code. */
function runFailure(err: unknown, what: string): unknown {
  if (err instanceof WorkflowExecutionAlreadyStartedError) return new E2epoolError('conflict', `A ${what} run started at the same moment; try again`);
  if (!(err instanceof WorkflowFailedError)) return err;
  let cause: unknown = err.cause;
  while (cause instanceof Error && !(cause instanceof ApplicationFailure) && !(cause instanceof TimeoutFailure) && cause.cause) cause = cause.cause;
  if (cause instanceof TimeoutFailure) return new E2epoolError('temporal_unavailable', `The ${what} did not finish in time (is a checkpoint worker running?)`);
  if (cause instanceof ApplicationFailure && isErrorCode(cause.type)) return new E2epoolError(cause.type, `The ${what} failed: ${cause.message}`);
  return new E2epoolError('internal', `The ${what} failed`);
}

export function createHousekeepingRouter(opts: HousekeepingRouterOptions): Router {
  const router = express.Router(STRICT_ROUTING);
  const timeout = opts.runTimeoutMs ?? 10 * 60_000;
  router.use(['/api/admin/cleanup', '/api/admin/orphan-snapshots'], requireAdminToken(opts.adminToken));

  router.post('/api/admin/cleanup', jsonBody(), async (req: Request, res: Response) => {
    const { dryRun } = parseBody(cleanupBodySchema, req.body);
    try {
      const report = await opts.client.workflow.execute('retentionWorkflow', {
        workflowId: `e2epool-cleanup-${Date.now()}`,
        taskQueue: opts.taskQueue,
        args: [{ retentionDays: opts.retentionDays, dryRun }],
        workflowExecutionTimeout: timeout,
      });
      if (!dryRun) {
        const actor = (res.locals.admin as AdminIdentity | undefined)?.actor ?? 'admin';
        // The rows are gone already; a lost audit row must not turn the answer into an error.
        await opts.audit?.record({ actor, action: 'housekeeping.cleanup', target: null, detail: { ...report } }).catch((err: unknown) => opts.logger?.error({ err }, 'could not write the audit log'));
      }
      res.set('Cache-Control', 'no-store').json(report);
    } catch (err) {
      throw runFailure(err, 'cleanup');
    }
  });

  router.get('/api/admin/orphan-snapshots', async (_req: Request, res: Response) => {
    try {
      const report = await opts.client.workflow.execute('orphanSnapshotAuditWorkflow', {
        workflowId: `e2epool-orphan-audit-${Date.now()}`,
        taskQueue: opts.taskQueue,
        args: [{}],
        workflowExecutionTimeout: timeout,
      });
      res.set('Cache-Control', 'no-store').json(report);
    } catch (err) {
      throw runFailure(err, 'orphan snapshot audit');
    }
  });

  return router;
}
