// Operator routes over checkpoints (admin token, checked before the body is read): listings, one
// checkpoint with its transition log, retry-reset and release of a checkpoint in needs attention,
// and maintenance mode.
import express, { type Request, type Response, type Router } from 'express';
import { STRICT_ROUTING } from '../strict-routing.js';
import { z } from 'zod';
import type { Config } from '../../config.js';
import { E2epoolError } from '../../domain/errors.js';
import { checkpointDetail, listCheckpoints, parseListQuery } from '../../services/checkpoint-listing.js';
import { CHECKPOINT_NOT_FOUND, type CheckpointService } from '../../services/checkpoints.js';
import type { Db } from '../../store/database.js';
import { requireAdminToken, type AdminIdentity } from '../auth.js';
import { DEFAULT_BODY_LIMIT, jsonBody, parseBody, validationFailed } from '../errors.js';
import { zonedJson } from './zoned-times.js';

export const releaseBodySchema = z.object({ deleteSnapshot: z.boolean() });
export const maintenanceBodySchema = z.object({ enabled: z.boolean(), message: z.string().max(500).nullish() });

export interface AdminCheckpointRoutesOptions {
  db: Db;
  service: CheckpointService;
  config: Pick<Config, 'ADMIN_TOKEN' | 'TEMPORAL_UI_URL' | 'TEMPORAL_NAMESPACE'>;
  bodyLimit?: string;
}

const actorOf = (res: Response) => (res.locals.admin as AdminIdentity | undefined)?.actor ?? 'admin';

export function createAdminCheckpointRoutes(opts: AdminCheckpointRoutesOptions): Router {
  const { db, service, config } = opts;
  const router = express.Router(STRICT_ROUTING);
  const body = jsonBody(opts.bodyLimit ?? DEFAULT_BODY_LIMIT);
  router.use(['/api/checkpoints', '/api/admin/maintenance'], requireAdminToken(config.ADMIN_TOKEN), zonedJson);

  router.get('/api/checkpoints', async (req: Request, res: Response) => {
    const query = parseListQuery(req.query as Record<string, unknown>);
    if (!query.ok) throw validationFailed(query.items);
    res.json(await listCheckpoints(db, query.value));
  });

  router.get('/api/checkpoints/:name', async (req: Request<{ name: string }>, res: Response) => {
    const detail = await checkpointDetail(db, req.params.name, { baseUrl: config.TEMPORAL_UI_URL, namespace: config.TEMPORAL_NAMESPACE });
    if (!detail) throw new E2epoolError('checkpoint_not_found', CHECKPOINT_NOT_FOUND);
    res.json(detail);
  });

  router.post('/api/checkpoints/:name/retry-reset', async (req: Request<{ name: string }>, res: Response) => {
    res.status(202).json(await service.retryReset(req.params.name, actorOf(res)));
  });

  router.post('/api/checkpoints/:name/release', body, async (req: Request<{ name: string }>, res: Response) => {
    const input = parseBody(releaseBodySchema, req.body);
    res.status(202).json(await service.release(req.params.name, actorOf(res), input.deleteSnapshot));
  });

  router.get('/api/admin/maintenance', async (_req: Request, res: Response) => {
    res.json(await service.getMaintenance());
  });

  router.post('/api/admin/maintenance', body, async (req: Request, res: Response) => {
    const input = parseBody(maintenanceBodySchema, req.body);
    res.json(await service.setMaintenance({ enabled: input.enabled, message: input.message }, actorOf(res)));
  });

  return router;
}
