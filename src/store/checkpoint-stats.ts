// The checkpoint statistics queries: the duration definitions shared by /stats, /metrics and the
// dashboard, the per-day, per-runner and total aggregates of /stats (percentile_cont, alike on
// PGlite and PostgreSQL), /health's outcomes of the last 24 h, and what the alert conditions read
// of checkpoints (the last hour's outcomes, checkpoints past their TTL), and /metrics' gauges and
// ended checkpoints.
import { sql } from 'drizzle-orm';
import { activeStates, endStates } from '../domain/checkpoint-states.js';
import type { Db } from './database.js';
import { rowsOf } from './rows.js';
import { statesSql } from './state-sql.js';

/** The transition event that ends the rollback itself; readiness checks follow it. */
export const RESET_DONE_EVENT = 'reset_done';

/**
 * Durations in seconds over a checkpoint row `c` and its last reset_done time `reset_done_at`:
 * - create: request to snapshot taken (created_at → created_done_at);
 * - reset: rollback of the last reset attempt (reset_started_at → reset_done);
 * - readiness: reset_done → runner verified ready (ready_at);
 * - turnaround: finalize queued → checkpoint ended, i.e. from the job's end until the runner is
 *   back in the pool (cleanup or the whole rollback path, readiness and unpause included).
 * Each is null when the row lacks one of its timestamps (no reset on the success path, ...).
 */
export const DURATION_SQL = {
  create: sql.raw(`extract(epoch from (c.created_done_at - c.created_at))::float8`),
  reset: sql.raw(`case when reset_done_at >= c.reset_started_at then extract(epoch from (reset_done_at - c.reset_started_at))::float8 end`),
  readiness: sql.raw(`case when c.ready_at >= reset_done_at then extract(epoch from (c.ready_at - reset_done_at))::float8 end`),
  turnaround: sql.raw(`extract(epoch from (c.ended_at - c.finalize_queued_at))::float8`),
} as const;
export type DurationKind = keyof typeof DURATION_SQL;
export const durationKinds = Object.keys(DURATION_SQL) as DurationKind[];

/** Outcome buckets, the same definitions as `/health`'s 24 h stats. */
const SUCCEEDED_SQL = sql.raw(`c.state in ('deleted','reset') and c.finalize_status = 'success'`);
const FAILED_SQL = sql.raw(`(c.state in ('create_failed','needs_attention') or c.finalize_status = 'failure')`);

/**
 * The /stats rows of checkpoints created from `since` to `now`: one row per day, per runner and the
 * total (grouping sets), and the finalize sources grouped the same three ways.
 */
export async function readStatsRows(db: Db, since: Date, now: Date): Promise<{ metricRows: Record<string, any>[]; sourceRows: Record<string, any>[] }> {
  // One scan of the window (ix_checkpoints_created_at), grouped three ways at once.
  const base = sql`
    with rd as (
      select checkpoint_name, max(at) as reset_done_at from checkpoint_transitions
      where event = ${RESET_DONE_EVENT} and at >= ${since}
      group by checkpoint_name
    ),
    w as (
      select c.*, rd.reset_done_at,
        to_char(c.created_at at time zone 'UTC', 'YYYY-MM-DD') as day
      from checkpoints c left join rd on rd.checkpoint_name = c.name
      where c.created_at >= ${since} and c.created_at <= ${now}
    )`;
  const percentiles = durationKinds.map((k) => {
    const expr = sql`(${DURATION_SQL[k]})`;
    return sql`, count(${expr}) as ${sql.raw(`${k}_count`)},
      percentile_cont(0.5) within group (order by ${expr}) as ${sql.raw(`${k}_p50`)},
      percentile_cont(0.95) within group (order by ${expr}) as ${sql.raw(`${k}_p95`)}`;
  });
  const metricRows = await rowsOf(
    db,
    sql`${base}
    select grouping(c.day) as no_day, grouping(c.runner_id) as no_runner, c.day, c.runner_id,
      count(c.created_done_at) as created,
      count(*) filter (where ${SUCCEEDED_SQL}) as succeeded,
      count(*) filter (where ${FAILED_SQL}) as failed,
      count(*) filter (where c.finalize_status = 'canceled') as canceled,
      count(*) filter (where c.state = 'gc_reset') as gc_reset
      ${sql.join(percentiles, sql``)}
    from w c
    group by grouping sets ((c.day), (c.runner_id), ())`,
  );
  const sourceRows = await rowsOf(
    db,
    sql`${base}
    select grouping(c.day) as no_day, grouping(c.runner_id) as no_runner, c.day, c.runner_id, c.finalize_source as source, count(*) as n
    from w c where c.finalize_source is not null
    group by grouping sets ((c.day, c.finalize_source), (c.runner_id, c.finalize_source), (c.finalize_source))`,
  );

  return { metricRows, sourceRows };
}

/** /health's checkpoints of the last 24 h: created, succeeded, failed, gc reset. */
export async function readDayOutcomes(db: Db): Promise<{ created: number; succeeded: number; failed: number; gcReset: number }> {
  const [row = {}] = await rowsOf(db, sql`
    select
      (select count(*) from checkpoints where created_done_at > now() - interval '24 hours') as created,
      (select count(*) from checkpoints where ended_at > now() - interval '24 hours' and state in ('deleted','reset') and finalize_status = 'success') as succeeded,
      (select count(*) from checkpoints where created_at > now() - interval '24 hours'
         and (state in ('create_failed','needs_attention') or finalize_status = 'failure')) as failed,
      (select count(*) from checkpoints where ended_at > now() - interval '24 hours' and state = 'gc_reset') as gc_reset`);
  const n = (v: unknown) => Number(v ?? 0);
  return { created: n(row.created), succeeded: n(row.succeeded), failed: n(row.failed), gcReset: n(row.gc_reset) };
}

/** Checkpoints that failed, and that succeeded without failing, among the last hour's end transitions. */
export async function readLastHourOutcomes(db: Db): Promise<{ failed: number; succeeded: number }> {
  const [row = {}] = await rowsOf(
    db,
    sql`
    with failures as (
      select t.checkpoint_name,
        bool_or(t.to_state in ('create_failed','needs_attention') or c.finalize_status = 'failure') as failed,
        bool_or(t.to_state in ('deleted','reset') and c.finalize_status = 'success') as succeeded
      from checkpoint_transitions t join checkpoints c on c.name = t.checkpoint_name
      where t.at > now() - interval '1 hour' and t.to_state in ('deleted','reset','create_failed','needs_attention')
      group by t.checkpoint_name
    )
    select
      (select count(*) from failures where failed) as failed,
      (select count(*) from failures where succeeded and not failed) as succeeded`,
  );
  return { failed: Number(row.failed ?? 0), succeeded: Number(row.succeeded ?? 0) };
}

/**
 * Checkpoints still creating or created past their TTL (times their extensions) plus a grace,
 * oldest first. Active checkpoints hold a claim, so this is at most one row per runner.
 */
export async function findOverdueCheckpoints(db: Db, opts: { ttlSeconds: number; graceSeconds: number }): Promise<Array<{ name: string; runner_id: string; age_s: number }>> {
  return rowsOf(
    db,
    sql`
    select name, runner_id, extract(epoch from (now() - created_at))::float8 as age_s from checkpoints
    where state in ('creating','created')
      and created_at < now() - make_interval(secs => ${opts.ttlSeconds}::float8 * (ttl_extensions + 1) + ${opts.graceSeconds})
    order by created_at`,
  );
}

/** What /metrics reads besides the fleet counts: open alerts by severity, the webhook inbox, active checkpoints. */
export async function readGaugeRow(db: Db): Promise<Record<string, any>> {
  const [row = {}] = await rowsOf(
    db,
    sql`
    select
      (select coalesce(json_object_agg(severity, n), '{}'::json) from (select severity, count(*) as n from alerts where resolved_at is null group by severity) a) as alert_severities,
      (select count(*) from webhook_inbox where processed_at is null and outcome is null) as inbox_pending,
      (select count(*) from webhook_inbox where outcome = 'gave_up') as inbox_given_up,
      (select count(*) from checkpoints where state = 'needs_attention') as needs_attention,
      (select count(*) from checkpoints where state in (${statesSql(activeStates)})) as active`,
  );
  return row;
}

/**
 * End transitions after `after` (keyset on at, id) that are `settleSeconds` old, with their
 * checkpoint's outcome fields and durations; at most `batchSize`, oldest first.
 */
export async function readEndedSince(db: Db, after: { at: string; id: number }, opts: { settleSeconds: number; batchSize: number }) {
  return rowsOf<{ state: string; finalize_status: string | null } & Record<string, any>>(
    db,
    sql`
    select t.id, t.at::text as at_text, c.backend, c.state, c.finalize_status, c.finalize_source,
      ${DURATION_SQL.create} as create_s, ${DURATION_SQL.reset} as reset_s,
      ${DURATION_SQL.readiness} as readiness_s, ${DURATION_SQL.turnaround} as turnaround_s
    from checkpoint_transitions t
    join checkpoints c on c.name = t.checkpoint_name
    left join lateral (
      select max(r.at) as reset_done_at from checkpoint_transitions r
      where r.checkpoint_name = c.name and r.event = ${RESET_DONE_EVENT}
    ) rd on true
    where t.to_state in (${statesSql(endStates)})
      and (t.at > ${after.at}::timestamptz or (t.at = ${after.at}::timestamptz and t.id > ${after.id}))
      and t.at <= now() - make_interval(secs => ${opts.settleSeconds})
    order by t.at, t.id
    limit ${opts.batchSize}`,
  );
}
