// What the operator dashboard shows, read from the database: the live snapshot (runners with their
// agent sessions, active checkpoints, pool problems kept apart from job outcomes, open alerts,
// counts and maintenance) and pages of job outcomes; the history behind its pictures is in
// dashboard-history.ts, one checkpoint's record in dashboard-checkpoint.ts. No secret column is ever
// selected, and every time leaves as ISO 8601 with `Z`.
import { rowsOf } from '../store/rows.js';
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import { agentLastSessions, agentPresence, checkpoints, controllerInstances, runners } from '../../db/schema.js';
import type { Config } from '../config.js';
import { phaseOf, rebootWindowStates, resetPathStates, type CheckpointPhase } from '../domain/checkpoint-states.js';
import { INSTANCE_STALE_SECONDS } from '../store/agent-presence.js';
import { openAlerts } from '../store/alert-store.js';
import type { MaintenanceState } from '../store/checkpoint-store.js';
import type { Db } from '../store/database.js';
import { LIST_MAX_LIMIT, listCheckpoints, temporalUiLink, type CheckpointListItem } from './checkpoint-listing.js';
import { createHealthReporter, type HealthSummary } from './health.js';

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
export const DEFAULT_STUCK_AFTER_SECONDS = 30 * 60;
/** States that wait on something outside the pool (the job, an operator): never stuck. */
const WAITING_STATES = new Set(['created', 'needs_attention']);

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
export const isoOf = (d: Date | string | number | null | undefined): string | null => (d == null ? null : new Date(d).toISOString());
export const clip = (text: string | null): string | null => (text === null ? null : text.slice(0, DETAIL_MAX_CHARS));

export function toDashboardCheckpoint(item: CheckpointListItem, now: number, ui: { uiUrl: string; namespace: string }, stuckAfterSeconds: number): DashboardCheckpoint {
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
