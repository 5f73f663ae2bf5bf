// The checkpoint service: create, finalize, status, readiness and operator actions. Used by the HTTP
// API and by the agent WebSocket gateway alike. Answers come from the read model; create starts
// (or attaches to) the checkpoint workflow through update-with-start (ARCHITECTURE §4.2–4.4).
import { randomBytes } from 'node:crypto';
import { finalizePendingStates, resettingStates } from '../domain/checkpoint-states.js';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ServiceError,
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  isGrpcServiceError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import type { Config } from '../config.js';
import { checkJobIdFitsName, LEGACY_NAME_PATTERN, mintCheckpointName } from '../domain/checkpoint-name.js';
import { isOnResetPath, type CheckpointState } from '../domain/checkpoint-states.js';
import { E2epoolError, type ErrorCode } from '../domain/errors.js';
import { FINALIZE_SOURCE_PATTERN, parseFinalizeStatus } from '../domain/finalize.js';
import type { AgentRequestHandler } from '../gateway/request-dispatch.js';
import { resolveRoute } from '../store/agent-presence.js';
import type { Runner } from '../inventory/registry.js';
import type { Logger } from '../logger.js';
import type { Db } from '../store/database.js';
import { findCheckpoint, findClaimHolder, findInStates, lastFinalizeQueuedAt, needsAttentionEpisode, type CheckpointRow } from '../store/checkpoint-reads.js';
import { releaseOrphanClaim } from '../store/checkpoint-store.js';
import { MAINTENANCE_KEY, readMaintenance, writeMaintenance, type MaintenanceState } from '../store/settings-store.js';
import { BackendSearchAttribute, CheckpointStateSearchAttribute, JobIdSearchAttribute, NeedsAttentionSearchAttribute, RunnerIdSearchAttribute } from '../../temporal/search-attributes.js';
import { CHECKPOINT_WORKFLOW_TYPE, CREATE_UPDATE_ID, createUpdate, finalizeSignal, releaseSignal, retryResetSignal, type CheckpointWorkflowInput, type CreateResult } from '../../workflows/messages.js';
import type { AuditRecorder } from './audit.js';
import { createAuditRecorder } from './audit.js';
import { markIfOrphanClaim } from './orphan-claims.js';
import { checkpointTimingsFromConfig, type TimingConfig } from './checkpoint-timings.js';
import { toCheckpointResponse, type CheckpointResponse } from './checkpoint-read-model.js';
import { CreateRateLimiter, DEFAULT_CREATE_RATE_LIMIT, type CreateRateLimitSettings } from './create-rate-limit.js';

export type { CheckpointResponse };

export interface CreateRequestBody {
  /** Required over HTTP; the WebSocket path uses the session's runner. */
  runner_id?: string;
  job_id: string;
  caller?: string | null;
  project_id?: string | null;
}

export interface FinalizeRequestBody {
  checkpoint_name: string;
  status: string;
  source?: string | null;
}

export type FinalizeAnswer = { detail: 'Finalize queued'; checkpoint_name: string } | { detail: 'Already finalized'; state: string };

export type ReadinessReason = 'maintenance' | 'drained' | 'needs_attention' | 'reset_in_progress' | 'finalize_in_progress' | 'agent_not_connected';

export type ReadinessAnswer =
  | { runner_id: string; ready: true; detail: null }
  | { runner_id: string; ready: false; reason: ReadinessReason; detail: string };

export interface OperatorAnswer {
  detail: string;
  checkpoint_name: string;
}

export type CheckpointServiceConfig = TimingConfig & Pick<Config, 'CREATE_TIMEOUT_SECONDS'>;

/**
 * The Python e2epool's agent gives up on a create after 30 s: a create from such a (legacy)
 * session gets a deadline below that, so the workflow answers, and compensates, before the agent
 * stops listening. Otherwise the checkpoint would live on and hold the runner with nobody to use it.
 */
export const LEGACY_AGENT_CREATE_SECONDS = 25;

export interface CreateOptions {
  /** The create came from an agent session that never said hello. */
  legacySession?: boolean;
}

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

export const RUNNER_NOT_IN_INVENTORY = 'Runner not found in inventory';
export const CHECKPOINT_NOT_FOUND = 'Checkpoint not found';
export const NOT_AUTHORIZED_FOR_RUNNER = 'Token not authorized for this runner';
export const CONTROLLER_TIMEOUT = 'Controller did not answer in time';
/** e2epool's finalize validation message, pattern spelled as Python wrote it. */
export const NAME_PATTERN_MESSAGE = 'checkpoint_name must match pattern ^job-[\\w.\\-]+-\\d+-[0-9a-f]{8}$';

/** Update failure types thrown by the workflow → our error codes (ARCHITECTURE §4.2). */
const updateFailureCodes: Record<string, ErrorCode> = {
  conflict: 'conflict',
  cooldown: 'cooldown',
  maintenance: 'maintenance',
  draining: 'draining',
  backend: 'backend',
  create_timeout: 'create_timeout',
  not_found: 'runner_not_found',
};

/** gRPC codes worth re-sending the same call for: UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE. */
const TRANSIENT_GRPC = new Set([2, 4, 8, 10, 13, 14]);

function isTransientClientError(err: unknown): boolean {
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return true;
  const grpc = isGrpcServiceError(err) ? err : err instanceof ServiceError && isGrpcServiceError(err.cause) ? err.cause : null;
  return grpc !== null && TRANSIENT_GRPC.has(grpc.code);
}

const ATTACHABLE: ReadonlySet<string> = new Set(['creating', 'created']);

class ControllerTimeout extends Error {}

export function createCheckpointService(deps: CheckpointServiceDeps): CheckpointService {
  const { db, registry, config, logger } = deps;
  const { client, taskQueue } = deps.temporal;
  const now = deps.now ?? Date.now;
  const audit = deps.audit ?? createAuditRecorder(db);
  const limiter = new CreateRateLimiter(deps.createRateLimit ?? DEFAULT_CREATE_RATE_LIMIT);
  const graceMs = (deps.clientGraceSeconds ?? 15) * 1000;

  async function respond(name: string): Promise<CheckpointResponse> {
    const row = await findCheckpoint(db, name);
    // The workflow projects `created` before it answers the update, so the row is there.
    if (!row) throw new E2epoolError('internal', `Checkpoint '${name}' answered but has no record`);
    return toCheckpointResponse(row);
  }

  function failureToError(err: unknown, name: string): E2epoolError {
    const cause = err instanceof WorkflowUpdateFailedError ? err.cause : err;
    if (cause instanceof ApplicationFailure) {
      const code = (cause.type && updateFailureCodes[cause.type]) || 'internal';
      const detail = code === 'runner_not_found' ? RUNNER_NOT_IN_INVENTORY : cause.message;
      return new E2epoolError(code, detail, { checkpoint: name });
    }
    return new E2epoolError('internal', 'Checkpoint creation failed', { checkpoint: name });
  }

  /**
   * Sends the create until it has an outcome: the same update-with-start again on transient errors;
   * the recorded outcome through the handle when the workflow already closed.
   */
  async function runCreate(input: CheckpointWorkflowInput, deadlineMs: number, signal: AbortSignal): Promise<CreateResult> {
    const name = input.name;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new ControllerTimeout();
      try {
        const startWorkflowOperation = new WithStartWorkflowOperation(CHECKPOINT_WORKFLOW_TYPE, {
          workflowId: name,
          taskQueue,
          args: [input],
          workflowIdConflictPolicy: 'USE_EXISTING',
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          typedSearchAttributes: [
            { key: RunnerIdSearchAttribute, value: input.runnerId },
            { key: JobIdSearchAttribute, value: input.jobId },
            { key: BackendSearchAttribute, value: input.backend },
            { key: CheckpointStateSearchAttribute, value: 'creating' },
            { key: NeedsAttentionSearchAttribute, value: false },
          ],
        });
        return await client.withAbortSignal(signal, () =>
          client.workflow.executeUpdateWithStart(createUpdate, { updateId: CREATE_UPDATE_ID, args: [{ deadlineMs }], startWorkflowOperation }),
        );
      } catch (err) {
        if (signal.aborted) throw new ControllerTimeout();
        if (err instanceof WorkflowUpdateFailedError) throw failureToError(err, name);
        if (err instanceof WorkflowExecutionAlreadyStartedError) return readRecordedOutcome(name, deadlineMs, signal);
        if (!isTransientClientError(err)) throw err;
        logger.warn({ checkpoint: name, workflowId: name, attempt, err: (err as Error).message }, 'create call to Temporal failed, sending it again');
        await delay(Math.min(5000, 250 * 2 ** Math.min(attempt, 5)), undefined, { signal }).catch(() => undefined);
      }
    }
  }

  /** The closed (or running) workflow's outcome of update `create`, deduplicated by its id. */
  async function readRecordedOutcome(name: string, deadlineMs: number, signal: AbortSignal): Promise<CreateResult> {
    try {
      return await client.withAbortSignal(signal, () =>
        client.workflow.getHandle(name).executeUpdate(createUpdate, { updateId: CREATE_UPDATE_ID, args: [{ deadlineMs }] }),
      );
    } catch (err) {
      if (signal.aborted) throw new ControllerTimeout();
      if (err instanceof WorkflowUpdateFailedError) throw failureToError(err, name);
      throw err;
    }
  }

  /** Runs `fn` with the API's own deadline: the workflow deadline + grace. */
  async function withClientDeadline<T>(name: string, deadlineMs: number, fn: (signal: AbortSignal) => Promise<T>, grace = graceMs): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(0, deadlineMs + grace - now()));
    try {
      return await fn(controller.signal);
    } catch (err) {
      if (err instanceof ControllerTimeout || controller.signal.aborted) {
        logger.error({ checkpoint: name, workflowId: name }, 'the checkpoint workflow did not answer the create in time');
        throw new E2epoolError('controller_timeout', CONTROLLER_TIMEOUT, { workflowId: name });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async function cancelUnanswered(name: string): Promise<void> {
    try {
      await client.workflow.getHandle(name).cancel();
      logger.warn({ checkpoint: name, workflowId: name }, 'create not answered in time: checkpoint canceled');
    } catch (err) {
      // Not started, or already closed: nothing holds the runner.
      logger.info({ checkpoint: name, workflowId: name, err: (err as Error).message }, 'create not answered in time; nothing to cancel');
    }
  }

  /** Same job on the same runner: answer with the checkpoint it already has (ARCHITECTURE §4.2). */
  async function attach(holder: CheckpointRow): Promise<CheckpointResponse> {
    if (holder.state === 'created') return toCheckpointResponse(holder);
    const deadlineMs = now() + config.CREATE_TIMEOUT_SECONDS * 1000;
    await withClientDeadline(holder.name, deadlineMs, (signal) => readRecordedOutcome(holder.name, deadlineMs, signal));
    return respond(holder.name);
  }

  /** The holder itself when it is this job's checkpoint and still creating or created. */
  function sameJobHolder(holder: CheckpointRow | null, jobId: string): CheckpointRow | null {
    return holder !== null && holder.jobId === jobId && ATTACHABLE.has(holder.state) ? holder : null;
  }

  /** Another runner's checkpoint reads as missing: a runner token learns nothing about others. */
  async function ownedCheckpoint(callerRunnerId: string, name: string): Promise<CheckpointRow> {
    const row = await findCheckpoint(db, name);
    if (!row || row.runnerId !== callerRunnerId) throw new E2epoolError('checkpoint_not_found', CHECKPOINT_NOT_FOUND);
    return row;
  }

  async function needsAttentionCheckpoint(name: string): Promise<CheckpointRow> {
    const row = await findCheckpoint(db, name);
    if (!row) throw new E2epoolError('checkpoint_not_found', CHECKPOINT_NOT_FOUND);
    if (row.state !== 'needs_attention') {
      throw new E2epoolError('invalid_state', `Checkpoint '${name}' is not in needs_attention (state: ${row.state})`, { state: row.state });
    }
    return row;
  }

  async function recordAudit(actor: string, action: string, target: string, detail: Record<string, unknown>) {
    try {
      await audit.record({ actor, action, target, detail });
    } catch (err) {
      logger.error({ err, action, target }, 'could not write the audit log');
    }
  }

  async function createCheckpoint(callerRunnerId: string, body: CreateRequestBody, opts: CreateOptions): Promise<CheckpointResponse> {
    const runnerId = body.runner_id ?? callerRunnerId;
    const jobId = body.job_id;
    // Ownership before existence: whether another runner id exists is not this token's business.
    if (runnerId !== callerRunnerId) throw new E2epoolError('forbidden', NOT_AUTHORIZED_FOR_RUNNER);
    const runner = await registry.getRunner(runnerId);
    if (!runner) throw new E2epoolError('runner_not_found', RUNNER_NOT_IN_INVENTORY);
    if (typeof jobId !== 'string') throw new E2epoolError('validation', 'job_id is required');
    const fits = checkJobIdFitsName(jobId);
    if (!fits.ok) throw new E2epoolError('validation', fits.detail);

    // Read-model pre-checks, in claimRunner's order, so most rejections never start a workflow.
    const maintenance = await readMaintenance(db);
    if (maintenance.enabled) throw new E2epoolError('maintenance', maintenance.message);
    if (runner.drained) throw new E2epoolError('draining', `Runner '${runnerId}' is drained and accepts no new checkpoints`);
    const holder = await findClaimHolder(db, runnerId);
    const mine = sameJobHolder(holder, jobId);
    if (mine) return attach(mine);
    if (config.FINALIZE_COOLDOWN_SECONDS > 0) {
      const last = await lastFinalizeQueuedAt(db, runnerId);
      if (last && now() - last.getTime() < config.FINALIZE_COOLDOWN_SECONDS * 1000) {
        throw new E2epoolError('cooldown', 'Cooldown period active, try again later');
      }
    }
    // A holder still waiting for its job, or being reset, answers 409 at once; one that is
    // cleaning up on the success path is left to the workflow, which waits for it a while.
    if (holder && (await markIfOrphanClaim(db, client, holder, logger))) {
      throw new E2epoolError('conflict', `Active checkpoint '${holder.name}' already exists for runner '${runnerId}' (its workflow has ended: an operator must release it)`);
    }
    if (holder && (holder.state === 'creating' || holder.state === 'created' || isOnResetPath(holder.state as CheckpointState))) {
      throw new E2epoolError('conflict', `Active checkpoint '${holder.name}' already exists for runner '${runnerId}'`);
    }
    if (!limiter.take(runnerId)) throw new E2epoolError('rate_limited', `Too many create requests for runner '${runnerId}'`);

    const name = mintCheckpointName(jobId, Math.floor(now() / 1000), randomBytes(4).toString('hex'));
    const createSeconds = opts.legacySession ? Math.min(config.CREATE_TIMEOUT_SECONDS, LEGACY_AGENT_CREATE_SECONDS) : config.CREATE_TIMEOUT_SECONDS;
    const deadlineMs = now() + createSeconds * 1000;
    // A legacy agent stops listening at 30 s: our own last word must come before that.
    const grace = opts.legacySession ? Math.min(graceMs, (30 - createSeconds - 1) * 1000) : graceMs;
    const input: CheckpointWorkflowInput = {
      name,
      runnerId,
      jobId,
      backend: runner.backend,
      timings: checkpointTimingsFromConfig(config),
      ...(body.project_id ? { projectId: String(body.project_id) } : {}),
      ...(body.caller ? { caller: body.caller } : {}),
    };
    try {
      await withClientDeadline(name, deadlineMs, (signal) => runCreate(input, deadlineMs, signal), grace);
    } catch (err) {
      // Lost a race against a create of the same job (a client retry): attach to the winner.
      if (err instanceof E2epoolError && err.code === 'conflict') {
        const winner = sameJobHolder(await findClaimHolder(db, runnerId), jobId);
        if (winner) return attach(winner);
      }
      // The caller heard "unavailable" and will not use this checkpoint: one that was still
      // created late would hold the runner until its TTL. Canceled, it is compensated or reset.
      if (err instanceof E2epoolError && err.code === 'controller_timeout') await cancelUnanswered(name);
      throw err;
    }
    logger.info({ runnerId, checkpoint: name, workflowId: name, jobId }, 'checkpoint created');
    return respond(name);
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

    async readiness(runnerId) {
      const runner = await registry.getRunner(runnerId);
      if (!runner) throw new E2epoolError('runner_not_found', 'Runner not found');
      const notReady = (reason: ReadinessReason, why: string): ReadinessAnswer => ({ runner_id: runnerId, ready: false, reason, detail: `Runner not ready: ${why}` });
      const maintenance = await readMaintenance(db);
      if (maintenance.enabled) return notReady('maintenance', maintenance.message);
      if (runner.drained) return notReady('drained', 'runner is drained');
      const attention = await findInStates(db, runnerId, ['needs_attention']);
      if (attention) return notReady('needs_attention', `checkpoint '${attention.name}' needs attention (${attention.needsAttentionReason ?? 'unknown reason'})`);
      const resetting = await findInStates(db, runnerId, resettingStates);
      if (resetting) return notReady('reset_in_progress', `checkpoint '${resetting.name}' is resetting the runner (${resetting.state})`);
      const finalizing = await findInStates(db, runnerId, finalizePendingStates);
      if (finalizing) return notReady('finalize_in_progress', `checkpoint '${finalizing.name}' is being finalized (${finalizing.state})`);
      const route = await resolveRoute(db, runnerId);
      if (!route) return notReady('agent_not_connected', 'agent not connected');
      return { runner_id: runnerId, ready: true, detail: null };
    },

    async retryReset(name, actor) {
      const row = await needsAttentionCheckpoint(name);
      try {
        const episode = await needsAttentionEpisode(db, name);
        await client.workflow.getHandle(name).signal(retryResetSignal, { actor, ...(episode !== undefined ? { episode } : {}) });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        throw new E2epoolError('invalid_state', `The workflow of checkpoint '${name}' has closed; release it instead`);
      }
      await recordAudit(actor, 'checkpoint.retry_reset', name, { runnerId: row.runnerId, reason: row.needsAttentionReason });
      return { detail: 'Reset retry requested', checkpoint_name: name };
    },

    async release(name, actor, deleteSnapshot) {
      const row = await needsAttentionCheckpoint(name);
      try {
        const episode = await needsAttentionEpisode(db, name);
        await client.workflow.getHandle(name).signal(releaseSignal, { actor, deleteSnapshot, ...(episode !== undefined ? { episode } : {}) });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        // A stale claim (its workflow is gone): the operator vouches for the runner; free it here.
        await releaseOrphanClaim(db, row, actor);
        await recordAudit(actor, 'checkpoint.release', name, { runnerId: row.runnerId, deleteSnapshot, workflowClosed: true });
        return { detail: 'Released (workflow closed: claim cleared in the database; snapshot and runner pause left as they are)', checkpoint_name: name };
      }
      await recordAudit(actor, 'checkpoint.release', name, { runnerId: row.runnerId, deleteSnapshot, reason: row.needsAttentionReason });
      return { detail: 'Release requested', checkpoint_name: name };
    },

    getMaintenance: () => readMaintenance(db),

    async setMaintenance(state, actor) {
      const value = { enabled: state.enabled, message: state.message ?? '' };
      await writeMaintenance(db, value);
      await recordAudit(actor, state.enabled ? 'maintenance.enable' : 'maintenance.disable', MAINTENANCE_KEY, { message: value.message });
      logger.warn({ maintenance: value.enabled }, value.enabled ? 'maintenance mode on: new creates are refused' : 'maintenance mode off');
      return readMaintenance(db);
    },
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
