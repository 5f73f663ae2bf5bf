// Reads of the checkpoint projection that the API answers from, and e2epool's CheckpointResponse.
import { and, desc, eq, inArray, isNotNull } from 'drizzle-orm';
import { checkpoints } from '../../db/schema.js';
import type { CheckpointState } from '../domain/checkpoint-states.js';
import type { Db } from '../store/database.js';

export type CheckpointRow = typeof checkpoints.$inferSelect;

/** e2epool's CheckpointResponse (protocol spec §4.3); finalized_at is when the finalize was queued. */
export interface CheckpointResponse {
  name: string;
  runner_id: string;
  job_id: string;
  state: string;
  finalize_status: string | null;
  finalize_source: string | null;
  created_at: string;
  finalized_at: string | null;
}

/** Timestamps as e2epool wrote them: ISO-8601 in UTC without an offset. */
export function naiveUtc(d: Date | null | undefined): string | null {
  return d ? d.toISOString().replace(/Z$/, '') : null;
}

export function toCheckpointResponse(row: CheckpointRow): CheckpointResponse {
  return {
    name: row.name,
    runner_id: row.runnerId,
    job_id: row.jobId,
    state: row.state,
    finalize_status: row.finalizeStatus,
    finalize_source: row.finalizeSource,
    created_at: naiveUtc(row.createdAt)!,
    finalized_at: naiveUtc(row.finalizeQueuedAt),
  };
}

export async function findCheckpoint(db: Db, name: string): Promise<CheckpointRow | null> {
  const [row] = await db.select().from(checkpoints).where(eq(checkpoints.name, name)).limit(1);
  return row ?? null;
}

/** The checkpoint holding the runner's claim (at most one: ix_one_claim_per_runner). */
export async function findClaimHolder(db: Db, runnerId: string): Promise<CheckpointRow | null> {
  const [row] = await db
    .select()
    .from(checkpoints)
    .where(and(eq(checkpoints.runnerId, runnerId), eq(checkpoints.holdsClaim, true)))
    .limit(1);
  return row ?? null;
}

/** When the runner's latest finalize was queued (the cooldown reference), or null. */
export async function lastFinalizeQueuedAt(db: Db, runnerId: string): Promise<Date | null> {
  const [row] = await db
    .select({ at: checkpoints.finalizeQueuedAt })
    .from(checkpoints)
    .where(and(eq(checkpoints.runnerId, runnerId), isNotNull(checkpoints.finalizeQueuedAt)))
    .orderBy(desc(checkpoints.finalizeQueuedAt))
    .limit(1);
  return row?.at ?? null;
}

/** The newest checkpoint of the runner in one of these states, or null. */
export async function findInStates(db: Db, runnerId: string, states: readonly CheckpointState[]): Promise<CheckpointRow | null> {
  const [row] = await db
    .select()
    .from(checkpoints)
    .where(and(eq(checkpoints.runnerId, runnerId), inArray(checkpoints.state, [...states])))
    .orderBy(desc(checkpoints.createdAt))
    .limit(1);
  return row ?? null;
}
