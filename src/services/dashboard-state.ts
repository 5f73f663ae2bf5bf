// What the operator dashboard shows, read from the database: the live snapshot (runners with their
// agent sessions, active checkpoints, pool problems kept apart from job outcomes, open alerts,
// counts and maintenance), the history behind its pictures (24 h or 7 d), one checkpoint's record,
// and pages of job outcomes. No secret column is ever selected, and every time leaves as ISO 8601
// with `Z`.
import { rowsOf } from '../store/rows.js';
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import { agentLastSessions, agentPresence, alerts as alertsTable, checkpointTransitions, checkpoints, controllerInstances, runners } from '../../db/schema.js';
import type { Config } from '../config.js';
import { phaseOf, queuedStates, rebootWindowStates, resetPathStates, type CheckpointPhase } from '../domain/checkpoint-states.js';
import { INSTANCE_STALE_SECONDS } from '../store/agent-presence.js';
import { openAlerts } from '../store/alert-store.js';
import type { MaintenanceState } from '../store/checkpoint-store.js';
import type { Db } from '../store/database.js';
import { statesSql } from '../store/state-sql.js';
import { LIST_MAX_LIMIT, listCheckpoints, temporalUiLink, type CheckpointListItem, type TransitionView } from './checkpoint-listing.js';
import { createHealthReporter, type HealthSummary } from './health.js';
import { DURATION_SQL, RESET_DONE_EVENT } from './stats.js';

export type DashboardConfig = Pick<Config, 'TEMPORAL_UI_URL' | 'TEMPORAL_NAMESPACE'>;

export type { CheckpointPhase };

export interface DashboardCheckpoint {
  name: string;
  runnerId: string;
  jobId: string;
  projectId: string | null;
  state: string;
  phase: CheckpointPhase;
  finalizeStatus: string | null;
  finalizeSource: string | null;
  needsAttentionReason: string | null;
  detail: string | null;
  createdAt: string;
  updatedAt: string;
  endedAt: string | null;
  ageSeconds: number;
  /** Time since the last transition: how long the checkpoint has been in its current step. */
  stepSeconds: number;
  /** Moving (not waiting for its job, not in needs attention) but silent for too long. */
  stuck: boolean;
  temporalUrl: string;
}

export type RunnerStatus = 'needs_attention' | 'drained' | 'offline' | 'busy' | 'idle';

export interface DashboardRunner {
  runnerId: string;
  backend: string;
  source: string;
  drained: boolean;
  /** `runner_token`: the legacy scheme, where the token CI jobs hold also opens the agent's session. */
  agentCredential: 'agent_token' | 'runner_token';
  /**
   * The live session, or else the last one that ended: `lastSeen` and `disconnectedAt` stay after
   * the agent has gone. `sessionEpoch`, `bootId` and `version` are the session's own.
   */
  agent: {
    online: boolean;
    lastSeen: string | null;
    connectedAt: string | null;
    disconnectedAt: string | null;
    sessionEpoch: number | null;
    bootId: string | null;
    version: string | null;
  };
  /** Whether the GitLab runner is (or may be) paused by a reset; null without a GitLab runner id. */
  gitlabPaused: boolean | null;
  checkpoint: Pick<DashboardCheckpoint, 'name' | 'state' | 'phase' | 'createdAt' | 'ageSeconds' | 'temporalUrl'> | null;
  needsAttentionReason: string | null;
  status: RunnerStatus;
}

export interface DashboardAlert {
  key: string;
  severity: string;
  message: string;
  runnerId: string | null;
  checkpointName: string | null;
  openedAt: string;
}

/** Something wrong with the pool itself (not with a CI job), with the reason it is wrong. */
export interface PoolProblem {
  kind: 'needs_attention' | 'stuck' | 'create_failed' | 'unpause_slow';
  checkpointName: string | null;
  runnerId: string | null;
  jobId: string | null;
  state: string | null;
  reason: string;
  detail: string | null;
  at: string;
  temporalUrl: string | null;
}

/** A CI job that failed or was canceled, and what the pool did about it. */
export interface JobOutcome {
  checkpointName: string;
  runnerId: string;
  jobId: string;
  finalizeStatus: string;
  finalizeSource: string | null;
  state: string;
  /** `rolled_back`: the runner is clean again; `in_progress`: still resetting; `pool_problem`: the reset needs an operator. */
  handled: 'rolled_back' | 'in_progress' | 'pool_problem';
  finalizedAt: string;
  endedAt: string | null;
  temporalUrl: string;
}

export interface JobOutcomePage {
  total: number;
  items: JobOutcome[];
  nextCursor: string | null;
}

export interface DashboardState {
  generatedAt: string;
  temporal: { uiUrl: string; namespace: string };
  maintenance: MaintenanceState | null;
  queueDepth: number;
  /** The 24 h counts of /health, kept for scripts; the dashboard shows `outcomes`. */
  stats: HealthSummary['stats'];
  runnerCounts: HealthSummary['runners'];
  /** Pool problems right now, one count each. */
  problems: { needsAttention: number; stuck: number; offline: number };
  /**
   * The last 24 h, with the pool and the jobs apart: a job that failed and was rolled back is the
   * pool working, so it counts as a clean end for the pool and as a failure for the jobs only.
   */
  outcomes: {
    windowHours: 24;
    pool: { cleanEnds: number; problems: number; successRate: number | null };
    jobs: { succeeded: number; failed: number; canceled: number };
  };
  runners: DashboardRunner[];
  activeCheckpoints: DashboardCheckpoint[];
  /** More active checkpoints exist than the snapshot carries. */
  activeTruncated: boolean;
  poolProblems: { total: number; items: PoolProblem[] };
  jobOutcomes: JobOutcomePage;
  alerts: DashboardAlert[];
}

export interface DashboardReaderOptions {
  /** A moving checkpoint silent for longer than this counts as stuck (default 30 min). */
  stuckAfterSeconds?: number;
}

const DETAIL_MAX_CHARS = 500;
const POOL_PROBLEMS_LIMIT = 50;
export const JOB_OUTCOMES_PAGE = 20;
export const JOB_OUTCOMES_MAX_PAGE = 100;
const DEFAULT_STUCK_AFTER_SECONDS = 30 * 60;
/** States that wait on something outside the pool (the job, an operator): never stuck. */
const WAITING_STATES = new Set(['created', 'needs_attention']);

const QUEUED_SQL = statesSql(queuedStates);
const PAUSED_STATES = new Set<string>(resetPathStates);
const REBOOT_WINDOW_STATES = new Set<string>(rebootWindowStates);

/**
 * Whether the runner's own reset may have its agent down right now (a VM stopped and started, a
 * host rebooting): readiness covers that, so it is not offline, as for the runner_offline alert.
 * A stuck reset is no excuse: its runner counts as offline again.
 */
const downForItsReset = (c: DashboardCheckpoint | undefined) => c !== undefined && REBOOT_WINDOW_STATES.has(c.state) && !c.stuck;

/** The listing writes naive UTC; the page gets ISO with the zone. */
const isoUtc = (naive: string): string => `${naive}Z`;
const isoOf = (d: Date | string | number | null | undefined): string | null => (d == null ? null : new Date(d).toISOString());
const clip = (text: string | null): string | null => (text === null ? null : text.slice(0, DETAIL_MAX_CHARS));

function toDashboardCheckpoint(item: CheckpointListItem, now: number, ui: { uiUrl: string; namespace: string }, stuckAfterSeconds: number): DashboardCheckpoint {
  const createdAt = isoUtc(item.created_at);
  const updatedAt = isoUtc(item.updated_at);
  const stepSeconds = Math.max(0, Math.round((now - Date.parse(updatedAt)) / 1000));
  const active = item.ended_at === null;
  return {
    name: item.name,
    runnerId: item.runner_id,
    jobId: item.job_id,
    projectId: item.project_id,
    state: item.state,
    phase: phaseOf(item.state),
    finalizeStatus: item.finalize_status,
    finalizeSource: item.finalize_source,
    needsAttentionReason: item.needs_attention_reason,
    detail: clip(item.detail),
    createdAt,
    updatedAt,
    endedAt: item.ended_at === null ? null : isoUtc(item.ended_at),
    ageSeconds: Math.max(0, Math.round((now - Date.parse(createdAt)) / 1000)),
    stepSeconds,
    stuck: active && !WAITING_STATES.has(item.state) && stepSeconds > stuckAfterSeconds,
    temporalUrl: temporalUiLink(ui.uiUrl, ui.namespace, item.name),
  };
}

/** Active runners with their live agent session and their last ended one (no secret columns). */
async function readRunners(db: Db) {
  return db
    .select({
      runnerId: runners.runnerId,
      backend: runners.backend,
      source: runners.source,
      drained: runners.drained,
      gitlabRunnerId: runners.gitlabRunnerId,
      hasAgentCredential: sql<boolean>`${runners.agentTokenHash} is not null`,
      sessionEpoch: agentPresence.sessionEpoch,
      bootId: agentPresence.bootId,
      agentVersion: agentPresence.agentVersion,
      connectedAt: agentPresence.connectedAt,
      lastSeen: agentPresence.lastSeen,
      // Online as routing sees it: the holding instance is alive and not draining.
      online: sql<boolean>`coalesce(not ${controllerInstances.draining} and now() - ${controllerInstances.lastSeen} < make_interval(secs => ${INSTANCE_STALE_SECONDS}), false)`,
      last: {
        sessionEpoch: agentLastSessions.sessionEpoch,
        bootId: agentLastSessions.bootId,
        agentVersion: agentLastSessions.agentVersion,
        connectedAt: agentLastSessions.connectedAt,
        lastSeenAt: agentLastSessions.lastSeenAt,
        disconnectedAt: agentLastSessions.disconnectedAt,
      },
    })
    .from(runners)
    .leftJoin(agentPresence, eq(agentPresence.runnerId, runners.runnerId))
    .leftJoin(controllerInstances, eq(controllerInstances.instanceId, agentPresence.instanceId))
    .leftJoin(agentLastSessions, eq(agentLastSessions.runnerId, runners.runnerId))
    .where(eq(runners.isActive, true))
    .orderBy(asc(runners.runnerId));
}

type RunnerRow = Awaited<ReturnType<typeof readRunners>>[number];

function runnerStatus(drained: boolean, online: boolean, checkpoint: DashboardCheckpoint | undefined): RunnerStatus {
  if (checkpoint?.state === 'needs_attention') return 'needs_attention';
  if (drained) return 'drained';
  if (!online && !downForItsReset(checkpoint)) return 'offline';
  return checkpoint ? 'busy' : 'idle';
}

function toDashboardRunner(r: RunnerRow, c: DashboardCheckpoint | undefined): DashboardRunner {
  const live = r.sessionEpoch !== null;
  const online = r.online === true && live;
  const last = r.last && r.last.sessionEpoch !== null ? r.last : null;
  const agent: DashboardRunner['agent'] = live
    ? { online, lastSeen: isoOf(r.lastSeen), connectedAt: isoOf(r.connectedAt), disconnectedAt: null, sessionEpoch: Number(r.sessionEpoch), bootId: r.bootId, version: r.agentVersion }
    : last
      ? { online: false, lastSeen: isoOf(last.lastSeenAt), connectedAt: isoOf(last.connectedAt), disconnectedAt: isoOf(last.disconnectedAt), sessionEpoch: Number(last.sessionEpoch), bootId: last.bootId, version: last.agentVersion }
      : { online: false, lastSeen: null, connectedAt: null, disconnectedAt: null, sessionEpoch: null, bootId: null, version: null };
  return {
    runnerId: r.runnerId,
    backend: r.backend,
    source: r.source,
    drained: r.drained,
    agentCredential: r.hasAgentCredential ? 'agent_token' : 'runner_token',
    agent,
    gitlabPaused: r.gitlabRunnerId === null ? null : c !== undefined && PAUSED_STATES.has(c.state),
    checkpoint: c ? { name: c.name, state: c.state, phase: c.phase, createdAt: c.createdAt, ageSeconds: c.ageSeconds, temporalUrl: c.temporalUrl } : null,
    needsAttentionReason: c?.state === 'needs_attention' ? (c.needsAttentionReason ?? 'unknown') : null,
    status: runnerStatus(r.drained, online, c),
  };
}

/** Clean ends, pool problems and job outcomes of the last 24 h. */
async function readOutcomes(db: Db): Promise<DashboardState['outcomes']> {
  const [row] = await rowsOf(db, sql`
    select
      (select count(*) from checkpoints where ended_at > now() - interval '24 hours' and state in ('deleted','reset','gc_reset')) as clean_ends,
      (select count(*) from checkpoints where ended_at > now() - interval '24 hours' and state = 'create_failed') as create_failed,
      (select count(distinct checkpoint_name) from checkpoint_transitions where at > now() - interval '24 hours' and to_state = 'needs_attention') as needs_attention,
      (select count(*) from checkpoints where finalize_queued_at > now() - interval '24 hours' and finalize_status = 'success') as jobs_succeeded,
      (select count(*) from checkpoints where finalize_queued_at > now() - interval '24 hours' and finalize_status = 'failure') as jobs_failed,
      (select count(*) from checkpoints where finalize_queued_at > now() - interval '24 hours' and finalize_status = 'canceled') as jobs_canceled`);
  const n = (k: string) => Number(row?.[k] ?? 0);
  const cleanEnds = n('clean_ends');
  const problems = n('create_failed') + n('needs_attention');
  return {
    windowHours: 24,
    pool: { cleanEnds, problems, successRate: cleanEnds + problems ? Math.round((cleanEnds / (cleanEnds + problems)) * 1000) / 1000 : null },
    jobs: { succeeded: n('jobs_succeeded'), failed: n('jobs_failed'), canceled: n('jobs_canceled') },
  };
}

/** Pool problems: checkpoints in needs attention or stuck, open unpause alerts, failed creates (24 h). */
async function readPoolProblems(db: Db, active: DashboardCheckpoint[], openAlertRows: DashboardAlert[], ui: { uiUrl: string; namespace: string }): Promise<{ total: number; items: PoolProblem[] }> {
  const items: PoolProblem[] = [];
  for (const c of active) {
    if (c.state === 'needs_attention') {
      items.push({ kind: 'needs_attention', checkpointName: c.name, runnerId: c.runnerId, jobId: c.jobId, state: c.state, reason: c.needsAttentionReason ?? 'unknown', detail: c.detail, at: c.updatedAt, temporalUrl: c.temporalUrl });
    } else if (c.stuck) {
      items.push({ kind: 'stuck', checkpointName: c.name, runnerId: c.runnerId, jobId: c.jobId, state: c.state, reason: `no progress in ${c.state} for ${Math.round(c.stepSeconds / 60)} min`, detail: c.detail, at: c.updatedAt, temporalUrl: c.temporalUrl });
    }
  }
  for (const a of openAlertRows) {
    if (!a.key.startsWith('unpause_slow:')) continue;
    items.push({ kind: 'unpause_slow', checkpointName: a.checkpointName, runnerId: a.runnerId, jobId: null, state: null, reason: 'unpause slow', detail: a.message, at: a.openedAt, temporalUrl: a.checkpointName ? temporalUiLink(ui.uiUrl, ui.namespace, a.checkpointName) : null });
  }
  const failedCreates = await db
    .select({ name: checkpoints.name, runnerId: checkpoints.runnerId, jobId: checkpoints.jobId, detail: checkpoints.detail, endedAt: checkpoints.endedAt })
    .from(checkpoints)
    .where(and(eq(checkpoints.state, 'create_failed'), sql`${checkpoints.endedAt} > now() - interval '24 hours'`))
    .orderBy(desc(checkpoints.id))
    .limit(POOL_PROBLEMS_LIMIT);
  for (const f of failedCreates) {
    items.push({ kind: 'create_failed', checkpointName: f.name, runnerId: f.runnerId, jobId: f.jobId, state: 'create_failed', reason: 'create failed', detail: clip(f.detail), at: isoOf(f.endedAt)!, temporalUrl: temporalUiLink(ui.uiUrl, ui.namespace, f.name) });
  }
  return { total: items.length, items: items.slice(0, POOL_PROBLEMS_LIMIT) };
}

const encodeCursor = (id: number) => Buffer.from(`job:${id}`).toString('base64url');
export function decodeJobCursor(cursor: string): number | null {
  const m = /^job:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : null;
}

/** Failed and canceled jobs of the last 24 h, newest first, a page at a time. */
export async function readJobOutcomes(db: Db, ui: DashboardConfig, page: { limit: number; afterId?: number }): Promise<JobOutcomePage> {
  const window = and(sql`${checkpoints.finalizeStatus} in ('failure','canceled')`, sql`${checkpoints.finalizeQueuedAt} > now() - interval '24 hours'`);
  const [{ total }] = (await db.select({ total: sql<number>`count(*)::int` }).from(checkpoints).where(window)) as [{ total: number }];
  const rows = await db
    .select({ id: checkpoints.id, name: checkpoints.name, runnerId: checkpoints.runnerId, jobId: checkpoints.jobId, finalizeStatus: checkpoints.finalizeStatus, finalizeSource: checkpoints.finalizeSource, state: checkpoints.state, finalizedAt: checkpoints.finalizeQueuedAt, endedAt: checkpoints.endedAt })
    .from(checkpoints)
    .where(page.afterId === undefined ? window : and(window, sql`${checkpoints.id} < ${page.afterId}`))
    .orderBy(desc(checkpoints.id))
    .limit(page.limit + 1);
  const more = rows.length > page.limit;
  const items = rows.slice(0, page.limit).map(
    (r): JobOutcome => ({
      checkpointName: r.name,
      runnerId: r.runnerId,
      jobId: r.jobId,
      finalizeStatus: r.finalizeStatus ?? 'failure',
      finalizeSource: r.finalizeSource,
      state: r.state,
      handled: r.state === 'needs_attention' || r.state === 'released' ? 'pool_problem' : r.endedAt ? 'rolled_back' : 'in_progress',
      finalizedAt: isoOf(r.finalizedAt)!,
      endedAt: isoOf(r.endedAt),
      temporalUrl: temporalUiLink(ui.TEMPORAL_UI_URL, ui.TEMPORAL_NAMESPACE, r.name),
    }),
  );
  return { total: Number(total), items, nextCursor: more ? encodeCursor(rows[page.limit - 1]!.id) : null };
}

export function createDashboardStateReader(db: Db, config: DashboardConfig, opts: DashboardReaderOptions = {}): () => Promise<DashboardState> {
  // No Temporal client here: the dashboard reads counts only; the page asks /health for reachability.
  const reporter = createHealthReporter({ db });
  const ui = { uiUrl: config.TEMPORAL_UI_URL, namespace: config.TEMPORAL_NAMESPACE };
  const stuckAfterSeconds = opts.stuckAfterSeconds ?? DEFAULT_STUCK_AFTER_SECONDS;
  return async () => {
    const now = Date.now();
    const [summary, active, runnerRows, alertRows, outcomes, jobOutcomes] = await Promise.all([
      reporter.summary(),
      listCheckpoints(db, { states: [], active: true, failed: false, limit: LIST_MAX_LIMIT }),
      readRunners(db),
      openAlerts(db),
      readOutcomes(db),
      readJobOutcomes(db, config, { limit: JOB_OUTCOMES_PAGE }),
    ]);
    const activeCheckpoints = active.items.map((i) => toDashboardCheckpoint(i, now, ui, stuckAfterSeconds));
    // Newest first: the first active checkpoint of a runner is its current one.
    const current = new Map<string, DashboardCheckpoint>();
    for (const c of activeCheckpoints) if (!current.has(c.runnerId)) current.set(c.runnerId, c);
    const alerts = alertRows.map((a) => ({ key: a.key, severity: a.severity, message: a.message, runnerId: a.runnerId, checkpointName: a.checkpointName, openedAt: a.openedAt.toISOString() }));
    const runnerList = runnerRows.map((r) => toDashboardRunner(r, current.get(r.runnerId)));
    return {
      generatedAt: new Date(now).toISOString(),
      temporal: ui,
      maintenance: summary.maintenance,
      queueDepth: summary.queueDepth,
      stats: summary.stats,
      runnerCounts: summary.runners,
      problems: {
        needsAttention: summary.runners.needsAttention,
        stuck: activeCheckpoints.filter((c) => c.stuck).length,
        offline: runnerList.filter((r) => !r.agent.online && !r.drained && !downForItsReset(current.get(r.runnerId))).length,
      },
      outcomes,
      runners: runnerList,
      activeCheckpoints,
      activeTruncated: active.total > active.items.length,
      poolProblems: await readPoolProblems(db, activeCheckpoints, alerts, ui),
      jobOutcomes,
      alerts,
    };
  };
}

// --- history: the pictures of the last 24 h or 7 d ---------------------------------------------

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

// --- one checkpoint: its timeline, command results, alerts and the actions it allows ----------

/** Transition events that report the result of an agent command or a backend step. */
const STEP_RESULTS: Record<string, { step: string; ok: boolean }> = {
  snapshot_taken: { step: 'snapshot', ok: true },
  create_failed: { step: 'snapshot', ok: false },
  cleanup_done: { step: 'cleanup', ok: true },
  cleanup_failed: { step: 'cleanup', ok: false },
  paused: { step: 'pause', ok: true },
  idle_confirmed: { step: 'idle check', ok: true },
  reset_done: { step: 'reset', ok: true },
  ready: { step: 'readiness', ok: true },
  unpaused: { step: 'unpause', ok: true },
  step_failed: { step: 'step', ok: false },
};
/** Which step a needs-attention reason names. */
const FAILED_STEP: Record<string, string> = {
  pause_failed: 'pause',
  runner_busy: 'idle check',
  reset_failed: 'reset',
  readiness_timeout: 'readiness',
  snapshot_delete_failed: 'snapshot delete',
  command_not_declared: 'agent command',
  command_outcome_unknown: 'reset',
  agent_unreachable: 'agent',
};

export interface CheckpointTimelineEntry extends TransitionView {
  /** Time spent in `to` until the next transition (or until now while it lasts); null for an end state. */
  seconds: number | null;
}

export interface DashboardCheckpointDetail {
  generatedAt: string;
  checkpoint: DashboardCheckpoint & {
    backend: string;
    caller: string | null;
    vmid: number | null;
    ttlExtensions: number;
    finalizedAt: string | null;
    createdDoneAt: string | null;
    resetStartedAt: string | null;
    readyAt: string | null;
  };
  timeline: CheckpointTimelineEntry[];
  /** Agent commands and backend steps as the workflow recorded them (output redacted and truncated). */
  commandResults: Array<{ seq: number; at: string; step: string; ok: boolean; detail: string | null }>;
  alerts: Array<{ key: string; severity: string; message: string; openedAt: string; resolvedAt: string | null }>;
  actions: { retryReset: boolean; release: boolean };
  temporalUrl: string;
}

export async function readCheckpointDetail(db: Db, config: DashboardConfig, name: string, opts: DashboardReaderOptions = {}): Promise<DashboardCheckpointDetail | null> {
  const [row] = await db.select().from(checkpoints).where(eq(checkpoints.name, name)).limit(1);
  if (!row) return null;
  const now = Date.now();
  const ui = { uiUrl: config.TEMPORAL_UI_URL, namespace: config.TEMPORAL_NAMESPACE };
  const [log, alertRows] = await Promise.all([
    db.select().from(checkpointTransitions).where(eq(checkpointTransitions.checkpointName, name)).orderBy(asc(checkpointTransitions.seq), asc(checkpointTransitions.id)),
    db.select().from(alertsTable).where(eq(alertsTable.checkpointName, name)).orderBy(desc(alertsTable.id)).limit(50),
  ]);
  const naive = (d: Date | null) => (d ? d.toISOString().replace(/Z$/, '') : null);
  const base = toDashboardCheckpoint(
    {
      name: row.name, runner_id: row.runnerId, job_id: row.jobId, project_id: row.projectId, backend: row.backend, caller: row.caller, state: row.state,
      finalize_status: row.finalizeStatus, finalize_source: row.finalizeSource, needs_attention_reason: row.needsAttentionReason, detail: row.detail,
      ttl_extensions: row.ttlExtensions, created_at: naive(row.createdAt)!, updated_at: naive(row.updatedAt)!, ended_at: naive(row.endedAt), finalized_at: naive(row.finalizeQueuedAt),
    },
    now,
    ui,
    opts.stuckAfterSeconds ?? DEFAULT_STUCK_AFTER_SECONDS,
  );
  const timeline = log.map((t, i): CheckpointTimelineEntry => {
    const next = log[i + 1];
    const until = next ? next.at.getTime() : row.endedAt ? null : now;
    return { seq: t.seq, from: t.fromState, to: t.toState, event: t.event, detail: clip(t.detail), at: t.at.toISOString(), seconds: until === null ? null : Math.max(0, Math.round((until - t.at.getTime()) / 100) / 10) };
  });
  const commandResults = log.flatMap((t) => {
    const known = STEP_RESULTS[t.event];
    if (!known) return [];
    const step = t.event === 'step_failed' ? (failedStepOf(t.detail) ?? FAILED_STEP[row.needsAttentionReason ?? ''] ?? 'step') : known.step;
    return [{ seq: t.seq, at: t.at.toISOString(), step, ok: known.ok, detail: clip(t.detail) }];
  });
  const needsAttention = row.state === 'needs_attention';
  return {
    generatedAt: new Date(now).toISOString(),
    checkpoint: {
      ...base,
      backend: row.backend,
      caller: row.caller,
      vmid: row.vmid,
      ttlExtensions: row.ttlExtensions,
      finalizedAt: isoOf(row.finalizeQueuedAt),
      createdDoneAt: isoOf(row.createdDoneAt),
      resetStartedAt: isoOf(row.resetStartedAt),
      readyAt: isoOf(row.readyAt),
    },
    timeline,
    commandResults,
    alerts: alertRows.map((a) => ({ key: a.key, severity: a.severity, message: a.message, openedAt: a.openedAt.toISOString(), resolvedAt: isoOf(a.resolvedAt) })),
    actions: { retryReset: needsAttention, release: needsAttention },
    temporalUrl: base.temporalUrl,
  };
}

/** The step a failure detail names ("pause_runner command: …", "readiness command …"), if any. */
function failedStepOf(detail: string | null): string | undefined {
  const m = /^(?:the agent does not declare a )?(pause_runner|cleanup|reset|readiness|snapshot)\b/i.exec(detail ?? '');
  return m ? m[1]!.replace('pause_runner', 'pause').toLowerCase() : undefined;
}
