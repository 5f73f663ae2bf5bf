// Open alerts, deduplicated by key: raising an open key again changes nothing; resolving closes it.
// `last_sent_at` records the announcement; a resolve notice is due while it is older than resolved_at.
import { sql } from 'drizzle-orm';
import type { Db } from './database.js';
import { rowsOf } from './rows.js';
import type { AlertInput } from './types.js';

export async function raiseAlert(db: Db, alert: AlertInput): Promise<{ raised: boolean }> {
  const inserted = await rowsOf(db, sql`
    insert into alerts (key, severity, message, runner_id, checkpoint_name)
    values (${alert.key}, ${alert.severity}, ${alert.message}, ${alert.runnerId ?? null}, ${alert.checkpointName ?? null})
    on conflict (key) where resolved_at is null do nothing
    returning id`);
  return { raised: inserted.length > 0 };
}

export async function resolveAlert(db: Db, key: string): Promise<{ resolved: boolean }> {
  const updated = await rowsOf(db, sql`update alerts set resolved_at = now() where key = ${key} and resolved_at is null returning id`);
  return { resolved: updated.length > 0 };
}

export async function openAlerts(db: Db): Promise<Array<{ key: string; severity: string; message: string; runnerId: string | null; checkpointName: string | null; openedAt: Date }>> {
  const open = await rowsOf(db, sql`select key, severity, message, runner_id, checkpoint_name, opened_at from alerts where resolved_at is null order by opened_at desc`);
  return open.map((r) => ({ key: r.key, severity: r.severity, message: r.message, runnerId: r.runner_id, checkpointName: r.checkpoint_name, openedAt: new Date(r.opened_at) }));
}

/** Records that an open alert was announced, so its resolve gets a notice later. */
export async function markAlertSent(db: Db, key: string): Promise<void> {
  await db.execute(sql`update alerts set last_sent_at = now() where key = ${key} and resolved_at is null`);
}

/**
 * Claims the resolve notices due (announced alerts resolved within `lookbackSeconds`): one
 * compare-and-set update, so one instance sends each.
 */
export async function claimResolveNotices(
  db: Db,
  lookbackSeconds: number,
): Promise<Array<{ key: string; severity: string; message: string; runner_id: string | null; checkpoint_name: string | null }>> {
  return rowsOf(
    db,
    sql`update alerts set last_sent_at = now()
        where resolved_at is not null and resolved_at > now() - make_interval(secs => ${lookbackSeconds})
          and last_sent_at is not null and last_sent_at < resolved_at
        returning key, severity, message, runner_id, checkpoint_name`,
  );
}
