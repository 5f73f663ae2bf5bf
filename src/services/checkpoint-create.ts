// Creating a checkpoint: the read-model pre-checks in the claim's order (so most refusals never
// start a workflow), then update-with-start of the checkpoint workflow with the API's own deadline,
// attaching to the same job's checkpoint when it already has one (ARCHITECTURE §4.2–4.4).
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ServiceError,
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  isGrpcServiceError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Config } from '../config.js';
import { checkJobIdFitsName, mintCheckpointName } from '../domain/checkpoint-name.js';
import { isOnResetPath, type CheckpointState } from '../domain/checkpoint-states.js';
import { E2epoolError, type ErrorCode } from '../domain/errors.js';
import type { Runner } from '../inventory/registry.js';
import type { Logger } from '../logger.js';
import { findCheckpoint, findClaimHolder, lastFinalizeQueuedAt, type CheckpointRow } from '../store/checkpoint-reads.js';
import type { Db } from '../store/database.js';
import { readMaintenance } from '../store/settings-store.js';
import { BackendSearchAttribute, CheckpointStateSearchAttribute, JobIdSearchAttribute, NeedsAttentionSearchAttribute, RunnerIdSearchAttribute } from '../../temporal/search-attributes.js';
import type { checkpointV2Workflow } from '../../workflows/checkpoint/workflow.js';
import { CHECKPOINT_WORKFLOW_TYPE, CREATE_UPDATE_ID, createUpdate, type CheckpointWorkflowInput, type CreateResult } from '../../workflows/messages.js';
import { checkpointTimingsFromConfig, type TimingConfig } from './checkpoint-timings.js';
import { toCheckpointResponse, type CheckpointResponse } from './checkpoint-read-model.js';
import { CreateRateLimiter, DEFAULT_CREATE_RATE_LIMIT, type CreateRateLimitSettings } from './create-rate-limit.js';
import { markIfOrphanClaim } from './orphan-claims.js';

export interface CreateRequestBody {
  /** Required over HTTP; the WebSocket path uses the session's runner. */
  runner_id?: string;
  job_id: string;
  caller?: string | null;
  project_id?: string | null;
}

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

export const RUNNER_NOT_IN_INVENTORY = 'Runner not found in inventory';
export const NOT_AUTHORIZED_FOR_RUNNER = 'Token not authorized for this runner';
export const CONTROLLER_TIMEOUT = 'Controller did not answer in time';

export interface CheckpointCreateDeps {
  db: Db;
  registry: { getRunner(runnerId: string): Promise<Runner | null> };
  temporal: { client: Client; taskQueue: string };
  config: TimingConfig & Pick<Config, 'CREATE_TIMEOUT_SECONDS'>;
  logger: Logger;
  /** Per-runner limit on creates that start a workflow (E2EPOOL_CREATE_RATE_LIMIT_*). */
  createRateLimit?: CreateRateLimitSettings;
  /** How long the API waits past the workflow's create deadline before answering 503 (default 15 s). */
  clientGraceSeconds?: number;
  now: () => number;
}

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

export function createCheckpointCreator(deps: CheckpointCreateDeps): (callerRunnerId: string, body: CreateRequestBody, opts: CreateOptions) => Promise<CheckpointResponse> {
  const { db, registry, config, logger, now } = deps;
  const { client, taskQueue } = deps.temporal;
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
        const startWorkflowOperation = new WithStartWorkflowOperation<typeof checkpointV2Workflow>(CHECKPOINT_WORKFLOW_TYPE, {
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

  return createCheckpoint;
}
