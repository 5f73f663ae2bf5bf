// `GET /api/stats/summary?days=7` (admin token): the operator's stats summary.
import express, { type Request, type Response, type Router } from 'express';
import { STRICT_ROUTING } from '../strict-routing.js';
import { STATS_DEFAULT_DAYS, STATS_MAX_DAYS, statsSummary } from '../../services/stats.js';
import type { Db } from '../../store/database.js';
import { requireAdminToken } from '../auth.js';
import { validationFailed } from '../errors.js';

export interface StatsRouterOptions {
  db: Db;
  /** E2EPOOL_ADMIN_TOKEN; unset answers 503 `Admin API not configured`. */
  adminToken: string | undefined;
}

/** `days` from the query: an integer from 1 to 90, 7 when absent; 422 otherwise. */
export function parseStatsDays(raw: unknown): number {
  if (raw === undefined) return STATS_DEFAULT_DAYS;
  const text = typeof raw === 'string' ? raw : '';
  const days = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(days) || days < 1 || days > STATS_MAX_DAYS) {
    throw validationFailed([
      { type: 'value_error', loc: ['query', 'days'], msg: `Value error, days must be an integer from 1 to ${STATS_MAX_DAYS}`, input: Array.isArray(raw) ? raw : (raw ?? null) },
    ]);
  }
  return days;
}

export function createStatsRouter(opts: StatsRouterOptions): Router {
  const router = express.Router(STRICT_ROUTING);
  router.use('/api/stats', requireAdminToken(opts.adminToken));
  router.get('/api/stats/summary', async (req: Request, res: Response) => {
    const days = parseStatsDays(req.query.days);
    res.set('Cache-Control', 'no-store').json(await statsSummary(opts.db, days));
  });
  return router;
}
