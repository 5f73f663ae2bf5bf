// The stats summary of operations.md: per UTC day, per runner and in total, computed by SQL
// aggregates (percentile_cont) that run alike on PGlite and PostgreSQL. A checkpoint belongs to the
// day it was created. The duration definitions are shared with /metrics.
import { finalizeSources } from '../domain/finalize.js';
import { durationKinds, readStatsRows, type DurationKind } from '../store/checkpoint-stats.js';
import type { Db } from '../store/database.js';

// The duration definitions live with the queries; /metrics and the dashboard take them from here.
export { DURATION_SQL, RESET_DONE_EVENT, durationKinds, type DurationKind } from '../store/checkpoint-stats.js';

export const STATS_MAX_DAYS = 90;
export const STATS_DEFAULT_DAYS = 7;

/** Finalize sources reported by name; anything else a caller sent is counted as `other`. */
export const REPORTED_SOURCES = [...finalizeSources, 'other'] as const;
export type ReportedSource = (typeof REPORTED_SOURCES)[number];
export function reportedSource(source: string): ReportedSource {
  return (finalizeSources as readonly string[]).includes(source) ? (source as ReportedSource) : 'other';
}

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
  const { metricRows, sourceRows } = await readStatsRows(db, since, now);

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
