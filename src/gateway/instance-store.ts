// This controller instance's row in `controller_instances`: registered at start, heartbeated so
// that routes to it stay valid, marked draining on a graceful stop.
import { sql } from 'drizzle-orm';
import { controllerInstances } from '../../db/schema.js';
import type { Db } from '../store/database.js';
import type { Logger } from '../logger.js';

export const INSTANCE_HEARTBEAT_SECONDS = 10;

export async function registerInstance(db: Db, instanceId: string): Promise<void> {
  await db
    .insert(controllerInstances)
    .values({ instanceId })
    .onConflictDoUpdate({
      target: controllerInstances.instanceId,
      set: { startedAt: sql`now()`, lastSeen: sql`now()`, draining: false },
    });
}

/** Refreshes last_seen; re-creates the row if someone removed it (draining flag kept otherwise). */
export async function heartbeatInstance(db: Db, instanceId: string): Promise<void> {
  await db
    .insert(controllerInstances)
    .values({ instanceId })
    .onConflictDoUpdate({ target: controllerInstances.instanceId, set: { lastSeen: sql`now()` } });
}

export async function markInstanceDraining(db: Db, instanceId: string): Promise<void> {
  await db
    .insert(controllerInstances)
    .values({ instanceId, draining: true })
    .onConflictDoUpdate({ target: controllerInstances.instanceId, set: { draining: true, lastSeen: sql`now()` } });
}

export interface InstanceHeartbeat {
  stop(): void;
}

/** Heartbeats every `intervalSeconds`; failures are logged and retried on the next beat. */
export function startInstanceHeartbeat(opts: { db: Db; instanceId: string; logger: Logger; intervalSeconds?: number }): InstanceHeartbeat {
  const everyMs = (opts.intervalSeconds ?? INSTANCE_HEARTBEAT_SECONDS) * 1000;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    heartbeatInstance(opts.db, opts.instanceId)
      .catch((err: unknown) => opts.logger.warn({ err, instanceId: opts.instanceId }, 'controller instance heartbeat failed'))
      .finally(() => {
        running = false;
      });
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
