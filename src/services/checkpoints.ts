// The checkpoint service: create, finalize, status, readiness and operator actions. Used by the HTTP
// API and by the agent WebSocket gateway alike. Answers come from the read model. This file composes
// the parts: create (checkpoint-create.ts), operator actions (checkpoint-operator.ts), readiness
// (checkpoint-readiness.ts) and maintenance (checkpoint-maintenance.ts); finalize and status are
// here.
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Config } from '../config.js';
import { LEGACY_NAME_PATTERN } from '../domain/checkpoint-name.js';
import { E2epoolError } from '../domain/errors.js';
import { FINALIZE_SOURCE_PATTERN, parseFinalizeStatus } from '../domain/finalize.js';
import type { AgentRequestHandler } from '../gateway/request-dispatch.js';
import type { Runner } from '../inventory/registry.js';
import type { Logger } from '../logger.js';
import { findCheckpoint, type CheckpointRow } from '../store/checkpoint-reads.js';
import type { Db } from '../store/database.js';
import type { MaintenanceState } from '../store/settings-store.js';
import { finalizeSignal } from '../../workflows/messages.js';
import type { AuditRecorder } from './audit.js';
import { createAuditRecorder } from './audit.js';
import { createCheckpointCreator, type CreateOptions, type CreateRequestBody } from './checkpoint-create.js';
import { createMaintenanceSwitch } from './checkpoint-maintenance.js';
import { CHECKPOINT_NOT_FOUND, createCheckpointOperator, type OperatorAnswer } from './checkpoint-operator.js';
import { runnerReadiness, type ReadinessAnswer } from './checkpoint-readiness.js';
import { toCheckpointResponse, type CheckpointResponse } from './checkpoint-read-model.js';
import type { TimingConfig } from './checkpoint-timings.js';
import type { CreateRateLimitSettings } from './create-rate-limit.js';

export type { CheckpointResponse, CreateOptions, CreateRequestBody, OperatorAnswer, ReadinessAnswer };
export type { ReadinessReason } from './checkpoint-readiness.js';
export { CONTROLLER_TIMEOUT, LEGACY_AGENT_CREATE_SECONDS, NOT_AUTHORIZED_FOR_RUNNER, RUNNER_NOT_IN_INVENTORY } from './checkpoint-create.js';
export { CHECKPOINT_NOT_FOUND };

export interface FinalizeRequestBody {
  checkpoint_name: string;
  status: string;
  source?: string | null;
}

export type FinalizeAnswer = { detail: 'Finalize queued'; checkpoint_name: string } | { detail: 'Already finalized'; state: string };

export type CheckpointServiceConfig = TimingConfig & Pick<Config, 'CREATE_TIMEOUT_SECONDS'>;

export interface CheckpointServiceDeps {
  db: Db;
  registry: { getRunner(runnerId: string): Promise<Runner | null> };
  temporal: { client: Client; taskQueue: string };
  config: CheckpointServiceConfig;
  logger: Logger;
  audit?: AuditRecorder;
  /** Per-runner limit on creates that start a workflow (E2EPOOL_CREATE_RATE_LIMIT_*). */
  createRateLimit?: CreateRateLimitSettings;
  /** How long the API waits past the workflow's create deadline before answering 503 (default 15 s). */
  clientGraceSeconds?: number;
  now?: () => number;
  /** Told of every create that ends in an error (metrics count them by code). */
  onCreateRejected?: (err: unknown) => void;
}

export interface CheckpointService {
  create(callerRunnerId: string, body: CreateRequestBody, opts?: CreateOptions): Promise<CheckpointResponse>;
  finalize(callerRunnerId: string, body: FinalizeRequestBody, defaultSource: string): Promise<FinalizeAnswer>;
  status(callerRunnerId: string, name: string): Promise<CheckpointResponse>;
  readiness(runnerId: string): Promise<ReadinessAnswer>;
  retryReset(name: string, actor: string): Promise<OperatorAnswer>;
  release(name: string, actor: string, deleteSnapshot: boolean): Promise<OperatorAnswer>;
  getMaintenance(): Promise<MaintenanceState>;
  setMaintenance(state: { enabled: boolean; message?: string | null }, actor: string): Promise<MaintenanceState>;
}

/** e2epool's finalize validation message, pattern spelled as Python wrote it. */
export const NAME_PATTERN_MESSAGE = 'checkpoint_name must match pattern ^job-[\\w.\\-]+-\\d+-[0-9a-f]{8}$';

export function createCheckpointService(deps: CheckpointServiceDeps): CheckpointService {
  const { db, registry, logger } = deps;
  const { client } = deps.temporal;
  const audit = deps.audit ?? createAuditRecorder(db);

  async function recordAudit(actor: string, action: string, target: string, detail: Record<string, unknown>) {
    try {
      await audit.record({ actor, action, target, detail });
    } catch (err) {
      logger.error({ err, action, target }, 'could not write the audit log');
    }
  }

  const createCheckpoint = createCheckpointCreator({
    db,
    registry,
    temporal: deps.temporal,
    config: deps.config,
    logger,
    now: deps.now ?? Date.now,
    ...(deps.createRateLimit ? { createRateLimit: deps.createRateLimit } : {}),
    ...(deps.clientGraceSeconds !== undefined ? { clientGraceSeconds: deps.clientGraceSeconds } : {}),
  });
  const operator = createCheckpointOperator({ db, client, recordAudit });
  const maintenance = createMaintenanceSwitch({ db, logger, recordAudit });

  /** Another runner's checkpoint reads as missing: a runner token learns nothing about others. */
  async function ownedCheckpoint(callerRunnerId: string, name: string): Promise<CheckpointRow> {
    const row = await findCheckpoint(db, name);
    if (!row || row.runnerId !== callerRunnerId) throw new E2epoolError('checkpoint_not_found', CHECKPOINT_NOT_FOUND);
    return row;
  }

  const service: CheckpointService = {
    async create(callerRunnerId, body, opts = {}) {
      try {
        return await createCheckpoint(callerRunnerId, body, opts);
      } catch (err) {
        deps.onCreateRejected?.(err);
        throw err;
      }
    },

    async finalize(callerRunnerId, body, defaultSource) {
      const name = body.checkpoint_name;
      if (typeof name !== 'string' || !LEGACY_NAME_PATTERN.test(name)) throw new E2epoolError('validation', NAME_PATTERN_MESSAGE);
      const status = parseFinalizeStatus(body.status);
      if (!status) throw new E2epoolError('validation', 'status must be one of success, failure, canceled');
      const source = body.source ?? defaultSource;
      if (typeof source !== 'string' || !FINALIZE_SOURCE_PATTERN.test(source)) {
        throw new E2epoolError('validation', 'source must be 1 to 50 characters of letters, digits, _ . -');
      }
      const row = await ownedCheckpoint(callerRunnerId, name);
      // A finalize while the snapshot is still being taken waits in the workflow for `created`.
      if (row.state !== 'created' && row.state !== 'creating') return { detail: 'Already finalized', state: row.state };
      try {
        await client.workflow.getHandle(name).signal(finalizeSignal, { status, source });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        // Signals to a closed workflow count as already finalized.
        const latest = (await findCheckpoint(db, name)) ?? row;
        return { detail: 'Already finalized', state: latest.state };
      }
      logger.info({ runnerId: callerRunnerId, checkpoint: name, workflowId: name, status, source }, 'finalize signalled');
      return { detail: 'Finalize queued', checkpoint_name: name };
    },

    async status(callerRunnerId, name) {
      return toCheckpointResponse(await ownedCheckpoint(callerRunnerId, name));
    },

    readiness: (runnerId) => runnerReadiness(db, registry, runnerId),
    retryReset: (name, actor) => operator.retryReset(name, actor),
    release: (name, actor, deleteSnapshot) => operator.release(name, actor, deleteSnapshot),
    getMaintenance: () => maintenance.getMaintenance(),
    setMaintenance: (state, actor) => maintenance.setMaintenance(state, actor),
  };
  return service;
}

/**
 * The agent gateway's request handler over this service: the runner is the session's, finalize
 * defaults its source to `agent`, and 403 reads as e2epool's WebSocket answer did.
 */
export function agentRequestHandlerFor(service: CheckpointService): AgentRequestHandler {
  return {
    create: (runnerId, payload, opts) => service.create(runnerId, { job_id: payload.job_id, caller: payload.caller, project_id: payload.project_id }, opts),
    finalize: (runnerId, payload) => service.finalize(runnerId, payload, 'agent'),
    status: (runnerId, payload) => service.status(runnerId, payload.checkpoint_name),
  };
}
