// Reads of agent presence for routing: which instance holds a runner's live session, under which
// epoch. The gateway's PresenceStore writes these rows; health, metrics, alerts and the dashboard
// share the staleness limit.
import { and, eq, lt, sql } from 'drizzle-orm';
import { agentPresence, controllerInstances } from '../../db/schema.js';
import type { Db } from './database.js';

/** Instances silent for longer than this are not routed to. */
export const INSTANCE_STALE_SECONDS = 30;

/** Where a live session is; the activity's AgentRoute adds what the workflow needs to run on it. */
export interface SessionLocation {
  instanceId: string;
  sessionEpoch: number;
}

/**
 * Where a runner's live session is: its instance and epoch, ignoring instances that are draining
 * or have not heartbeated for `staleAfterSeconds`. Uses the database clock only.
 */
export async function resolveRoute(db: Db, runnerId: string, opts: { staleAfterSeconds?: number } = {}): Promise<SessionLocation | null> {
  const stale = opts.staleAfterSeconds ?? INSTANCE_STALE_SECONDS;
  const rows = await db
    .select({ instanceId: agentPresence.instanceId, sessionEpoch: agentPresence.sessionEpoch })
    .from(agentPresence)
    .innerJoin(controllerInstances, eq(controllerInstances.instanceId, agentPresence.instanceId))
    .where(
      and(
        eq(agentPresence.runnerId, runnerId),
        eq(controllerInstances.draining, false),
        lt(sql`now() - ${controllerInstances.lastSeen}`, sql`make_interval(secs => ${stale})`),
      ),
    )
    .limit(1);
  const row = rows[0];
  return row ? { instanceId: row.instanceId, sessionEpoch: Number(row.sessionEpoch) } : null;
}
