// The last step: the runner is clean and its claim released; unpause it, without limit, because a
// clean runner kept paused is lost capacity, never a risk. A slow unpause raises `unpause_slow`
// once (resolved when it works), and a very long one continues as new to keep the history bounded.
import { condition, continueAsNew, sleep, workflowInfo } from '@temporalio/workflow';
import type { WorkflowEnd } from '../../src/domain/checkpoint-states.js';
import { backoffSeconds } from '../../src/domain/decisions.js';
import type { CheckpointResume, CheckpointWorkflowInput } from '../messages.js';
import type { ClaimedContext } from './context.js';
import { describeFailedCommand, failureMessage } from './failures.js';

/** Far below Temporal's 51,200-event limit, and small enough to replay quickly. */
export const CONTINUE_AS_NEW_AFTER_EVENTS = 2_000;

export async function finishUnpaused(ctx: ClaimedContext, resume?: CheckpointResume): Promise<WorkflowEnd> {
  const { run } = ctx;
  if (!resume) run.apply({ type: 'claim_released' }, 'claim released');
  run.step = 'unpause';
  await unpauseRunner(ctx, resume);
  run.step = null;
  run.apply({ type: 'unpaused' }, 'runner unpaused');
  run.recordLateFinalizes();
  await run.commit();
  return run.state as WorkflowEnd;
}

async function unpauseRunner(ctx: ClaimedContext, resume?: CheckpointResume): Promise<void> {
  const { run, plan, input, t } = ctx;
  if (plan.pauseMethod === 'none') return;
  const since = resume?.unpauseSinceMs ?? Date.now();
  const alertAt = since + t.unpauseAlertAfterSeconds * 1000;
  const alertKey = `unpause_slow:${input.name}`;
  let alerted = resume?.alerted ?? false;
  const alertOnce = (why: string) => {
    if (alerted) return;
    alerted = true;
    run.raiseAlert({ key: alertKey, severity: 'warning', message: `Runner ${input.runnerId} is clean but ${why}` });
  };

  for (let attempt = (resume?.unpauseAttempts ?? 0) + 1; ; attempt++) {
    await run.commit();
    const failure = plan.pauseMethod === 'agent' ? await unpauseByAgent(ctx, attempt) : await unpauseInGitLab(ctx, alerted ? null : alertAt, () => alertOnce(`could not be unpaused for ${t.unpauseAlertAfterSeconds}s`));
    if (failure === null) break;
    if (plan.pauseMethod === 'gitlab') alertOnce(`could not be unpaused: ${failure}`);
    else if (Date.now() >= alertAt) alertOnce(`could not be unpaused for ${t.unpauseAlertAfterSeconds}s: ${failure}`);
    if (workflowInfo().historyLength > CONTINUE_AS_NEW_AFTER_EVENTS || workflowInfo().continueAsNewSuggested) {
      await run.commit();
      const next: CheckpointWorkflowInput = {
        ...input,
        resume: { at: 'unpause', state: run.resumeState(), plan, unpauseSinceMs: since, alerted, unpauseAttempts: attempt },
      };
      await continueAsNew<(i: CheckpointWorkflowInput) => Promise<WorkflowEnd>>(next);
    }
    await run.commitThen(() => sleep(`${backoffSeconds(attempt, plan.pauseMethod === 'agent' ? 5 : 30, 300)} seconds`));
  }
  if (alerted) run.resolveAlert(alertKey);
}

/** Null when the agent unpaused the runner, else why not. */
async function unpauseByAgent(ctx: ClaimedContext, attempt: number): Promise<string | null> {
  const outcome = await ctx.agent.execute('unpause_runner', `${ctx.input.name}:unpause:${attempt}`);
  if (outcome.kind === 'result') return outcome.result.ok ? null : `unpause_runner command ${describeFailedCommand(outcome.result)}`;
  return `unpause_runner command: ${outcome.detail}`;
}

/**
 * One unpause activity (retried by the server until it works or fails for good). Past `alertAt`
 * the slow alert is raised and written before waiting on: it can never land after the resolve.
 */
async function unpauseInGitLab(ctx: ClaimedContext, alertAt: number | null, onSlow: () => void): Promise<string | null> {
  let settled: { failure: string | null } | null = null;
  const call = ctx.acts.unpausing.unpauseRunner(ctx.ref).then(
    () => void (settled = { failure: null }),
    (err: unknown) => void (settled = { failure: failureMessage(err) }),
  );
  if (alertAt !== null) {
    const inTime = await condition(() => settled !== null, Math.max(1, alertAt - Date.now()));
    if (!inTime) {
      onSlow();
      await ctx.run.commit();
    }
  }
  await call;
  return settled!.failure;
}
