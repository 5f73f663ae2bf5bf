// The checkpoint workflow (v2): create, await the job's outcome, then clean up or reset. Read this
// file top to bottom; each step lives in its own file next to it. A thin interpreter of src/domain:
// the transition table decides what may follow what, and the run never fails or throws at an
// operator: whatever cannot finish safely waits in needs_attention with the runner paused.
import { ApplicationFailure, CancellationScope, condition, isCancellation, log, setHandler, sleep } from '@temporalio/workflow';
import type { WorkflowEnd } from '../../src/domain/checkpoint-states.js';
import { boundedPollSeconds, decideAtTtl, pathAfterFinalize, type JobObservation } from '../../src/domain/decisions.js';
import type { FinalizeIntent } from '../../src/domain/finalize.js';
import { checkpointQuery, createUpdate, finalizeSignal, releaseSignal, retryResetSignal, type CheckpointWorkflowInput, type CreateResult } from '../messages.js';
import { checkpointActivities } from './activities.js';
import { AgentCommands } from './agent-commands.js';
import type { CheckpointContext, ClaimedContext } from './context.js';
import { createCheckpoint } from './create.js';
import { describeFailedCommand, failureMessage, NeedsAttention } from './failures.js';
import { needsAttentionThenOperator, resetPath } from './reset-path.js';
import { CheckpointRun } from './state.js';
import { finishUnpaused } from './unpause.js';

export async function checkpointV2Workflow(input: CheckpointWorkflowInput): Promise<WorkflowEnd> {
  const acts = checkpointActivities(input.timings);
  const run = new CheckpointRun(input, acts.store, input.resume?.state);
  const ctx: CheckpointContext = {
    input,
    t: input.timings,
    ref: { name: input.name, runnerId: input.runnerId },
    run,
    acts,
    agent: new AgentCommands(input.runnerId, input.name, input.timings, acts, run),
  };
  registerHandlers(ctx);

  // Cancellation is handled, not obeyed blindly: while created it means "canceled"; during create it
  // compensates; on the reset path the work continues. Every step runs non-cancellable.
  CancellationScope.current().cancelRequested.catch(() => {
    run.cancelRequested = true;
  });

  return CancellationScope.nonCancellable(async (): Promise<WorkflowEnd> => {
    if (input.resume) return finishUnpaused({ ...ctx, plan: input.resume.plan, vmid: input.resume.plan.vmid }, input.resume);
    const created = await createCheckpoint(ctx);
    if (created.kind === 'ended') return created.end;
    if (created.kind === 'needs_attention') return needsAttentionThenOperator(created.ctx, created.failure);
    return awaitOutcome(created.ctx);
  });
}

function registerHandlers({ run, input }: CheckpointContext): void {
  setHandler(
    createUpdate,
    async (req): Promise<CreateResult> => {
      run.createRequested = true;
      if (run.createDeadlineMs === 0) run.createDeadlineMs = req.deadlineMs;
      let won: boolean;
      try {
        won = await condition(() => run.createOutcome !== undefined, Math.max(1, req.deadlineMs - Date.now()));
        // Committed: the snapshot exists and is being recorded, so the answer is success, late.
        if (!won && run.createCommitted) won = await condition(() => run.createOutcome !== undefined).then(() => true);
      } catch (err) {
        // Canceled while creating: the main sequence compensates; the caller gets a domain answer.
        throw ApplicationFailure.create({ type: 'backend', nonRetryable: true, message: isCancellation(err) ? 'Checkpoint creation was canceled' : `Checkpoint creation failed: ${failureMessage(err)}` });
      }
      if (!won) {
        run.createTimedOut = true;
        throw ApplicationFailure.create({ type: 'create_timeout', nonRetryable: true, message: 'Checkpoint creation did not finish before its deadline' });
      }
      const outcome = run.createOutcome!;
      if (outcome.ok) return { name: input.name, state: run.state === 'new' ? 'creating' : run.state };
      throw ApplicationFailure.create({ type: outcome.code, nonRetryable: true, message: outcome.detail });
    },
    {
      validator: (req) => {
        if (typeof req?.deadlineMs !== 'number' || req.deadlineMs <= Date.now()) {
          throw ApplicationFailure.create({ type: 'create_timeout', nonRetryable: true, message: 'Create deadline already passed' });
        }
      },
    },
  );
  // Signal handlers validate and queue; a throw would fail every workflow task, so none can.
  const guarded = (name: string, fn: (sig: unknown) => void) => (sig: unknown) => {
    try {
      fn(sig);
    } catch {
      log.warn(`ignoring malformed ${name} signal`, { checkpoint: input.name });
    }
  };
  setHandler(finalizeSignal, guarded('finalize', (sig) => run.acceptFinalize(sig)));
  setHandler(retryResetSignal, guarded('retryReset', (sig) => run.acceptRetryReset(sig)));
  setHandler(releaseSignal, guarded('release', (sig) => run.acceptRelease(sig)));
  setHandler(checkpointQuery, () => run.query());
}

/** Created: wait for the first finalize (API, agent, webhook, GitLab job watch, cancel) or the TTL. */
async function awaitOutcome(ctx: ClaimedContext): Promise<WorkflowEnd> {
  const { run, t, input, acts } = ctx;
  const createdAt = Date.now();
  let ttlAt = createdAt + t.ttlSeconds * 1000;
  let watched: FinalizeIntent | null = null;
  const watchScope = new CancellationScope();
  if (t.pollerEnabled && input.projectId) {
    const projectId = input.projectId;
    watchScope
      .run(async () => {
        await sleep(`${t.pollerMinAgeSeconds} seconds`);
        const res = await acts.watcher.watchJob({ ...ctx.ref, jobId: input.jobId, projectId, intervalSeconds: t.pollerIntervalSeconds });
        watched = { status: res.outcome, source: 'poller', at: Date.now() };
      })
      .catch(() => undefined); // canceled when another source wins
  }

  let intent: FinalizeIntent | null = null;
  while (intent === null) {
    await run.commit();
    const woke = await condition(() => run.finalizeQueue.length > 0 || watched !== null || run.cancelRequested, Math.max(0, ttlAt - Date.now()));
    if (woke) {
      intent = run.finalizeQueue.shift() ?? watched ?? { status: 'canceled', source: 'cancel', at: Date.now() };
      break;
    }
    run.step = 'ttl_check';
    let observation: JobObservation;
    try {
      observation = await acts.ci.observeJob({ ...ctx.ref, jobId: input.jobId, projectId: input.projectId });
    } catch (err) {
      observation = { kind: 'error', detail: failureMessage(err) };
    }
    const decision = decideAtTtl(observation, Math.floor((Date.now() - createdAt) / 1000), t.maxTtlSeconds);
    run.step = null;
    if (decision.action === 'extend') {
      // At most MAX_POLLS_PER_WAIT checks up to the maximum age, however short the TTL.
      ttlAt += boundedPollSeconds(t.ttlSeconds, t.maxTtlSeconds) * 1000;
      run.apply({ type: 'ttl_extended', detail: observation.kind }, `TTL extended (${observation.kind === 'error' ? `GitLab error: ${observation.detail}` : 'job still running'})`, { ttlExtensions: run.snapshot.ttlExtensions + 1 });
      continue;
    }
    watchScope.cancel();
    if (decision.action === 'needs_attention') return needsAttentionThenOperator(ctx, new NeedsAttention('ttl_exceeded', decision.detail));
    run.apply({ type: 'ttl_expired', detail: observation.kind }, `TTL expired: job ${observation.kind === 'terminal' ? `finished (${observation.outcome})` : 'unknowable'}`);
    return resetPath(ctx);
  }
  watchScope.cancel();
  run.apply({ type: 'finalize_requested', intent }, `Finalize queued: status=${intent.status}, source=${intent.source}`, {
    finalizeStatus: intent.status,
    finalizeSource: intent.source,
    finalizeQueuedAtMs: intent.at,
  });
  run.recordLateFinalizes();

  if (pathAfterFinalize(intent.status, ctx.plan.successAction) === 'reset') {
    run.apply({ type: 'reset_started' }, `resetting after ${intent.status}`);
    return resetPath(ctx);
  }
  run.apply({ type: 'cleanup_started' }, 'running the success action: cleanup');
  const failure = await runCleanup(ctx);
  if (failure !== null) {
    run.apply({ type: 'cleanup_failed', detail: failure }, `cleanup failed, resetting instead: ${failure}`);
    return resetPath(ctx);
  }
  run.apply({ type: 'cleanup_done' }, ctx.plan.backend === 'proxmox' ? 'cleanup done, snapshot deleted' : 'cleanup done', {}, { releaseClaim: true });
  run.recordLateFinalizes();
  await run.commit();
  return 'deleted';
}

/** The success action: the declared cleanup command, then the snapshot delete. Null on success. */
async function runCleanup(ctx: ClaimedContext): Promise<string | null> {
  const { run } = ctx;
  run.step = 'cleanup';
  if (ctx.plan.hasCleanupCommand) {
    const outcome = await ctx.agent.execute('cleanup', `${ctx.input.name}:cleanup:1`);
    if (outcome.kind !== 'result') return `cleanup command: ${outcome.detail}`;
    if (!outcome.result.ok) return `cleanup command ${describeFailedCommand(outcome.result)}`;
  }
  if (ctx.plan.backend === 'proxmox') {
    try {
      await run.commitThen(() => ctx.acts.backend.deleteSnapshot(ctx.ref));
    } catch (err) {
      return `snapshot delete: ${failureMessage(err)}`;
    }
  }
  run.step = null;
  return null;
}
