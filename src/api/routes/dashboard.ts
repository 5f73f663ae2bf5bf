// The operator dashboard's routes (operations.md, Dashboard): the self-contained page (its files are
// in src/dashboard/), a JSON snapshot of what operators watch (services/dashboard-state.ts), and a
// Server-Sent Events feed of that snapshot. The page holds no data and no secret: it asks for the
// admin token, keeps it in sessionStorage and sends it as a bearer header (fetch, not EventSource,
// which cannot send headers). Actions go to the existing admin API.
import express, { type Request, type Response, type Router } from 'express';
import type { Config } from '../../config.js';
import { readChangeVersion } from '../../store/change-version.js';
import type { Logger } from '../../logger.js';
import { E2epoolError } from '../../domain/errors.js';
import type { ValidationDetailItem } from '../../inventory/issues.js';
import {
  JOB_OUTCOMES_MAX_PAGE,
  JOB_OUTCOMES_PAGE,
  createDashboardStateReader,
  decodeJobCursor,
  readJobOutcomes,
  type DashboardState,
} from '../../services/dashboard-state.js';
import { isHistoryRange, readDashboardHistory } from '../../services/dashboard-history.js';
import { readCheckpointDetail } from '../../services/dashboard-checkpoint.js';
import type { Db } from '../../store/database.js';
import { requireAdminToken } from '../auth.js';
import { validationFailed } from '../errors.js';
import { STRICT_ROUTING } from '../strict-routing.js';
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
  /** A moving checkpoint silent for longer than this counts as stuck (default 30 min). */
  stuckAfterSeconds?: number;
}

/** The router, plus `close()` to end the open event streams (before the HTTP server stops); later ones still open. */
export type DashboardRouter = Router & { close(): void };

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
  const readerOptions = { stuckAfterSeconds: opts.stuckAfterSeconds };
  const readState = createDashboardStateReader(db, config, readerOptions);
  const feed = new StateFeed(db, readState, logger, {
    pollIntervalMs: opts.pollIntervalMs ?? 1500,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    refreshMs: opts.refreshMs ?? 60_000,
  });
  const page = pageHtml({ pollMs: positiveInt(opts.pagePollMs ?? 5000), reconnectMs: positiveInt(opts.pageReconnectMs ?? 10_000) });
  const router = express.Router(STRICT_ROUTING);

  // One page for the overview and for a checkpoint's own view; the script reads the path.
  const sendPage = (_req: Request, res: Response) => {
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
  };
  router.get('/dashboard', sendPage);
  router.get('/dashboard/checkpoints/:name', sendPage);

  router.use('/api/dashboard', requireAdminToken(config.ADMIN_TOKEN));

  router.get('/api/dashboard/state', async (_req: Request, res: Response) => {
    res.set('Cache-Control', 'no-store').json(await readState());
  });

  router.get('/api/dashboard/history', async (req: Request, res: Response) => {
    const range = req.query.range ?? '24h';
    if (!isHistoryRange(range)) throw validationFailed([{ type: 'enum', loc: ['query', 'range'], msg: "Input should be '24h' or '7d'", input: range }]);
    res.set('Cache-Control', 'no-store').json(await readDashboardHistory(db, range));
  });

  router.get('/api/dashboard/job-outcomes', async (req: Request, res: Response) => {
    const problems: ValidationDetailItem[] = [];
    const limitText = typeof req.query.limit === 'string' ? req.query.limit : String(JOB_OUTCOMES_PAGE);
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > JOB_OUTCOMES_MAX_PAGE) problems.push({ type: 'value_error', loc: ['query', 'limit'], msg: `Value error, limit must be an integer from 1 to ${JOB_OUTCOMES_MAX_PAGE}`, input: req.query.limit });
    let afterId: number | undefined;
    if (req.query.cursor !== undefined) {
      const decoded = typeof req.query.cursor === 'string' ? decodeJobCursor(req.query.cursor) : null;
      if (decoded === null) problems.push({ type: 'value_error', loc: ['query', 'cursor'], msg: 'Value error, cursor is not one this API returned', input: req.query.cursor });
      else afterId = decoded;
    }
    if (problems.length) throw validationFailed(problems);
    res.set('Cache-Control', 'no-store').json(await readJobOutcomes(db, config, { limit, afterId }));
  });

  router.get('/api/dashboard/checkpoints/:name', async (req: Request<{ name: string }>, res: Response) => {
    const detail = await readCheckpointDetail(db, config, req.params.name, readerOptions);
    if (!detail) throw new E2epoolError('checkpoint_not_found', 'Checkpoint not found');
    res.set('Cache-Control', 'no-store').json(detail);
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
