// `/healthz` (e2epool's liveness contract, no auth) and `/health` (the operator summary, no secrets).
import express, { type Request, type Response, type Router } from 'express';
import type { createHealthReporter } from '../../services/health.js';
import { liveness } from '../../services/health.js';
import type { Db } from '../../store/database.js';

export function createHealthRoutes(opts: { db: Db; reporter: ReturnType<typeof createHealthReporter> }): Router {
  const router = express.Router();
  router.get('/healthz', async (_req: Request, res: Response) => {
    const answer = await liveness(opts.db);
    res.status(answer.status === 'ok' ? 200 : 503).json(answer);
  });
  router.get('/health', async (_req: Request, res: Response) => {
    const summary = await opts.reporter.summary();
    res.status(summary.status === 'unhealthy' ? 503 : 200).set('Cache-Control', 'no-store').json(summary);
  });
  return router;
}
