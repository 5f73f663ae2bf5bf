// Reads of the checkpoint read model (checkpoints and their transition log) that the API answers
// from: one checkpoint, a runner's claim holder, filtered pages, a checkpoint's transitions.
import { and, asc, count, desc, eq, gte, inArray, isNotNull, lt, lte, or, sql, type SQL } from 'drizzle-orm';
import { checkpointTransitions, checkpoints } from '../../db/schema.js';
import type { CheckpointState } from '../domain/checkpoint-states.js';
import type { Db } from './database.js';
import { rowsOf } from './rows.js';

export type CheckpointRow = typeof checkpoints.$inferSelect;
export type TransitionRow = typeof checkpointTransitions.$inferSelect;

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

/** The seq of the projection that opened the checkpoint's current needs-attention episode. */
export async function needsAttentionEpisode(db: Db, name: string): Promise<number | undefined> {
  const rows = await rowsOf<{ seq: number | string | null }>(db, sql`select max(${checkpointTransitions.seq}) as seq from ${checkpointTransitions}
    where ${checkpointTransitions.checkpointName} = ${name} and ${checkpointTransitions.toState} = 'needs_attention' and ${checkpointTransitions.event} = 'step_failed'`);
  const seq = rows[0]?.seq;
  return seq === null || seq === undefined ? undefined : Number(seq);
}

/** Which checkpoints a listing wants; every condition given must hold. */
export interface CheckpointFilter {
  /** In one of these states, or (with `orFinalizeFailed`) finalized as a failure. */
  states?: readonly CheckpointState[];
  orFinalizeFailed?: boolean;
  runner?: string;
  since?: Date;
  until?: Date;
}

function whereOf(f: CheckpointFilter): SQL | undefined {
  const conditions: SQL[] = [];
  const anyOf: SQL[] = [];
  if (f.states?.length) anyOf.push(inArray(checkpoints.state, [...f.states]));
  if (f.orFinalizeFailed) anyOf.push(eq(checkpoints.finalizeStatus, 'failure'));
  if (anyOf.length) conditions.push(or(...anyOf)!);
  if (f.runner) conditions.push(eq(checkpoints.runnerId, f.runner));
  if (f.since) conditions.push(gte(checkpoints.createdAt, f.since));
  if (f.until) conditions.push(lte(checkpoints.createdAt, f.until));
  return conditions.length ? and(...conditions) : undefined;
}

/** Newest first (by id, which follows creation): how many match, and one page after `afterId`. */
export async function pageCheckpoints(db: Db, filter: CheckpointFilter, page: { afterId?: number; limit: number }): Promise<{ total: number; rows: CheckpointRow[] }> {
  const where = whereOf(filter);
  const [{ total }] = (await db.select({ total: count() }).from(checkpoints).where(where)) as [{ total: number }];
  const rows = await db
    .select()
    .from(checkpoints)
    .where(page.afterId !== undefined ? and(where, lt(checkpoints.id, page.afterId)) : where)
    .orderBy(desc(checkpoints.id))
    .limit(page.limit);
  return { total: Number(total), rows };
}

/** A checkpoint's transition log in order. */
export async function listTransitions(db: Db, name: string): Promise<TransitionRow[]> {
  return db
    .select()
    .from(checkpointTransitions)
    .where(sql`${checkpointTransitions.checkpointName} = ${name}`)
    .orderBy(asc(checkpointTransitions.seq), asc(checkpointTransitions.id));
}
