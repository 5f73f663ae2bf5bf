// Delivers stored webhook events (webhook_inbox) to checkpoint workflows as finalize signals.
//
// Rows are claimed with a lease: one UPDATE ... WHERE event_id IN (SELECT ... FOR UPDATE SKIP LOCKED)
// pushes next_attempt_at past the longest a delivery can take, so several instances never take the
// same row and no transaction stays open while Temporal is called (PGlite has one connection; the
// webhook route must keep answering meanwhile). A crash mid-delivery lets the lease expire and the
// row is delivered again; the workflow records a second finalize as ignored.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Db } from '../store/database.js';
import {
  claimDueInboxRows,
  findActiveCheckpointForJob,
  markInboxDone,
  markInboxGivenUp,
  scheduleInboxRetry,
  type ActiveCheckpoint,
  type InboxRow,
} from '../store/webhook-inbox.js';
import type { Logger } from '../logger.js';
import { finalizeSignal } from '../../workflows/messages.js';
import { parseFinalizeStatus, type FinalizeStatus } from '../domain/finalize.js';

export type { WebhookOutcome } from '../store/webhook-inbox.js';
import type { WebhookOutcome } from '../store/webhook-inbox.js';
// The inbox queries live in the store; the ones tests and housekeeping call are re-exported here.
export { listGivenUpWebhooks, purgeProcessedWebhooks, requeueGivenUpWebhook, requeueWebhook, type GivenUpWebhook, type RequeueOutcome } from '../store/webhook-inbox.js';

export interface WebhookDispatcherOptions {
  db: Db;
  /** Only `workflow.getHandle(..).signal` and `withDeadline` are used. */
  temporalClient: Pick<Client, 'workflow' | 'withDeadline'>;
  logger: Logger;
  /** How often pending rows are looked for when nothing calls notify(). */
  pollIntervalMs: number;
  /** Failed deliveries before a row is given up (kept, outcome gave_up). Default 20. */
  maxAttempts?: number;
  /** Retry waits: first, doubled per attempt, capped. Default 1 s … 5 min. */
  backoff?: { initialMs: number; maxMs: number };
  /** Deadline of one signal call (the SDK retries UNAVAILABLE inside it). Default 10 s. */
  signalTimeoutMs?: number;
  /** Rows claimed per round. Default 20. */
  batchSize?: number;
}

export interface DispatchResult {
  eventId: string;
  provider: string;
  jobId: string | null;
  /** 'retry' when the delivery failed and will be tried again. */
  outcome: WebhookOutcome | 'retry';
  checkpoint?: string;
}

export interface WebhookDispatcher {
  start(): void;
  /** Stops the loop and waits for the round in progress. */
  stop(): Promise<void>;
  /** One round: claims due rows and delivers them. For tests and for the loop. */
  dispatchOnce(): Promise<DispatchResult[]>;
  /** A new row was stored: run a round now instead of at the next poll. */
  notify(): void;
}

type Row = Record<string, any>;

/** Exponential backoff for the n-th failed attempt (1-based), capped. */
export function webhookRetryDelayMs(attempt: number, backoff: { initialMs: number; maxMs: number }): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** exponent);
}

export function createWebhookDispatcher(opts: WebhookDispatcherOptions): WebhookDispatcher {
  const { db, temporalClient, logger } = opts;
  const maxAttempts = opts.maxAttempts ?? 20;
  const backoff = opts.backoff ?? { initialMs: 1000, maxMs: 5 * 60_000 };
  const signalTimeoutMs = opts.signalTimeoutMs ?? 10_000;
  const batchSize = opts.batchSize ?? 20;
  // A claimed row stays invisible this long: longer than any delivery of a whole batch can take.
  const leaseMs = signalTimeoutMs * batchSize + 30_000;

  let running = false;
  let wake: (() => void) | null = null;
  let woken = false;
  let loop: Promise<void> | null = null;

  async function claimDue(): Promise<InboxRow[]> {
    return claimDueInboxRows(db, { leaseMs, batchSize });
  }

  async function findActiveCheckpoint(provider: string, jobId: string, payload: Row): Promise<ActiveCheckpoint | null> {
    const eventRunner = typeof payload.runnerId === 'number' ? payload.runnerId : null;
    const projectId = typeof payload.projectId === 'string' ? payload.projectId : null;
    return findActiveCheckpointForJob(db, { provider, jobId, gitlabRunnerId: eventRunner, projectId });
  }

  async function markDone(eventId: string, outcome: WebhookOutcome, attempts: number): Promise<void> {
    await markInboxDone(db, eventId, outcome, attempts);
  }

  async function deliver(row: InboxRow): Promise<DispatchResult> {
    const base = { eventId: row.event_id, provider: row.provider, jobId: row.job_id };
    const payload = (row.payload && typeof row.payload === 'object' ? row.payload : {}) as Row;
    const status = parseFinalizeStatus(row.status);
    const log = { provider: row.provider, eventId: row.event_id, jobId: row.job_id };
    if (!row.job_id || !status) {
      logger.warn({ ...log, status: row.status }, 'webhook inbox row without a job id or a valid status; dropped');
      await markDone(row.event_id, 'invalid', row.attempts);
      return { ...base, outcome: 'invalid' };
    }

    const checkpoint = await findActiveCheckpoint(row.provider, row.job_id, payload);
    if (!checkpoint) {
      logger.info(log, `webhook for job ${row.job_id}: no active checkpoint, ignored`);
      await markDone(row.event_id, 'no_active_checkpoint', row.attempts);
      return { ...base, outcome: 'no_active_checkpoint' };
    }
    const withCheckpoint = { ...log, checkpoint: checkpoint.name, workflowId: checkpoint.name, runnerId: checkpoint.runner_id };
    const eventRunner = typeof payload.runnerId === 'number' ? payload.runnerId : null;
    // Compared only when both sides know it: a runner without gitlab_runner_id is allowed (warned at load).
    if (row.provider === 'gitlab' && eventRunner !== null && checkpoint.gitlab_runner_id != null && checkpoint.gitlab_runner_id !== eventRunner) {
      logger.warn({ ...withCheckpoint, eventRunner, gitlabRunnerId: checkpoint.gitlab_runner_id },
        `webhook for job ${row.job_id} names GitLab runner ${eventRunner}, but checkpoint ${checkpoint.name} is on runner ${checkpoint.runner_id} (GitLab runner ${checkpoint.gitlab_runner_id}); ignored`);
      await markDone(row.event_id, 'runner_mismatch', row.attempts);
      return { ...base, outcome: 'runner_mismatch', checkpoint: checkpoint.name };
    }

    const attempts = row.attempts + 1;
    try {
      await signal(checkpoint.name, status);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        // A closed workflow has already been finalized one way or another.
        logger.info(withCheckpoint, `webhook for job ${row.job_id}: workflow ${checkpoint.name} is closed; already finalized`);
        await markDone(row.event_id, 'already_finalized', attempts);
        return { ...base, outcome: 'already_finalized', checkpoint: checkpoint.name };
      }
      return failed(row, attempts, err, withCheckpoint, checkpoint.name);
    }
    await markDone(row.event_id, 'signaled', attempts);
    logger.info({ ...withCheckpoint, status }, `finalize signal (${status}, source webhook) sent to ${checkpoint.name}`);
    return { ...base, outcome: 'signaled', checkpoint: checkpoint.name };
  }

  async function signal(workflowId: string, status: FinalizeStatus): Promise<void> {
    await temporalClient.withDeadline(Date.now() + signalTimeoutMs, () =>
      temporalClient.workflow.getHandle(workflowId).signal(finalizeSignal, { status, source: 'webhook' }),
    );
  }

  async function failed(row: InboxRow, attempts: number, err: unknown, log: Row, checkpoint: string): Promise<DispatchResult> {
    const message = errorText(err);
    const base = { eventId: row.event_id, provider: row.provider, jobId: row.job_id, checkpoint };
    if (attempts >= maxAttempts) {
      await markInboxGivenUp(db, row.event_id, attempts, message);
      logger.error({ ...log, attempts, error: message },
        `webhook for job ${row.job_id} could not be delivered to ${checkpoint} after ${attempts} attempts; given up (the row is kept; the GitLab job watch and TTL still apply)`);
      return { ...base, outcome: 'gave_up' };
    }
    const delayMs = webhookRetryDelayMs(attempts, backoff);
    await scheduleInboxRetry(db, row.event_id, attempts, delayMs, message);
    logger.warn({ ...log, attempts, error: message, retryInMs: delayMs }, `finalize signal to ${checkpoint} failed; will retry`);
    return { ...base, outcome: 'retry' };
  }

  async function dispatchOnce(): Promise<DispatchResult[]> {
    const claimed = await claimDue();
    const results: DispatchResult[] = [];
    for (const row of claimed) {
      try {
        results.push(await deliver(row));
      } catch (err) {
        // A database error mid-delivery: the lease expires and the row is tried again.
        logger.error({ provider: row.provider, eventId: row.event_id, jobId: row.job_id, error: errorText(err) }, 'webhook delivery failed on the database; retried after its lease');
        results.push({ eventId: row.event_id, provider: row.provider, jobId: row.job_id, outcome: 'retry' });
      }
    }
    return results;
  }

  async function runLoop(): Promise<void> {
    while (running) {
      let full = false;
      try {
        full = (await dispatchOnce()).length >= batchSize;
      } catch (err) {
        logger.error({ error: errorText(err) }, 'webhook dispatcher round failed');
      }
      if (!running) break;
      if (full || woken) {
        woken = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, opts.pollIntervalMs);
        function done() {
          clearTimeout(timer);
          wake = null;
          resolve();
        }
        wake = done;
      });
      woken = false;
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = runLoop();
    },
    async stop() {
      running = false;
      wake?.();
      await loop;
      loop = null;
    },
    dispatchOnce,
    notify() {
      woken = true;
      wake?.();
    },
  };
}

/** Temporal and database errors carry no secrets; keep the text short for the row. */
function errorText(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}
