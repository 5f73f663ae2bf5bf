// Writes of the checkpoint read model: the claim, idempotent projections, the claim release, and
// the operator-facing marks (an orphan claim, the release of a claim whose workflow is gone).
// The database enforces one claim per runner (ix_one_claim_per_runner); this code never locks
// anything but the runner row.
import { sql } from 'drizzle-orm';
import { checkpointTransitions, checkpoints } from '../../db/schema.js';
import type { Db } from './database.js';
import { rowsOf } from './rows.js';
import { readMaintenance } from './settings-store.js';
import type { CheckpointRow } from './checkpoint-reads.js';
import type { ClaimInput, ClaimResult, ProgressInput, ProgressResult, ProjectionInput, RunnerPlan } from './types.js';
import { isEndState, type CheckpointState } from '../domain/checkpoint-states.js';
import { parseRunnerOptions } from '../inventory/runner-config.js';

// Maintenance lives with the other settings; claimRunner reads it, and older imports find it here.
export { MAINTENANCE_KEY, readMaintenance, type MaintenanceState } from './settings-store.js';

/**
 * One transaction: lock the runner row, check maintenance, drain, cooldown, then the holder;
 * insert with ON CONFLICT DO NOTHING and read back. A row with our own name is a retry of ourselves.
 */
/**
 * Longer than no healthy claim, shorter than the claim activity's 30 s: a transaction stuck on a lock
 * is aborted by the database instead of committing after the workflow gave up on it.
 */
export const CLAIM_STATEMENT_TIMEOUT_MS = 20_000;

export async function claimRunner(db: Db, input: ClaimInput, now = new Date(), opts: { statementTimeoutMs?: number } = {}): Promise<ClaimResult> {
  const result = await claimInTransaction(db, input, now, opts.statementTimeoutMs ?? CLAIM_STATEMENT_TIMEOUT_MS);
  if (!result.ok || !input.includePlan) return result;
  return { ...result, plan: await loadRunnerPlan(db, input.runnerId) };
}

async function claimInTransaction(db: Db, input: ClaimInput, now: Date, timeoutMs: number): Promise<ClaimResult> {
  return db.transaction(async (tx) => {
    const ms = Math.max(1, Math.floor(timeoutMs));
    await tx.execute(sql.raw(`set local statement_timeout = ${ms}`));
    await tx.execute(sql.raw(`set local idle_in_transaction_session_timeout = ${ms}`));
    const [runner] = await rowsOf(tx, sql`select runner_id, is_active, drained from runners where runner_id = ${input.runnerId} for update`);
    if (!runner || !runner.is_active) return { ok: false, code: 'runner_not_found', detail: 'Runner not found in inventory' };

    const [own] = await rowsOf(tx, sql`select name, holds_claim, created_at from checkpoints where name = ${input.name}`);
    if (own) return { ok: true, createdAtMs: new Date(own.created_at).getTime() };

    const maintenance = await readMaintenance(tx as unknown as Db);
    if (maintenance.enabled) return { ok: false, code: 'maintenance', detail: maintenance.message };
    if (runner.drained) return { ok: false, code: 'draining', detail: `Runner '${input.runnerId}' is drained and accepts no new checkpoints` };

    if (input.cooldownSeconds > 0) {
      const [last] = await rowsOf(
        tx,
        sql`select finalize_queued_at from checkpoints where runner_id = ${input.runnerId} and finalize_queued_at is not null order by finalize_queued_at desc limit 1`,
      );
      if (last && now.getTime() - new Date(last.finalize_queued_at).getTime() < input.cooldownSeconds * 1000) {
        return { ok: false, code: 'cooldown', detail: 'Cooldown period active, try again later' };
      }
    }

    const holder = await readHolder(tx, input.runnerId);
    if (holder) return conflictWith(holder, input.runnerId);

    const inserted = await rowsOf(
      tx,
      sql`insert into checkpoints (name, runner_id, job_id, project_id, backend, state, holds_claim, caller, created_at, updated_at)
          values (${input.name}, ${input.runnerId}, ${input.jobId}, ${input.projectId ?? null}, ${input.backend}, 'creating', true, ${input.caller ?? null}, ${now}, ${now})
          on conflict do nothing
          returning name`,
    );
    if (inserted.length === 0) {
      // Lost a race on the unique index: read back who holds the claim rather than guessing.
      const winner = await readHolder(tx, input.runnerId);
      if (winner && winner.name === input.name) return { ok: true, createdAtMs: now.getTime() };
      if (winner) return conflictWith(winner, input.runnerId);
      return { ok: false, code: 'conflict', detail: `Active checkpoint already exists for runner '${input.runnerId}' (concurrent create)` };
    }
    await tx.execute(
      sql`insert into checkpoint_transitions (checkpoint_name, runner_id, seq, from_state, to_state, event, detail, at)
          values (${input.name}, ${input.runnerId}, 0, null, 'creating', 'claimed', ${`Checkpoint requested for job ${input.jobId}${input.caller ? `, caller=${input.caller}` : ''}`}, ${now})
          on conflict do nothing`,
    );
    return { ok: true, createdAtMs: now.getTime() };
  });
}

async function readHolder(tx: any, runnerId: string): Promise<{ name: string; state: CheckpointState; finalize_status: string | null } | null> {
  const [holder] = await rowsOf(tx, sql`select name, state, finalize_status from checkpoints where runner_id = ${runnerId} and holds_claim`);
  return (holder as any) ?? null;
}

function conflictWith(holder: { name: string; state: CheckpointState; finalize_status: string | null }, runnerId: string): ClaimResult {
  const cleaning = holder.state === 'cleaning' || (holder.state === 'finalize_queued' && holder.finalize_status === 'success');
  return {
    ok: false,
    code: 'conflict',
    detail: `Active checkpoint '${holder.name}' already exists for runner '${runnerId}'`,
    holderCleaning: cleaning,
  };
}

/** Idempotent: (name, seq) is unique, and a row only moves forward in seq. */
export async function projectTransition(db: Db, p: ProjectionInput, opts: { releaseClaim?: boolean } = {}, now = new Date()): Promise<void> {
  await db.transaction((tx) => projectIn(tx, p, opts, now));
}

/**
 * The transitions of one await point, in one transaction; then the epoch watermark when asked.
 * Alerts are left to the caller (their delivery hook runs after the commit).
 */
export async function recordProgress(db: Db, input: ProgressInput, now = new Date()): Promise<ProgressResult> {
  return db.transaction(async (tx) => {
    for (const t of input.transitions) {
      await projectIn(tx, { name: input.name, runnerId: input.runnerId, seq: t.seq, from: t.from, to: t.to, event: t.event, detail: t.detail, fields: t.fields }, { releaseClaim: t.releaseClaim }, now);
    }
    if (!input.takeEpochWatermark) return { epochWatermark: null };
    const epoch = await takeEpochWatermark(tx as unknown as Db);
    await tx.execute(sql`update checkpoints set epoch_at_reset = ${epoch} where name = ${input.name}`);
    return { epochWatermark: epoch };
  });
}

async function projectIn(tx: any, p: ProjectionInput, opts: { releaseClaim?: boolean | undefined }, now: Date): Promise<void> {
  {
    const inserted = await rowsOf(
      tx,
      // No row (a claim that never landed): nothing to project, and no stray transition either.
      sql`insert into checkpoint_transitions (checkpoint_name, runner_id, seq, from_state, to_state, event, detail, at)
          select ${p.name}, ${p.runnerId}, ${p.seq}, ${p.from}, ${p.to}, ${p.event}, ${p.detail ?? null}, ${now}
          where exists (select 1 from checkpoints where name = ${p.name})
          on conflict do nothing
          returning id`,
    );
    if (inserted.length === 0) return;
    const f = p.fields ?? {};
    const ended = isEndState(p.to);
    await tx.execute(sql`
      update checkpoints set
        state = ${p.to},
        projection_seq = ${p.seq},
        updated_at = ${now},
        detail = coalesce(${p.detail ?? null}, detail),
        holds_claim = case when ${opts.releaseClaim === true} then false else holds_claim end,
        finalize_status = coalesce(${f.finalizeStatus ?? null}, finalize_status),
        finalize_source = coalesce(${f.finalizeSource ?? null}, finalize_source),
        finalize_queued_at = coalesce(${f.finalizeQueuedAtMs !== undefined ? new Date(f.finalizeQueuedAtMs) : null}, finalize_queued_at),
        needs_attention_reason = case when ${f.needsAttentionReason !== undefined} then ${f.needsAttentionReason ?? null} else needs_attention_reason end,
        ttl_extensions = coalesce(${f.ttlExtensions ?? null}, ttl_extensions),
        epoch_at_reset = coalesce(${f.epochAtReset ?? null}, epoch_at_reset),
        vmid = coalesce(${f.vmid ?? null}, vmid),
        created_done_at = case when ${p.to === 'created' && p.from === 'creating'} then ${now} else created_done_at end,
        reset_started_at = case when ${p.to === 'resetting'} then ${now} else reset_started_at end,
        ready_at = case when ${p.event === 'ready'} then ${now} else ready_at end,
        ended_at = case when ${ended} then ${now} else ended_at end
      where name = ${p.name} and projection_seq < ${p.seq}`);
  }
}

export async function takeEpochWatermark(db: Db): Promise<number> {
  const [row] = await rowsOf(db, sql`select nextval('agent_session_epoch') as epoch`);
  return Number(row!.epoch);
}

export async function loadRunnerPlan(db: Db, runnerId: string): Promise<RunnerPlan> {
  const [r] = await rowsOf(db, sql`select * from runners where runner_id = ${runnerId}`);
  const [presence] = await rowsOf(db, sql`select declared_commands from agent_presence where runner_id = ${runnerId}`);
  const declared: string[] = Array.isArray(presence?.declared_commands) ? presence.declared_commands : [];
  if (!r) {
    return { exists: false, active: false, backend: 'bare_metal', successAction: 'reset', resetMode: 'reboot', pauseMethod: 'none', hasReadinessCommand: false, hasCleanupCommand: false, vmid: null };
  }
  const hasCleanupCommand = Boolean(r.cleanup_cmd) || declared.includes('cleanup');
  const backend = r.backend as RunnerPlan['backend'];
  // One reading of the options column for everyone: the registry's.
  const { successAction, resetMode } = parseRunnerOptions(r.options ?? {}, backend, hasCleanupCommand ? 'cleanup' : null);
  return {
    exists: true,
    active: Boolean(r.is_active),
    backend,
    successAction,
    resetMode,
    pauseMethod: r.gitlab_runner_id ? 'gitlab' : declared.includes('pause_runner') ? 'agent' : 'none',
    hasReadinessCommand: Boolean(r.readiness_cmd) || declared.includes('readiness'),
    hasCleanupCommand,
    vmid: r.proxmox_vmid ?? null,
  };
}

/** Clears a claim whose workflow no longer exists, recording the transition like a projection. */
export async function releaseOrphanClaim(db: Db, row: CheckpointRow, actor: string): Promise<void> {
  await db.transaction(async (tx) => {
    const [{ seq }] = (await tx
      .select({ seq: sql<number>`coalesce(max(${checkpointTransitions.seq}), 0) + 1` })
      .from(checkpointTransitions)
      .where(sql`${checkpointTransitions.checkpointName} = ${row.name}`)) as [{ seq: number }];
    await tx.insert(checkpointTransitions).values({
      checkpointName: row.name,
      runnerId: row.runnerId,
      seq: Number(seq),
      fromState: row.state,
      toState: 'released',
      event: 'release_requested',
      detail: `released by ${actor}; the workflow had closed`,
    });
    await tx
      .update(checkpoints)
      .set({ state: 'released', holdsClaim: false, needsAttentionReason: null, projectionSeq: Number(seq), updatedAt: new Date(), endedAt: new Date() })
      .where(sql`${checkpoints.name} = ${row.name} and ${checkpoints.state} = 'needs_attention'`);
  });
}

/** Marks a claim holder whose workflow has ended as needing attention (orphan_claim); idempotent. */
export async function markOrphanClaim(db: Db, holder: CheckpointRow, detail: string): Promise<void> {
  await db.transaction(async (tx) => {
    const updated = await rowsOf(tx, sql`
      update checkpoints set state = 'needs_attention', needs_attention_reason = 'orphan_claim', detail = ${detail},
        projection_seq = projection_seq + 1, updated_at = now()
      where name = ${holder.name} and holds_claim and needs_attention_reason is distinct from 'orphan_claim'
      returning projection_seq`);
    const seq = updated[0]?.projection_seq;
    if (seq === undefined) return;
    await tx.execute(sql`
      insert into checkpoint_transitions (checkpoint_name, runner_id, seq, from_state, to_state, event, detail)
      values (${holder.name}, ${holder.runnerId}, ${seq}, ${holder.state}, 'needs_attention', 'orphan_claim', ${detail})
      on conflict do nothing`);
  });
}
