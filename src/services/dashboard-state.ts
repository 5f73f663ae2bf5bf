// What the operator dashboard shows, read from the database in one snapshot: runners with their
// agent sessions, active checkpoints, recent failures, open alerts, counts and maintenance. No
// secret column is ever selected.
import { asc, eq, sql } from 'drizzle-orm';
import { agentPresence, controllerInstances, runners } from '../../db/schema.js';
import type { Config } from '../config.js';
import { phaseOf, type CheckpointPhase } from '../domain/checkpoint-states.js';
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
  agent: { online: boolean; lastSeen: string | null; connectedAt: string | null; sessionEpoch: number | null; version: string | null };
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

export interface DashboardState {
  generatedAt: string;
  temporal: { uiUrl: string; namespace: string };
  maintenance: MaintenanceState | null;
  queueDepth: number;
  stats: HealthSummary['stats'];
  runnerCounts: HealthSummary['runners'];
  runners: DashboardRunner[];
  activeCheckpoints: DashboardCheckpoint[];
  /** More active checkpoints exist than the snapshot carries. */
  activeTruncated: boolean;
  recentFailures: DashboardCheckpoint[];
  alerts: DashboardAlert[];
}

const RECENT_FAILURES_LIMIT = 50;
const DAY_MS = 24 * 60 * 60 * 1000;
const DETAIL_MAX_CHARS = 500;

/** The listing writes naive UTC; the page gets ISO with the zone. */
const isoUtc = (naive: string): string => `${naive}Z`;
const isoOf = (d: Date | string | null | undefined): string | null => (d == null ? null : new Date(d).toISOString());

function toDashboardCheckpoint(item: CheckpointListItem, now: number, ui: { uiUrl: string; namespace: string }): DashboardCheckpoint {
  const createdAt = isoUtc(item.created_at);
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
    detail: item.detail === null ? null : item.detail.slice(0, DETAIL_MAX_CHARS),
    createdAt,
    updatedAt: isoUtc(item.updated_at),
    endedAt: item.ended_at === null ? null : isoUtc(item.ended_at),
    ageSeconds: Math.max(0, Math.round((now - Date.parse(createdAt)) / 1000)),
    temporalUrl: temporalUiLink(ui.uiUrl, ui.namespace, item.name),
  };
}

/** Active runners with their agent session (no secret columns are read). */
async function readRunners(db: Db) {
  return db
    .select({
      runnerId: runners.runnerId,
      backend: runners.backend,
      source: runners.source,
      drained: runners.drained,
      hasAgentCredential: sql<boolean>`${runners.agentTokenHash} is not null`,
      sessionEpoch: agentPresence.sessionEpoch,
      agentVersion: agentPresence.agentVersion,
      connectedAt: agentPresence.connectedAt,
      lastSeen: agentPresence.lastSeen,
      // Online as routing sees it: the holding instance is alive and not draining.
      online: sql<boolean>`coalesce(not ${controllerInstances.draining} and now() - ${controllerInstances.lastSeen} < make_interval(secs => ${INSTANCE_STALE_SECONDS}), false)`,
    })
    .from(runners)
    .leftJoin(agentPresence, eq(agentPresence.runnerId, runners.runnerId))
    .leftJoin(controllerInstances, eq(controllerInstances.instanceId, agentPresence.instanceId))
    .where(eq(runners.isActive, true))
    .orderBy(asc(runners.runnerId));
}

function runnerStatus(drained: boolean, online: boolean, checkpoint: DashboardCheckpoint | undefined): RunnerStatus {
  if (checkpoint?.state === 'needs_attention') return 'needs_attention';
  if (drained) return 'drained';
  if (!online) return 'offline';
  return checkpoint ? 'busy' : 'idle';
}

export function createDashboardStateReader(db: Db, config: DashboardConfig): () => Promise<DashboardState> {
  // No Temporal client here: the dashboard reads counts only, not the Temporal probe.
  const reporter = createHealthReporter({ db });
  const ui = { uiUrl: config.TEMPORAL_UI_URL, namespace: config.TEMPORAL_NAMESPACE };
  return async () => {
    const now = Date.now();
    const [summary, active, failures, runnerRows, alerts] = await Promise.all([
      reporter.summary(),
      listCheckpoints(db, { states: [], active: true, failed: false, limit: LIST_MAX_LIMIT }),
      listCheckpoints(db, { states: [], active: false, failed: true, since: new Date(now - DAY_MS), limit: RECENT_FAILURES_LIMIT }),
      readRunners(db),
      openAlerts(db),
    ]);
    const activeCheckpoints = active.items.map((i) => toDashboardCheckpoint(i, now, ui));
    // Newest first: the first active checkpoint of a runner is its current one.
    const current = new Map<string, DashboardCheckpoint>();
    for (const c of activeCheckpoints) if (!current.has(c.runnerId)) current.set(c.runnerId, c);
    return {
      generatedAt: new Date(now).toISOString(),
      temporal: ui,
      maintenance: summary.maintenance,
      queueDepth: summary.queueDepth,
      stats: summary.stats,
      runnerCounts: summary.runners,
      runners: runnerRows.map((r) => {
        const c = current.get(r.runnerId);
        const online = r.online === true && r.sessionEpoch !== null;
        return {
          runnerId: r.runnerId,
          backend: r.backend,
          source: r.source,
          drained: r.drained,
          agentCredential: r.hasAgentCredential ? 'agent_token' : 'runner_token',
          agent: { online, lastSeen: isoOf(r.lastSeen), connectedAt: isoOf(r.connectedAt), sessionEpoch: r.sessionEpoch === null ? null : Number(r.sessionEpoch), version: r.agentVersion },
          checkpoint: c ? { name: c.name, state: c.state, phase: c.phase, createdAt: c.createdAt, ageSeconds: c.ageSeconds, temporalUrl: c.temporalUrl } : null,
          needsAttentionReason: c?.state === 'needs_attention' ? (c.needsAttentionReason ?? 'unknown') : null,
          status: runnerStatus(r.drained, online, c),
        };
      }),
      activeCheckpoints,
      activeTruncated: active.total > active.items.length,
      recentFailures: failures.items.map((i) => toDashboardCheckpoint(i, now, ui)),
      alerts: alerts.map((a) => ({ key: a.key, severity: a.severity, message: a.message, runnerId: a.runnerId, checkpointName: a.checkpointName, openedAt: a.openedAt.toISOString() })),
    };
  };
}
