// `/healthz` (e2epool's liveness contract, no auth) and `/health` (the operator summary, no secrets).
import express, { type Request, type Response, type Router } from 'express';
import { STRICT_ROUTING } from '../strict-routing.js';
import type { createHealthReporter } from '../../services/health.js';
import { liveness, type LivenessAnswer } from '../../services/health.js';
import type { Db } from '../../store/database.js';
import { sharedResult } from '../../util/shared-result.js';

/** How long one answer of /healthz and /health serves everyone (they need no authentication). */
export const HEALTH_CACHE_MS = 2000;

/** This instance's workers: `ok` false (with why) before they run, while stopping and after a failure. */
export type WorkersRunning = () => { ok: true } | { ok: false; detail: string };

export function createHealthRoutes(opts: { db: Db; reporter: ReturnType<typeof createHealthReporter>; cacheMs?: number; workersRunning?: WorkersRunning }): Router {
  const router = express.Router(STRICT_ROUTING);
  const cacheMs = opts.cacheMs ?? HEALTH_CACHE_MS;
  const databaseLive = sharedResult(() => liveness(opts.db), Math.min(cacheMs, 1000));
  // Worker state is in memory and read on every request: a failed worker turns 503 at once.
  const live = async (): Promise<LivenessAnswer> => {
    const workers = opts.workersRunning?.() ?? { ok: true };
    if (!workers.ok) return { status: 'unhealthy', detail: workers.detail };
    return databaseLive();
  };
  const summarize = sharedResult(() => opts.reporter.summary(), cacheMs);
  router.get('/healthz', async (_req: Request, res: Response) => {
    const answer = await live();
    res.status(answer.status === 'ok' ? 200 : 503).json(answer);
  });
  router.get('/health', async (_req: Request, res: Response) => {
    const summary = await summarize();
    res.status(summary.status === 'unhealthy' ? 503 : 200).set('Cache-Control', 'no-store').json(summary);
  });
  return router;
}
