// Create: claim the runner, take the snapshot (Proxmox; a bare-metal runner's reset point is the
// checkpoint row), and answer the caller's update. The answer is decided here alone: once the
// snapshot exists and is being recorded the create succeeds, even past its deadline; before that,
// a passed deadline or a cancel compensates (delete what may exist, release the claim).
import { allHandlersFinished, condition, sleep } from '@temporalio/workflow';
import type { ClaimResult, RunnerPlan } from '../../activities/types.js';
import type { CheckpointContext, ClaimedContext } from './context.js';
import { failureMessage, NeedsAttention } from './failures.js';
import type { CreateOutcome } from './state.js';

export type CreateEnd =
  | { kind: 'created'; ctx: ClaimedContext }
  | { kind: 'ended'; end: 'abandoned' | 'rejected' | 'create_failed' }
  | { kind: 'needs_attention'; ctx: ClaimedContext; failure: NeedsAttention };

export async function createCheckpoint(ctx: CheckpointContext): Promise<CreateEnd> {
  const { run, t, input, acts, ref } = ctx;
  const accepted = run.createRequested || (await condition(() => run.createRequested, `${t.createAcceptWindowSeconds} seconds`));
  if (!accepted) return { kind: 'ended', end: 'abandoned' };

  const claimDeadline = Date.now() + t.createWaitForCleanupSeconds * 1000;
  const claimInput = { ...ref, jobId: input.jobId, projectId: input.projectId, backend: input.backend, caller: input.caller, cooldownSeconds: t.cooldownSeconds, includePlan: true };
  const giveUp = () => run.createTimedOut || run.cancelRequested;
  let claim: ClaimResult;
  try {
    claim = await acts.claim.claimRunner(claimInput);
    // The holder is cleaning up after a success: its claim ends in seconds, so wait for it.
    while (!claim.ok && claim.holderCleaning && Date.now() < claimDeadline && !giveUp()) {
      await sleep('2 seconds');
      claim = await acts.claim.claimRunner(claimInput);
    }
  } catch (err) {
    // The database did not answer: our row may or may not exist, so release it if it does.
    const detail = `could not claim the runner: ${failureMessage(err)}`;
    run.applyClaimed();
    run.apply({ type: 'create_failed', detail }, detail, {}, { releaseClaim: true });
    await run.commit();
    await answerCreate(ctx, { ok: false, code: 'backend', detail });
    return { kind: 'ended', end: 'create_failed' };
  }
  if (!claim.ok) {
    await answerCreate(ctx, { ok: false, code: claim.code === 'runner_not_found' ? 'not_found' : claim.code, detail: claim.detail });
    return { kind: 'ended', end: 'rejected' };
  }
  run.applyClaimed();
  const plan: RunnerPlan = claim.plan ?? (await acts.store.loadRunnerPlan({ runnerId: input.runnerId }));
  const claimed: ClaimedContext = { ...ctx, plan, vmid: plan.vmid };

  let createError: string | null = null;
  const snapshotFromMs = Date.now();
  if (plan.backend === 'proxmox' && !giveUp()) {
    run.step = 'snapshot';
    try {
      claimed.vmid = (await acts.snapshotting(run.createDeadlineMs, Date.now()).takeSnapshot(ref)).vmid;
    } catch (err) {
      createError = failureMessage(err);
    }
  }
  if (createError !== null || giveUp()) {
    const why = createError ?? (run.createTimedOut ? 'create deadline passed' : 'workflow canceled during create');
    const failure = await compensate(claimed, why, snapshotFromMs);
    await answerCreate(ctx, { ok: false, code: run.createTimedOut ? 'create_timeout' : 'backend', detail: `Snapshot failed: ${why}` });
    return failure ? { kind: 'needs_attention', ctx: claimed, failure } : { kind: 'ended', end: 'create_failed' };
  }
  run.createCommitted = true;
  run.step = null;
  run.apply({ type: 'snapshot_taken' }, plan.backend === 'proxmox' ? 'snapshot taken' : 'reset point recorded', claimed.vmid !== null ? { vmid: claimed.vmid } : {});
  await run.commit();
  await answerCreate(ctx, { ok: true });
  return { kind: 'created', ctx: claimed };
}

/** Deletes what the create may have made (after any snapshot task it started ends) and releases. */
async function compensate(ctx: ClaimedContext, why: string, snapshotFromMs: number): Promise<NeedsAttention | null> {
  const { run, acts, ref } = ctx;
  run.step = 'compensate';
  if (ctx.plan.backend === 'proxmox') {
    try {
      await acts.backend.deleteSnapshot({ ...ref, snapshotTasksSinceMs: snapshotFromMs });
    } catch (err) {
      return new NeedsAttention('orphan_snapshot', `create failed (${why}) and the snapshot could not be deleted: ${failureMessage(err)}`);
    }
  }
  run.step = null;
  run.apply({ type: 'create_failed', detail: why }, why, {}, { releaseClaim: true });
  await run.commit();
  return null;
}

async function answerCreate(ctx: CheckpointContext, outcome: CreateOutcome): Promise<void> {
  ctx.run.createOutcome = outcome;
  await condition(allHandlersFinished);
}
