// The stats summary of operations.md: per UTC day, per runner and in total, computed by SQL
// aggregates (percentile_cont) that run alike on PGlite and PostgreSQL. A checkpoint belongs to the
// day it was created. The duration definitions are shared with /metrics.
import { sql } from 'drizzle-orm';
import { finalizeSources } from '../domain/finalize.js';
import type { Db } from '../store/database.js';
import { rowsOf } from '../store/rows.js';

export const STATS_MAX_DAYS = 90;
export const STATS_DEFAULT_DAYS = 7;

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

/** Finalize sources reported by name; anything else a caller sent is counted as `other`. */
export const REPORTED_SOURCES = [...finalizeSources, 'other'] as const;
export type ReportedSource = (typeof REPORTED_SOURCES)[number];
export function reportedSource(source: string): ReportedSource {
  return (finalizeSources as readonly string[]).includes(source) ? (source as ReportedSource) : 'other';
}

/** Outcome buckets, the same definitions as `/health`'s 24 h stats. */
const SUCCEEDED_SQL = sql.raw(`c.state in ('deleted','reset') and c.finalize_status = 'success'`);
const FAILED_SQL = sql.raw(`(c.state in ('create_failed','needs_attention') or c.finalize_status = 'failure')`);

export interface DurationStats {
  /** How many checkpoints had this duration. */
  count: number;
  p50: number | null;
  p95: number | null;
}

export interface StatsBucket {
  created: number;
  succeeded: number;
  failed: number;
  canceled: number;
  gcReset: number;
  /** succeeded / (succeeded + failed), three decimals; null when neither happened. */
  successRate: number | null;
  durations: Record<DurationKind, DurationStats>;
  finalizeSources: Record<ReportedSource, number>;
}

export interface StatsSummary {
  days: number;
  /** Start of the first UTC day included (ISO). */
  since: string;
  until: string;
  total: StatsBucket;
  daily: Array<{ date: string } & StatsBucket>;
  runners: Array<{ runnerId: string } & StatsBucket>;
}

function emptyBucket(): StatsBucket {
  const durations = Object.fromEntries(durationKinds.map((k) => [k, { count: 0, p50: null, p95: null }])) as StatsBucket['durations'];
  const sources = Object.fromEntries(REPORTED_SOURCES.map((s) => [s, 0])) as StatsBucket['finalizeSources'];
  return { created: 0, succeeded: 0, failed: 0, canceled: 0, gcReset: 0, successRate: null, durations, finalizeSources: sources };
}

const round3 = (v: unknown): number | null => (v === null || v === undefined ? null : Math.round(Number(v) * 1000) / 1000);

const DAY_MS = 86_400_000;

function utcDayStart(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/** `days` whole UTC days ending with today. */
export async function statsSummary(db: Db, days: number, now: Date = new Date()): Promise<StatsSummary> {
  const sinceMs = utcDayStart(now.getTime()) - (days - 1) * DAY_MS;
  const since = new Date(sinceMs);
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

  const total = emptyBucket();
  const daily = new Map<string, StatsBucket>();
  for (let ms = sinceMs; ms <= now.getTime(); ms += DAY_MS) daily.set(new Date(ms).toISOString().slice(0, 10), emptyBucket());
  const perRunner = new Map<string, StatsBucket>();
  const bucketOf = (r: any): StatsBucket => {
    if (Number(r.no_day) === 0) return daily.get(r.day) ?? daily.set(r.day, emptyBucket()).get(r.day)!;
    if (Number(r.no_runner) === 0) return perRunner.get(r.runner_id) ?? perRunner.set(r.runner_id, emptyBucket()).get(r.runner_id)!;
    return total;
  };
  for (const r of metricRows) {
    const b = bucketOf(r);
    b.created = Number(r.created);
    b.succeeded = Number(r.succeeded);
    b.failed = Number(r.failed);
    b.canceled = Number(r.canceled);
    b.gcReset = Number(r.gc_reset);
    const decided = b.succeeded + b.failed;
    b.successRate = decided ? round3(b.succeeded / decided) : null;
    for (const k of durationKinds) b.durations[k] = { count: Number(r[`${k}_count`]), p50: round3(r[`${k}_p50`]), p95: round3(r[`${k}_p95`]) };
  }
  for (const r of sourceRows) bucketOf(r).finalizeSources[reportedSource(String(r.source))] += Number(r.n);

  return {
    days,
    since: since.toISOString(),
    until: now.toISOString(),
    total,
    daily: [...daily.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([date, b]) => ({ date, ...b })),
    runners: [...perRunner.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([runnerId, b]) => ({ runnerId, ...b })),
  };
}
