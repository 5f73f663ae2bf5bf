// The dashboard's change version: one cheap query whose text changes whenever anything the
// dashboard shows changes, so the event stream sends a new snapshot only then.
import { sql } from 'drizzle-orm';
import { INSTANCE_STALE_SECONDS } from './agent-presence.js';
import type { Db } from './database.js';
import { rowsOf } from './rows.js';

/**
 * A few index-only or tiny-table aggregates whose text changes whenever anything the snapshot shows
 * changes: every checkpoint insert bumps its id, every projection inserts a transition.
 */
export async function readChangeVersion(db: Db): Promise<string> {
  const [row] = await rowsOf(db, sql`
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
  return String(row?.version ?? '');
}
