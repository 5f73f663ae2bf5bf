// The audit log of operator actions (`audit_log`): one row per action, read newest first.
import { and, desc, gte } from 'drizzle-orm';
import { auditLog } from '../../db/schema.js';
import type { Db } from './database.js';

export interface AuditRow {
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown> | null;
}

export async function insertAuditRow(db: Db, row: AuditRow): Promise<void> {
  await db.insert(auditLog).values(row);
}

/** Newest first, at most `limit`, optionally only those at or after `since`. */
export async function listAuditRows(db: Db, opts: { since?: Date; limit: number }) {
  return db
    .select()
    .from(auditLog)
    .where(and(opts.since ? gte(auditLog.at, opts.since) : undefined))
    .orderBy(desc(auditLog.at), desc(auditLog.id))
    .limit(opts.limit);
}
