// Route activity: where the runner's live agent session is (instance, epoch), whether it is legacy,
// what it declares and how long it has been up. Answered from the database alone.
import { and, eq, sql } from 'drizzle-orm';
import { agentPresence } from '../db/schema.js';
import { resolveRoute } from '../src/store/agent-presence.js';
import type { Db } from '../src/store/database.js';
import { gatewayTaskQueue, type AgentRoute, type RouteActivities } from './types.js';

export interface RouteDeps {
  db: Db;
  /** Instances silent for longer than this are not routed to; default the gateway's 30 s. */
  staleAfterSeconds?: number;
}

/** The live route with its session details, or null when no live, non-draining instance holds one. */
export async function resolveAgentRoute(db: Db, runnerId: string, opts: { staleAfterSeconds?: number } = {}): Promise<AgentRoute | null> {
  // The presence row may be replaced between the two reads: the epoch ties them, so try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const route = await resolveRoute(db, runnerId, opts.staleAfterSeconds !== undefined ? { staleAfterSeconds: opts.staleAfterSeconds } : {});
    if (!route) return null;
    const [row] = await db
      .select({
        declaredCommands: agentPresence.declaredCommands,
        bootId: agentPresence.bootId,
        // Database clock only, like the liveness check.
        connectedForSeconds: sql<string>`extract(epoch from (now() - ${agentPresence.connectedAt}))::text`,
      })
      .from(agentPresence)
      .where(and(eq(agentPresence.runnerId, runnerId), eq(agentPresence.sessionEpoch, route.sessionEpoch)))
      .limit(1);
    if (!row) continue;
    const declared = Array.isArray(row.declaredCommands) ? row.declaredCommands.filter((c): c is string => typeof c === 'string') : null;
    return {
      instanceId: route.instanceId,
      taskQueue: gatewayTaskQueue(route.instanceId),
      sessionEpoch: route.sessionEpoch,
      legacy: declared === null,
      declaredCommands: declared,
      connectedForSeconds: Math.max(0, Math.floor(Number(row.connectedForSeconds) || 0)),
      bootId: row.bootId ?? null,
    };
  }
  return null;
}

export function createRouteActivities(deps: RouteDeps): RouteActivities {
  return {
    resolveAgentRoute: ({ runnerId }) => resolveAgentRoute(deps.db, runnerId, deps.staleAfterSeconds !== undefined ? { staleAfterSeconds: deps.staleAfterSeconds } : {}),
  };
}
