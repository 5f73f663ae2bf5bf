// The operator dashboard (operations.md, Dashboard): one self-contained page, a JSON snapshot of
// what operators watch, and a Server-Sent Events feed of that snapshot. The page holds no data and
// no secret: it asks for the admin token, keeps it in sessionStorage and sends it as a bearer
// header (fetch, not EventSource, which cannot send headers). Actions go to the existing admin API.
import express, { type Request, type Response, type Router } from 'express';
import { phaseOf, type CheckpointPhase } from '../../domain/checkpoint-states.js';
import { STRICT_ROUTING } from '../strict-routing.js';
import { asc, eq, sql } from 'drizzle-orm';
import { agentPresence, controllerInstances, runners } from '../../../db/schema.js';
import type { Config } from '../../config.js';
import { INSTANCE_STALE_SECONDS } from '../../store/agent-presence.js';
import type { Logger } from '../../logger.js';
import { LIST_MAX_LIMIT, listCheckpoints, temporalUiLink, type CheckpointListItem } from '../../services/checkpoint-listing.js';
import { createHealthReporter, type HealthSummary } from '../../services/health.js';
import type { MaintenanceState } from '../../store/checkpoint-store.js';
import { openAlerts } from '../../store/alert-store.js';
import type { Db } from '../../store/database.js';
import { requireAdminToken } from '../auth.js';
import { PAGE_CSP, pageHtml } from './dashboard-page.js';

export interface DashboardRouterOptions {
  db: Db;
  config: Pick<Config, 'ADMIN_TOKEN' | 'TEMPORAL_UI_URL' | 'TEMPORAL_NAMESPACE'>;
  logger: Logger;
  /** How often the event feed checks the database for changes (default 1500 ms). */
  pollIntervalMs?: number;
  /** Comment lines that keep idle streams open through proxies (default 15 s). */
  heartbeatMs?: number;
  /** A snapshot is sent at least this often, for the sliding 24 h window and staleness (default 60 s). */
  refreshMs?: number;
  /** The page polls the state this often while its stream is down (default 5 s). */
  pagePollMs?: number;
  /** The page reopens a broken stream after this long (default 10 s). */
  pageReconnectMs?: number;
}

/** The router, plus `close()` to end the open event streams (before the HTTP server stops); later ones still open. */
export type DashboardRouter = Router & { close(): void };

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

export function createDashboardStateReader(db: Db, config: DashboardRouterOptions['config']): () => Promise<DashboardState> {
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

/**
 * A few index-only or tiny-table aggregates whose text changes whenever anything the snapshot shows
 * changes: every checkpoint insert bumps its id, every projection inserts a transition.
 */
async function readChangeVersion(db: Db): Promise<string> {
  const result: any = await db.execute(sql`
    select concat_ws('|',
      (select coalesce(max(id), 0) from checkpoints),
      (select coalesce(max(id), 0) from checkpoint_transitions),
      (select concat(count(*), '/', max(last_seen)::text, '/', sum(session_epoch)) from agent_presence),
      (select concat(count(*), '/', max(id)) from alerts where resolved_at is null),
      (select coalesce(max(id), 0) from alerts),
      (select concat(count(*), '/', max(updated_at)::text) from runners),
      (select max(updated_at)::text from controller_settings),
      (select string_agg(instance_id || ':' || (not draining and now() - last_seen < make_interval(secs => ${INSTANCE_STALE_SECONDS}))::text, ',' order by instance_id)
         from controller_instances)
    ) as version`);
  return String((result.rows ?? result)[0]?.version ?? '');
}

/** One poller for every open stream: it runs only while someone listens, and builds each snapshot once. */
class StateFeed {
  private readonly streams = new Set<Response>();
  private pollTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lastVersion: string | null = null;
  private lastSentAt = 0;

  constructor(
    private readonly db: Db,
    private readonly readState: () => Promise<DashboardState>,
    private readonly logger: Logger,
    private readonly timing: { pollIntervalMs: number; heartbeatMs: number; refreshMs: number },
  ) {}

  async add(res: Response): Promise<void> {
    this.streams.add(res);
    res.on('close', () => this.remove(res));
    // The newcomer gets a snapshot at once; the others get theirs when something changes.
    const version = await readChangeVersion(this.db).catch(() => null);
    const state = await this.readState();
    if (!this.streams.has(res)) return;
    send(res, 'state', state);
    if (this.streams.size === 1) {
      this.lastVersion = version;
      this.lastSentAt = Date.now();
    }
    this.start();
  }

  close(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
    this.stop();
  }

  private remove(res: Response): void {
    this.streams.delete(res);
    if (this.streams.size === 0) this.stop();
  }

  private start(): void {
    if (!this.heartbeatTimer) {
      this.heartbeatTimer = setInterval(() => {
        for (const res of this.streams) res.write(': heartbeat\n\n');
      }, this.timing.heartbeatMs);
      this.heartbeatTimer.unref();
    }
    if (!this.pollTimer) this.schedulePoll();
  }

  private stop(): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.pollTimer = null;
    this.heartbeatTimer = null;
    this.lastVersion = null;
  }

  private schedulePoll(): void {
    // A chain of timeouts, not an interval: a slow database never piles polls up.
    this.pollTimer = setTimeout(() => {
      void this.poll().finally(() => {
        if (this.streams.size > 0 && this.pollTimer) this.schedulePoll();
      });
    }, this.timing.pollIntervalMs);
    this.pollTimer.unref();
  }

  private async poll(): Promise<void> {
    try {
      const version = await readChangeVersion(this.db);
      if (version === this.lastVersion && Date.now() - this.lastSentAt < this.timing.refreshMs) return;
      const state = await this.readState();
      this.lastVersion = version;
      this.lastSentAt = Date.now();
      for (const res of this.streams) send(res, 'state', state);
    } catch (err) {
      this.logger.warn({ err }, 'dashboard feed could not read the database');
      for (const res of this.streams) send(res, 'problem', { detail: 'The controller could not read its database; retrying.' });
    }
  }
}

function positiveInt(n: number): number {
  if (!Number.isInteger(n) || n <= 0) throw new Error(`dashboard page timings must be positive integers (ms), got ${n}`);
  return n;
}

function send(res: Response, event: string, data: unknown): void {
  // JSON.stringify never emits a raw newline, so one data line carries the whole event.
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export function createDashboardRouter(opts: DashboardRouterOptions): DashboardRouter {
  const { db, config, logger } = opts;
  if (!/^https?:\/\//i.test(config.TEMPORAL_UI_URL)) throw new Error(`TEMPORAL_UI_URL must be an http(s) URL, got '${config.TEMPORAL_UI_URL}'`);
  const readState = createDashboardStateReader(db, config);
  const feed = new StateFeed(db, readState, logger, {
    pollIntervalMs: opts.pollIntervalMs ?? 1500,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    refreshMs: opts.refreshMs ?? 60_000,
  });
  const page = pageHtml({ pollMs: positiveInt(opts.pagePollMs ?? 5000), reconnectMs: positiveInt(opts.pageReconnectMs ?? 10_000) });
  const router = express.Router(STRICT_ROUTING);

  router.get('/dashboard', (_req: Request, res: Response) => {
    res
      .status(200)
      .set({
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        'Content-Security-Policy': PAGE_CSP,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'X-Frame-Options': 'DENY',
      })
      .send(page);
  });

  router.use('/api/dashboard', requireAdminToken(config.ADMIN_TOKEN));

  router.get('/api/dashboard/state', async (_req: Request, res: Response) => {
    res.set('Cache-Control', 'no-store').json(await readState());
  });

  router.get('/api/dashboard/events', async (req: Request, res: Response) => {
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      // nginx would otherwise buffer the stream.
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    try {
      await feed.add(res);
    } catch (err) {
      logger.warn({ err }, 'dashboard feed could not build its first snapshot');
      send(res, 'problem', { detail: 'The controller could not read its database.' });
      res.end();
    }
  });

  return Object.assign(router, { close: () => feed.close() });
}

// ---------------------------------------------------------------------------------------------
// The page. Data is only ever put into the DOM as text (textContent), never as HTML; links are
// set only when they are http(s). The CSP allows exactly this inline script and style (hashes).
