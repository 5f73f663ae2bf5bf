// The reset path: pause the runner, confirm no job runs on it, roll the VM back (or run the
// declared reset on bare metal), prove readiness, delete the snapshot, release the claim, unpause.
// Any step that cannot finish safely leads to needs_attention; the runner then stays paused.
import { sleep } from '@temporalio/workflow';
import type { WorkflowEnd } from '../../src/domain/checkpoint-states.js';
import { boundedPollSeconds, decideIdle, initialIdleProgress, isSessionFresh, readLostReset, resetNeedsFreshSession } from '../../src/domain/decisions.js';
import type { RoutedRoute } from './agent-commands.js';
import type { ClaimedContext } from './context.js';
import { describeFailedCommand, failureMessage, failureType, NeedsAttention } from './failures.js';
import { awaitOperatorDecision, enterNeedsAttention } from './operator.js';
import { finishUnpaused } from './unpause.js';

/** Runs the reset until the runner is ready or an operator releases it. */
export async function resetPath(ctx: ClaimedContext): Promise<WorkflowEnd> {
  for (;;) {
    const failure = await resetOnce(ctx);
    if (failure === null) return finishUnpaused(ctx);
    if ((await handleNeedsAttention(ctx, failure)) === 'released') return finishUnpaused(ctx);
  }
}

/** Needs attention outside the reset loop (create compensation, maximum age): then as the operator says. */
export async function needsAttentionThenOperator(ctx: ClaimedContext, failure: NeedsAttention): Promise<WorkflowEnd> {
  if ((await handleNeedsAttention(ctx, failure)) === 'released') return finishUnpaused(ctx);
  return resetPath(ctx);
}

async function handleNeedsAttention(ctx: ClaimedContext, failure: NeedsAttention): Promise<'retry' | 'released'> {
  await enterNeedsAttention(ctx, failure);
  return awaitOperatorDecision(ctx);
}

/** One reset attempt: null when the runner is proven ready (claim released), else why not. */
async function resetOnce(ctx: ClaimedContext): Promise<NeedsAttention | null> {
  const { run, plan } = ctx;
  try {
    await pauseRunner(ctx);
    run.apply({ type: 'paused' }, plan.pauseMethod === 'none' ? 'runner has no pause method' : `paused via ${plan.pauseMethod}`);
    await confirmIdle(ctx);
    run.apply({ type: 'idle_confirmed' }, 'no job running on the runner');
    const { epochAtReset, sessionDropped, route } = plan.backend === 'proxmox' ? await rollbackVm(ctx) : await resetBareMetal(ctx);
    run.apply({ type: 'reset_done' }, plan.backend === 'proxmox' ? 'VM rolled back to the checkpoint' : 'reset command finished');
    await proveReadiness(ctx, epochAtReset, sessionDropped, route);
    if (plan.backend === 'proxmox') {
      run.step = 'delete_snapshot';
      try {
        await run.commitThen(() => ctx.acts.backend.deleteSnapshot(ctx.ref));
      } catch (err) {
        throw new NeedsAttention('snapshot_delete_failed', `runner is ready but the snapshot could not be deleted: ${failureMessage(err)}`);
      }
    }
    run.apply({ type: 'ready' }, 'runner verified ready', {}, { releaseClaim: true });
    return null;
  } catch (err) {
    if (err instanceof NeedsAttention) return err;
    throw err;
  }
}

async function pauseRunner(ctx: ClaimedContext): Promise<void> {
  const { run, plan, input } = ctx;
  run.step = 'pause';
  if (plan.pauseMethod === 'none') return;
  let detail: string;
  if (plan.pauseMethod === 'agent') {
    const outcome = await ctx.agent.execute('pause_runner', `${input.name}:pause:${run.seq}`);
    if (outcome.kind === 'result' && outcome.result.ok) return;
    detail = `pause_runner command: ${outcome.kind === 'result' ? describeFailedCommand(outcome.result) : outcome.detail}`;
  } else {
    try {
      await run.commitThen(() => ctx.acts.pausing.pauseRunner(ctx.ref));
      return;
    } catch (err) {
      detail = `pausing the GitLab runner failed for ${ctx.t.pauseBudgetSeconds}s: ${failureMessage(err)}`;
    }
  }
  run.raiseAlert({ key: `pause_failed:${input.name}`, severity: 'critical', message: `Could not pause runner ${input.runnerId}: ${detail}` });
  throw new NeedsAttention('pause_failed', detail);
}

/** GitLab-paused runners: two empty job lists in a row, with graces for jobs still finishing. */
async function confirmIdle(ctx: ClaimedContext): Promise<void> {
  const { run, plan, t } = ctx;
  run.step = 'confirm_idle';
  if (plan.pauseMethod !== 'gitlab') return;
  let progress = initialIdleProgress();
  let last = Date.now();
  for (;;) {
    let observation;
    try {
      observation = await run.commitThen(() => ctx.acts.ci.listRunningJobs(ctx.ref));
    } catch (err) {
      observation = { kind: 'unknown' as const, detail: failureMessage(err) };
    }
    const now = Date.now();
    const decision = decideIdle(progress, observation, ctx.input.jobId, Math.round((now - last) / 1000), t);
    last = now;
    if (decision.action === 'idle') return;
    if (decision.action === 'busy') throw new NeedsAttention('runner_busy', decision.detail);
    progress = decision.progress;
    await sleep(`${boundedPollSeconds(t.idlePollSeconds, Math.max(t.ownJobGraceSeconds, t.foreignJobGraceSeconds))} seconds`);
  }
}

interface ResetOutcome {
  epochAtReset: number;
  /** Whether the agent's session dropped (a reboot): readiness then needs a newer one. */
  sessionDropped: boolean;
  /** A route read just after the reset, reused by the first readiness probe. */
  route?: RoutedRoute | null;
}

/**
 * Guard, stop, rollback, start. The epoch watermark is taken once the VM is stopped: no session of
 * the old boot can begin after it, so only the new boot's session proves readiness.
 */
async function rollbackVm(ctx: ClaimedContext): Promise<ResetOutcome> {
  const { run, acts, ref } = ctx;
  run.step = 'reset:guard';
  try {
    await run.commitThen(() => acts.backend.assertVmUnchanged({ ...ref, vmid: ctx.vmid }));
  } catch (err) {
    const type = failureType(err);
    if (type === 'config_changed') throw new NeedsAttention('config_changed', failureMessage(err));
    if (type === 'runner_not_found') throw new NeedsAttention('runner_missing', failureMessage(err));
    throw new NeedsAttention('reset_failed', `could not check that the VM is still the checkpoint's: ${failureMessage(err)}`);
  }
  await proxmoxStep(ctx, 'stop', () => acts.backend.stopVm(ref));
  const epochAtReset = (await run.commit({ takeEpochWatermark: true }))!;
  await proxmoxStep(ctx, 'rollback', () => acts.backend.rollbackVm(ref));
  await proxmoxStep(ctx, 'start', () => acts.backend.startVm(ref));
  return { epochAtReset, sessionDropped: true };
}

async function proxmoxStep(ctx: ClaimedContext, name: string, call: () => Promise<void>): Promise<void> {
  ctx.run.step = `reset:${name}`;
  try {
    await ctx.run.commitThen(call);
  } catch (err) {
    throw new NeedsAttention('reset_failed', `VM ${name} failed: ${failureMessage(err)}`);
  }
}

/** The agent runs the declared reset. The watermark is taken first: the reset may reboot the host. */
async function resetBareMetal(ctx: ClaimedContext): Promise<ResetOutcome> {
  const { run, plan, input, t } = ctx;
  run.step = 'reset';
  const epochAtReset = (await run.commit({ takeEpochWatermark: true }))!;
  const outcome = await ctx.agent.execute('reset', `${input.name}:reset:${run.seq}`);
  switch (outcome.kind) {
    case 'not_declared':
      throw new NeedsAttention('command_not_declared', `the agent does not declare a reset command: ${outcome.detail}`);
    case 'unreachable':
      throw new NeedsAttention('agent_unreachable', `could not reach the agent to reset: ${outcome.detail}`);
    case 'rebooted':
      if (plan.resetMode === 'in_place') {
        throw new NeedsAttention('command_outcome_unknown', `the host rebooted during an in-place reset (${outcome.detail}); the reset may or may not have completed`);
      }
      return { epochAtReset, sessionDropped: true };
    case 'lost':
      if (readLostReset(outcome, plan.resetMode) === 'rebooted') return { epochAtReset, sessionDropped: true };
      throw new NeedsAttention('command_outcome_unknown', `the session was lost while reset ran (${outcome.detail}); it may or may not have completed`);
    case 'result':
      if (!outcome.result.ok) throw new NeedsAttention('reset_failed', `reset command ${describeFailedCommand(outcome.result)}`);
  }
  if (plan.resetMode === 'reboot') return { epochAtReset, sessionDropped: true };
  if (plan.resetMode === 'in_place') return { epochAtReset, sessionDropped: false };
  if (t.resetSettleSeconds > 0) await run.commitThen(() => sleep(`${t.resetSettleSeconds} seconds`));
  const route = await ctx.agent.findRoute();
  return { epochAtReset, sessionDropped: !route || isSessionFresh(route.sessionEpoch, epochAtReset), route };
}

/**
 * Readiness is proven, never assumed: a live session (newer than the reset when the host
 * rebooted), stable for a while, then the readiness command passing on that session.
 */
async function proveReadiness(ctx: ClaimedContext, epochAtReset: number, sessionDropped: boolean, known?: RoutedRoute | null): Promise<void> {
  const { run, plan, input, t } = ctx;
  run.step = 'readiness';
  const needFresh = plan.backend === 'proxmox' || resetNeedsFreshSession(plan.resetMode, sessionDropped);
  const deadline = Date.now() + t.readinessTimeoutSeconds * 1000;
  // Unique per reset attempt: an agent that remembers ids must run a retry's probes again.
  const round = run.seq;
  let problem = 'no agent session yet';
  let route: RoutedRoute | null | undefined = known;
  for (let probe = 1; Date.now() < deadline; probe++) {
    if (route === undefined) route = await ctx.agent.findRoute();
    if (!route) {
      problem = 'agent not connected';
    } else if (needFresh && !isSessionFresh(route.sessionEpoch, epochAtReset)) {
      problem = `agent session ${route.sessionEpoch} is older than the reset (epoch ${epochAtReset})`;
    } else if (route.connectedForSeconds < t.readinessStableSeconds) {
      problem = `agent session ${route.sessionEpoch} not yet stable for ${t.readinessStableSeconds}s`;
      const wait = Math.min(t.readinessStableSeconds - route.connectedForSeconds, Math.max(1, (deadline - Date.now()) / 1000));
      route = undefined;
      await run.commitThen(() => sleep(`${Math.max(1, Math.ceil(wait))} seconds`));
      continue;
    } else if (!plan.hasReadinessCommand) {
      return;
    } else {
      const outcome = await ctx.agent.sendOnce(route, 'readiness', `${input.name}:readiness:${round}:${probe}`);
      if (outcome.kind === 'result' && outcome.result.ok) return;
      problem = outcome.kind === 'result' ? `readiness command ${describeFailedCommand(outcome.result)}` : outcome.detail;
    }
    route = undefined;
    const left = deadline - Date.now();
    if (left <= 0) break;
    await run.commitThen(() => sleep(Math.min(left, boundedPollSeconds(t.readinessPollIntervalSeconds, t.readinessTimeoutSeconds) * 1000)));
  }
  throw new NeedsAttention('readiness_timeout', `runner not ready within ${t.readinessTimeoutSeconds}s: ${problem}`);
}
