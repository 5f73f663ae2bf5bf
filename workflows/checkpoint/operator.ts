// Needs attention: the run stops, raises a critical alert, and waits for an operator. One request
// answers one episode: Retry runs the reset again; Release (optionally deleting the snapshot) gives
// the runner back without a reset. A release whose snapshot delete fails opens a new episode.
import { condition } from '@temporalio/workflow';
import type { ClaimedContext } from './context.js';
import { failureMessage, NeedsAttention } from './failures.js';

export async function enterNeedsAttention(ctx: ClaimedContext, err: NeedsAttention): Promise<void> {
  const { run, input } = ctx;
  run.step = null;
  run.apply({ type: 'step_failed', reason: err.reason, detail: err.detail }, err.detail, { needsAttentionReason: err.reason });
  run.openEpisode();
  run.raiseAlert({ key: `needs_attention:${input.name}`, severity: 'critical', message: `Runner ${input.runnerId} needs attention (${err.reason}): ${err.detail}` });
  await run.commit();
}

/** Waits for the operator's decision on the current episode; a failed release delete asks again. */
export async function awaitOperatorDecision(ctx: ClaimedContext): Promise<'retry' | 'released'> {
  const { run, input, acts, ref } = ctx;
  for (;;) {
    await run.commit();
    await condition(() => run.operatorQueue.length > 0);
    const request = run.takeOperatorRequest();
    run.resolveAlert(`needs_attention:${input.name}`);
    run.resolveAlert(`pause_failed:${input.name}`);
    if (request.kind === 'retry_reset') {
      run.apply({ type: 'retry_reset', actor: request.signal.actor }, `reset retried by ${request.signal.actor}`);
      return 'retry';
    }
    const { actor, deleteSnapshot } = request.signal;
    if (deleteSnapshot && ctx.plan.backend === 'proxmox') {
      try {
        await run.commitThen(() => acts.backend.deleteSnapshot(ref));
      } catch (err) {
        await enterNeedsAttention(ctx, new NeedsAttention('snapshot_delete_failed', `release by ${actor}: snapshot delete failed: ${failureMessage(err)}`));
        continue;
      }
    }
    run.apply({ type: 'release_requested', actor, deleteSnapshot }, `released by ${actor}${deleteSnapshot ? ', snapshot deleted' : ''}`, { needsAttentionReason: null }, { releaseClaim: true });
    return 'released';
  }
}
