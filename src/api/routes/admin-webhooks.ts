// Given-up webhook deliveries for operators (admin token): `GET /api/admin/webhooks` lists the rows
// the dispatcher gave up on, `POST /api/admin/webhooks/:eventId/requeue` makes one pending again
// (attempts from zero) once whatever failed is fixed. A requeue is written to the audit log.
import express, { type Request, type Response, type Router } from 'express';
import { E2epoolError } from '../../domain/errors.js';
import type { Logger } from '../../logger.js';
import { createAuditRecorder, type AuditRecorder } from '../../services/audit.js';
import type { Db } from '../../store/database.js';
import { listGivenUpWebhooks, requeueGivenUpWebhook } from '../../store/webhook-inbox.js';
import { requireAdminToken, type AdminIdentity } from '../auth.js';
import { validationFailed } from '../errors.js';
import { STRICT_ROUTING } from '../strict-routing.js';

export const GIVEN_UP_DEFAULT_LIMIT = 100;
export const GIVEN_UP_MAX_LIMIT = 1000;

export interface AdminWebhooksRouterOptions {
  db: Db;
  /** E2EPOOL_ADMIN_TOKEN; unset answers 503 `Admin API not configured`. */
  adminToken: string | undefined;
  audit?: AuditRecorder;
  logger?: Logger;
  /** A row is pending again: deliver now instead of at the next poll (the dispatcher's notify). */
  onRequeued?: () => void;
}

function parseLimit(raw: unknown): number {
  if (raw === undefined) return GIVEN_UP_DEFAULT_LIMIT;
  const text = typeof raw === 'string' ? raw : '';
  const n = /^\d{1,4}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > GIVEN_UP_MAX_LIMIT) {
    throw validationFailed([{ type: 'value_error', loc: ['query', 'limit'], msg: `Value error, limit must be an integer from 1 to ${GIVEN_UP_MAX_LIMIT}`, input: raw ?? null }]);
  }
  return n;
}

export function createAdminWebhooksRouter(opts: AdminWebhooksRouterOptions): Router {
  const router = express.Router(STRICT_ROUTING);
  const audit = opts.audit ?? createAuditRecorder(opts.db);
  router.use('/api/admin/webhooks', requireAdminToken(opts.adminToken));

  router.get('/api/admin/webhooks', async (req: Request, res: Response) => {
    const limit = parseLimit(req.query.limit);
    res.set('Cache-Control', 'no-store').json({ givenUp: await listGivenUpWebhooks(opts.db, limit) });
  });

  router.post('/api/admin/webhooks/:eventId/requeue', async (req: Request<{ eventId: string }>, res: Response) => {
    const eventId = req.params.eventId;
    if (eventId.length > 200) throw validationFailed([{ type: 'string_too_long', loc: ['path', 'eventId'], msg: 'String should have at most 200 characters', input: eventId }]);
    const result = await requeueGivenUpWebhook(opts.db, eventId);
    if (result.outcome === 'not_found') throw new E2epoolError('not_found', `Webhook event '${eventId}' not found`);
    if (result.outcome === 'not_given_up') {
      throw new E2epoolError('invalid_state', `Webhook event '${eventId}' was not given up (it is ${result.state === 'processed' ? 'already delivered' : 'still pending'})`);
    }
    const actor = (res.locals.admin as AdminIdentity | undefined)?.actor ?? 'admin';
    try {
      await audit.record({ actor, action: 'webhook.requeue', target: eventId, detail: { previousAttempts: result.attempts } });
    } catch (err) {
      // The row is already pending again; losing its audit row must not turn it into an error.
      opts.logger?.error({ err, eventId }, 'could not write the audit log');
    }
    opts.onRequeued?.();
    res.status(202).json({ detail: 'Webhook requeued', event_id: eventId, previous_attempts: result.attempts });
  });

  return router;
}
