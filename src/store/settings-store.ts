// Small facts kept in controller_settings that more than one instance reads: maintenance mode (the
// claim refuses new checkpoints while it is on) and the last orphan snapshot audit's counts (for
// /metrics).
import { sql } from 'drizzle-orm';
import { controllerSettings } from '../../db/schema.js';
import type { Db } from './database.js';
import { rowsOf } from './rows.js';

const ORPHAN_AUDIT_KEY = 'orphan_snapshot_audit';
export const MAINTENANCE_KEY = 'maintenance';

export interface MaintenanceState {
  enabled: boolean;
  message: string;
}

export async function readMaintenance(db: Db): Promise<MaintenanceState> {
  const [row] = await rowsOf(db, sql`select value from controller_settings where key = ${MAINTENANCE_KEY}`);
  const value = (row?.value ?? {}) as Partial<MaintenanceState>;
  return { enabled: value.enabled === true, message: value.message || 'Controller is in maintenance mode' };
}

export async function writeMaintenance(db: Db, value: MaintenanceState): Promise<void> {
  await db
    .insert(controllerSettings)
    .values({ key: MAINTENANCE_KEY, value })
    .onConflictDoUpdate({ target: controllerSettings.key, set: { value, updatedAt: new Date() } });
}

export interface OrphanAuditSummary {
  /** Orphan snapshots the last audit found (a lower bound when runners were unchecked). */
  orphans: number;
  /** Runners whose snapshots the last audit could not list. */
  unchecked: number;
  at: string;
}

export async function writeOrphanAudit(db: Db, summary: Omit<OrphanAuditSummary, 'at'>): Promise<void> {
  const value = JSON.stringify({ ...summary, at: new Date().toISOString() });
  await db.execute(sql`
    insert into controller_settings (key, value, updated_at) values (${ORPHAN_AUDIT_KEY}, ${value}::jsonb, now())
    on conflict (key) do update set value = excluded.value, updated_at = now()`);
}

export async function readOrphanAudit(db: Db): Promise<OrphanAuditSummary | null> {
  const [row] = await rowsOf(db, sql`select value from controller_settings where key = ${ORPHAN_AUDIT_KEY}`);
  const value = row?.value as Partial<OrphanAuditSummary> | undefined;
  if (!value || typeof value.orphans !== 'number') return null;
  return { orphans: value.orphans, unchecked: Number(value.unchecked ?? 0), at: String(value.at ?? '') };
}
