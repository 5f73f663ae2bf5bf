// GET /api/audit: operator actions, newest first (`since` an ISO time, `limit` up to 1000).
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { listAuditRows } from '../../store/audit-log.js';
import type { Db } from '../../store/database.js';
import { requireAdminToken } from '../auth.js';
import { STRICT_ROUTING } from '../strict-routing.js';

const querySchema = z.object({
  since: z.iso.datetime({ offset: true, message: 'since must be an ISO 8601 time, e.g. 2026-12-01T00:00:00Z' }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function createAuditRouter(opts: { db: Db; adminToken: string | undefined }): Router {
  const router = express.Router(STRICT_ROUTING);
  router.get('/api/audit', requireAdminToken(opts.adminToken), async (req: Request, res: Response) => {
    const parsed = querySchema.safeParse({ since: typeof req.query.since === 'string' ? req.query.since : undefined, limit: req.query.limit });
    if (!parsed.success) {
      res.status(422).json({ detail: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
      return;
    }
    const { since, limit } = parsed.data;
    const rows = await listAuditRows(opts.db, { ...(since ? { since: new Date(since) } : {}), limit });
    res.json({ entries: rows.map((r) => ({ id: r.id, at: r.at.toISOString(), actor: r.actor, action: r.action, target: r.target, detail: r.detail })) });
  });
  return router;
}
