// The history behind the dashboard's pictures (24 h or 7 d): checkpoints that ended per bucket by
// outcome, reset, readiness and turnaround percentiles, and the finalize queue's depth derived from
// the transition log. Buckets sit on whole hours (UTC); times leave as ISO 8601 with `Z`.
import { sql } from 'drizzle-orm';
import { queuedStates } from '../domain/checkpoint-states.js';
import type { Db } from '../store/database.js';
import { rowsOf } from '../store/rows.js';
import { statesSql } from '../store/state-sql.js';
import { DURATION_SQL, RESET_DONE_EVENT } from './stats.js';

const QUEUED_SQL = statesSql(queuedStates);

export const HISTORY_RANGES = {
  '24h': { hours: 24, bucketSeconds: 3600, queueStepSeconds: 15 * 60 },
  '7d': { hours: 7 * 24, bucketSeconds: 6 * 3600, queueStepSeconds: 3600 },
} as const;
export type HistoryRange = keyof typeof HISTORY_RANGES;
export const isHistoryRange = (v: unknown): v is HistoryRange => typeof v === 'string' && Object.hasOwn(HISTORY_RANGES, v);

export const OUTCOME_KINDS = ['ok', 'job_failed', 'gc_reset', 'pool_problem', 'released'] as const;
export type OutcomeKind = (typeof OUTCOME_KINDS)[number];

export interface DurationPoint {
  p50: number | null;
  p95: number | null;
  count: number;
}

export interface DashboardHistory {
  range: HistoryRange;
  from: string;
  to: string;
  bucketSeconds: number;
  /** Per bucket: checkpoints that ended, by outcome, and entries into needs attention (pool_problem). */
  checkpoints: Array<{ at: string } & Record<OutcomeKind, number>>;
  /** Per bucket, over the checkpoints that ended in it (seconds). */
  durations: Array<{ at: string; reset: DurationPoint; readiness: DurationPoint; turnaround: DurationPoint }>;
  /**
   * Queue depth, derived from the transition log: per step of `stepSeconds` (from `from`), the most
   * checkpoints that waited for finalize work at the same time, so a wait of seconds still shows.
   */
  queue: { stepSeconds: number; points: Array<{ at: string; depth: number }> };
}

const round1 = (v: unknown): number | null => (v == null ? null : Math.round(Number(v) * 10) / 10);

export async function readDashboardHistory(db: Db, range: HistoryRange, nowMs = Date.now()): Promise<DashboardHistory> {
  const spec = HISTORY_RANGES[range];
  const bucketMs = spec.bucketSeconds * 1000;
  const buckets = Math.round((spec.hours * 3600) / spec.bucketSeconds);
  // Buckets on whole hours (UTC); the last one is the current, partial one.
  const fromMs = Math.floor(nowMs / bucketMs) * bucketMs - (buckets - 1) * bucketMs;
  const from = new Date(fromMs).toISOString();
  const bucketOf = (column: string) => sql.raw(`floor((extract(epoch from ${column}) * 1000 - ${fromMs}) / ${bucketMs})::int`);

  const lastStep = Math.floor((nowMs - fromMs) / (spec.queueStepSeconds * 1000));
  const [outcomeRows, durationRows, queueRows] = await Promise.all([
    rowsOf(db, sql`
      select i, outcome, count(*)::int as n from (
        select ${bucketOf('ended_at')} as i,
          case when state in ('create_failed') then 'pool_problem' when state = 'released' then 'released' when state = 'gc_reset' then 'gc_reset'
               when finalize_status = 'success' then 'ok' else 'job_failed' end as outcome
        from checkpoints where ended_at >= ${from}::timestamptz
        union all
        select ${bucketOf('at')} as i, 'pool_problem' as outcome
        from checkpoint_transitions where to_state = 'needs_attention' and at >= ${from}::timestamptz
      ) e where i >= 0 group by i, outcome`),
    rowsOf(db, sql`
      select i, count(reset_s)::int as reset_n, percentile_cont(0.5) within group (order by reset_s) as reset_p50, percentile_cont(0.95) within group (order by reset_s) as reset_p95,
        count(readiness_s)::int as readiness_n, percentile_cont(0.5) within group (order by readiness_s) as readiness_p50, percentile_cont(0.95) within group (order by readiness_s) as readiness_p95,
        count(turnaround_s)::int as turnaround_n, percentile_cont(0.5) within group (order by turnaround_s) as turnaround_p50, percentile_cont(0.95) within group (order by turnaround_s) as turnaround_p95
      from (
        select ${bucketOf('c.ended_at')} as i, ${DURATION_SQL.reset} as reset_s, ${DURATION_SQL.readiness} as readiness_s, ${DURATION_SQL.turnaround} as turnaround_s
        from checkpoints c
        left join lateral (
          select max(r.at) as reset_done_at from checkpoint_transitions r where r.checkpoint_name = c.name and r.event = ${RESET_DONE_EVENT}
        ) rd on true
        where c.ended_at >= ${from}::timestamptz
      ) d where i >= 0 group by i`),
    rowsOf(db, sql`
      with spans as (
        select t.to_state, t.at, lead(t.at) over (partition by t.checkpoint_name order by t.seq, t.id) as until
        from checkpoint_transitions t
        where t.checkpoint_name in (select name from checkpoints where ended_at is null or ended_at >= ${from}::timestamptz)
      ), queued as (
        select at, until from spans where to_state in (${QUEUED_SQL}) and (until is null or until > ${from}::timestamptz)
      ), events as (
        -- +1 when a checkpoint starts waiting, -1 when it stops, 0 at the start of every step.
        select at as t, 1 as d from queued where at >= ${from}::timestamptz
        union all
        select until as t, -1 as d from queued where until is not null
        union all
        select ${from}::timestamptz + make_interval(secs => s.i * ${spec.queueStepSeconds}) as t, 0 as d
        from generate_series(0, ${lastStep}) as s(i)
      ), running as (
        -- Ends before starts at the same instant: a move from one waiting state to another is one.
        select floor((extract(epoch from t) * 1000 - ${fromMs}) / ${spec.queueStepSeconds * 1000})::int as i,
          (select count(*) from queued where at < ${from}::timestamptz) + sum(d) over (order by t, d rows between unbounded preceding and current row) as depth
        from events
      )
      select i, max(depth)::int as depth from running where i <= ${lastStep} group by i order by i`),
  ]);

  const at = (i: number) => new Date(fromMs + i * bucketMs).toISOString();
  const checkpointsPerBucket = Array.from({ length: buckets }, (_, i) => ({ at: at(i), ok: 0, job_failed: 0, gc_reset: 0, pool_problem: 0, released: 0 }));
  for (const r of outcomeRows) {
    const bucket = checkpointsPerBucket[Number(r.i)];
    if (bucket && (OUTCOME_KINDS as readonly string[]).includes(r.outcome)) bucket[r.outcome as OutcomeKind] += Number(r.n);
  }
  const empty = (): DurationPoint => ({ p50: null, p95: null, count: 0 });
  const durations = Array.from({ length: buckets }, (_, i) => ({ at: at(i), reset: empty(), readiness: empty(), turnaround: empty() }));
  for (const r of durationRows) {
    const bucket = durations[Number(r.i)];
    if (!bucket) continue;
    for (const kind of ['reset', 'readiness', 'turnaround'] as const) {
      bucket[kind] = { p50: round1(r[`${kind}_p50`]), p95: round1(r[`${kind}_p95`]), count: Number(r[`${kind}_n`] ?? 0) };
    }
  }
  return {
    range,
    from,
    to: new Date(nowMs).toISOString(),
    bucketSeconds: spec.bucketSeconds,
    checkpoints: checkpointsPerBucket,
    durations,
    queue: {
      stepSeconds: spec.queueStepSeconds,
      points: queueRows.map((r) => ({ at: new Date(fromMs + Number(r.i) * spec.queueStepSeconds * 1000).toISOString(), depth: Number(r.depth) })),
    },
  };
}
