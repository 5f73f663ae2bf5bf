// The webhook inbox (webhook_inbox): events stored by the webhook route, claimed with a lease and
// marked by the dispatcher, purged by housekeeping, listed and requeued by operators.
import { sql } from 'drizzle-orm';
import type { Db } from './database.js';
import { rowsOf } from './rows.js';

export type WebhookOutcome = 'signaled' | 'no_active_checkpoint' | 'runner_mismatch' | 'already_finalized' | 'gave_up' | 'invalid';

export interface InboxRow {
  event_id: string;
  provider: string;
  job_id: string | null;
  status: string | null;
  payload: unknown;
  attempts: number;
}

export interface ActiveCheckpoint {
  name: string;
  runner_id: string;
  state: string;
  gitlab_runner_id: number | null;
}

/** Inserts the event unless its id is already there; true when it is new. */
export async function insertInboxEvent(db: Db, event: { eventId: string; provider: string; jobId: string; status: string; payload: unknown }): Promise<boolean> {
  const inserted = await rowsOf(db, sql`
    insert into webhook_inbox (event_id, provider, job_id, status, payload)
    values (${event.eventId}, ${event.provider}, ${event.jobId}, ${event.status}, ${JSON.stringify(event.payload)}::jsonb)
    on conflict (event_id) do nothing
    returning event_id`);
  return inserted.length > 0;
}

/** Claims up to `batchSize` due rows: each stays invisible to other claimers for `leaseMs`. */
export async function claimDueInboxRows(db: Db, opts: { leaseMs: number; batchSize: number }): Promise<InboxRow[]> {
  return rowsOf<InboxRow>(
    db,
    sql`update webhook_inbox set next_attempt_at = now() + ${opts.leaseMs} * interval '1 millisecond'
        where event_id in (
          select event_id from webhook_inbox
          where processed_at is null and outcome is null and next_attempt_at <= now()
          order by next_attempt_at, received_at
          limit ${opts.batchSize}
          for update skip locked)
        returning event_id, provider, job_id, status, payload, attempts`,
  );
}

/**
 * The checkpoint a job's webhook is for. GitLab and GitHub job ids are separate namespaces. Every
 * runner is a GitLab runner (the only CI adapter), so GitLab events may match any checkpoint; a
 * GitHub event only matches checkpoints on runners not registered with GitLab. A project id known
 * on both sides must agree; the event's GitLab runner, when known, is preferred.
 */
export async function findActiveCheckpointForJob(
  db: Db,
  q: { provider: string; jobId: string; gitlabRunnerId: number | null; projectId: string | null },
): Promise<ActiveCheckpoint | null> {
  const namespace = q.provider === 'github' ? sql`and r.gitlab_runner_id is null` : sql``;
  const [row] = await rowsOf<ActiveCheckpoint>(
    db,
    sql`select c.name, c.runner_id, c.state, r.gitlab_runner_id
        from checkpoints c left join runners r on r.runner_id = c.runner_id
        where c.job_id = ${q.jobId}
          and (c.state = 'created' or c.holds_claim)
          and (c.project_id is null or ${q.projectId}::text is null or c.project_id = ${q.projectId}::text)
          ${namespace}
        order by coalesce(r.gitlab_runner_id = ${q.gitlabRunnerId}::int, false) desc, c.created_at desc, c.id desc
        limit 1`,
  );
  return row ?? null;
}

export async function markInboxDone(db: Db, eventId: string, outcome: WebhookOutcome, attempts: number): Promise<void> {
  await db.execute(sql`update webhook_inbox set processed_at = now(), outcome = ${outcome}, attempts = ${attempts}, last_error = null where event_id = ${eventId}`);
}

export async function markInboxGivenUp(db: Db, eventId: string, attempts: number, error: string): Promise<void> {
  await db.execute(sql`update webhook_inbox set attempts = ${attempts}, outcome = 'gave_up', last_error = ${error} where event_id = ${eventId}`);
}

export async function scheduleInboxRetry(db: Db, eventId: string, attempts: number, delayMs: number, error: string): Promise<void> {
  await db.execute(
    sql`update webhook_inbox set attempts = ${attempts}, next_attempt_at = now() + ${delayMs} * interval '1 millisecond', last_error = ${error} where event_id = ${eventId}`,
  );
}

/** Deletes delivered rows older than the given age; gave-up rows are kept for operators. */
export async function purgeProcessedWebhooks(db: Db, olderThanDays: number): Promise<number> {
  if (!Number.isFinite(olderThanDays) || olderThanDays < 0) throw new RangeError('olderThanDays must be a non-negative number');
  const deleted = await rowsOf(
    db,
    sql`delete from webhook_inbox where processed_at is not null and processed_at < now() - ${olderThanDays} * interval '1 day' returning event_id`,
  );
  return deleted.length;
}

/** Makes a given-up row pending again (operator action after fixing Temporal). */
export async function requeueWebhook(db: Db, eventId: string): Promise<boolean> {
  const updated = await rowsOf(
    db,
    sql`update webhook_inbox set outcome = null, attempts = 0, next_attempt_at = now(), last_error = null
        where event_id = ${eventId} and processed_at is null returning event_id`,
  );
  return updated.length > 0;
}

export interface GivenUpWebhook {
  event_id: string;
  provider: string;
  job_id: string | null;
  status: string | null;
  attempts: number;
  received_at: string;
  last_error: string | null;
}

/** Given-up rows, newest first (the operator's list before a requeue). */
export async function listGivenUpWebhooks(db: Db, limit = 100): Promise<GivenUpWebhook[]> {
  const found = await rowsOf(
    db,
    sql`select event_id, provider, job_id, status, attempts, received_at, last_error from webhook_inbox
        where outcome = 'gave_up' and processed_at is null order by received_at desc, event_id limit ${limit}`,
  );
  return found.map((r) => ({
    event_id: String(r.event_id),
    provider: String(r.provider),
    job_id: r.job_id ?? null,
    status: r.status ?? null,
    attempts: Number(r.attempts),
    received_at: new Date(r.received_at).toISOString(),
    last_error: r.last_error ?? null,
  }));
}

export type RequeueOutcome = { outcome: 'requeued'; attempts: number } | { outcome: 'not_found' } | { outcome: 'not_given_up'; state: 'pending' | 'processed' };

/**
 * Makes one given-up row pending again, with its attempts counted from zero: the operator's action
 * once Temporal is fine again. Rows still pending or already delivered are left alone.
 */
export async function requeueGivenUpWebhook(db: Db, eventId: string): Promise<RequeueOutcome> {
  const [row] = await rowsOf(
    db,
    sql`with target as (select event_id, attempts from webhook_inbox where event_id = ${eventId} and outcome = 'gave_up' and processed_at is null for update)
        update webhook_inbox w set outcome = null, attempts = 0, next_attempt_at = now(), last_error = null
        from target where w.event_id = target.event_id returning target.attempts`,
  );
  if (row) return { outcome: 'requeued', attempts: Number(row.attempts) };
  const [existing] = await rowsOf(db, sql`select processed_at from webhook_inbox where event_id = ${eventId}`);
  if (!existing) return { outcome: 'not_found' };
  return { outcome: 'not_given_up', state: existing.processed_at ? 'processed' : 'pending' };
}
