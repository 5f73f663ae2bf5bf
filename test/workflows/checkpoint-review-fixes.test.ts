// The scenarios of the workflow review (shared reviews, workflow-review.md), each as a test that
// failed on the first release of the checkpoint workflow; they run against checkpointV2Workflow.
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import { checkpointQuery, finalizeSignal, releaseSignal, retryResetSignal } from '../../workflows/messages.js';
import { FakeWorld } from '../helpers/fake-world.js';
import { create, env, inputFor, newName, recordHistory, useCheckpointServer, waitForState, withWorkers } from '../helpers/checkpoint-harness.js';

useCheckpointServer();

const EventType = proto.temporal.api.enums.v1.EventType;

async function workflowTaskFailures(handle: WorkflowHandle): Promise<number> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED).length;
}

function bareMetal(world: FakeWorld, resetMode: 'reboot' | 'auto' | 'in_place', legacy: boolean) {
  Object.assign(world.plan, { backend: 'bare_metal', resetMode, vmid: null });
  world.agent = { epoch: 1, legacy, declared: legacy ? null : ['reset', 'cleanup', 'readiness'], bootId: legacy ? null : 'boot-1' };
}

/** Creates a checkpoint and finalizes it with failure (the start of every reset scenario). */
async function createThenFail(tq: string, source: string, overrides: Parameters<typeof inputFor>[1] = {}, timings: Parameters<typeof inputFor>[2] = {}) {
  const name = newName();
  const { handle } = await create(tq, inputFor(name, overrides, timings));
  await handle.signal(finalizeSignal, { status: 'failure', source });
  return { name, handle };
}

const executed = (world: FakeWorld, name: string) => world.commandsExecuted.filter((c) => c.name === name).length;

describe('bug 1: a reset that never ran is never taken for a reboot', () => {
  for (const resetMode of ['auto', 'reboot'] as const) {
    it(`legacy agent, ${resetMode} mode: a reset not delivered (draining, session gone before send) is re-routed and runs`, async () => {
      const world = new FakeWorld();
      bareMetal(world, resetMode, true);
      world.commandScript.set('reset', ['not_delivered', 'not_delivered']);
      await withWorkers(world, async (tq) => {
        const { handle } = await createThenFail(tq, 'agent', { backend: 'bare_metal' });
        assert.equal(await handle.result(), 'reset');
        assert.equal(executed(world, 'reset'), 1, 'the reset really ran once');
      });
    });
  }

  it('legacy agent, auto mode: a reset sent and then lost is an unknown outcome, never a reboot', async () => {
    const world = new FakeWorld();
    bareMetal(world, 'auto', true);
    world.commandScript.set('reset', ['lost']);
    await withWorkers(world, async (tq) => {
      const { handle } = await createThenFail(tq, 'agent', { backend: 'bare_metal' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'command_outcome_unknown');
      assert.equal(world.paused, true, 'the runner stays paused');
      assert.equal(executed(world, 'readiness'), 0);
      await recordHistory(handle, 'legacy-auto-reset-lost');
    });
  });

  it('legacy agent: a reset whose activity failed in another way (instance shutting down) is never sent again', async () => {
    const world = new FakeWorld();
    bareMetal(world, 'auto', true);
    world.commandScript.set('reset', ['ran_then_worker_failed']);
    await withWorkers(world, async (tq) => {
      const { handle } = await createThenFail(tq, 'agent', { backend: 'bare_metal' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'command_outcome_unknown');
      assert.equal(world.commandsRun.filter((c) => c.name === 'reset').length, 1, 'sent once');
    });
  });

  it('legacy agent, reboot mode: a reset lost because our instance drained is not taken for the reboot', async () => {
    const world = new FakeWorld();
    bareMetal(world, 'reboot', true);
    world.commandScript.set('reset', ['lost_by_drain']);
    await withWorkers(world, async (tq) => {
      const { handle } = await createThenFail(tq, 'agent', { backend: 'bare_metal' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'command_outcome_unknown');
      assert.equal(executed(world, 'readiness'), 0, 'no readiness on the session that came back while the reset ran');
      assert.equal(world.paused, true);
    });
  });

  it('legacy agent, reboot mode: a session lost during the reset is the reboot; readiness runs on the new session', async () => {
    const world = new FakeWorld();
    bareMetal(world, 'reboot', true);
    world.commandScript.set('reset', ['ran_then_lost']);
    await withWorkers(world, async (tq) => {
      const { handle } = await createThenFail(tq, 'agent', { backend: 'bare_metal' });
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.commandsRun.filter((c) => c.name === 'reset').length, 1, 'never re-sent to a legacy agent');
    });
  });

  it('current agent: a lost reset goes again with the same command id when the agent comes back with the same boot id', async () => {
    const world = new FakeWorld();
    bareMetal(world, 'reboot', false);
    world.commandScript.set('reset', ['lost']);
    await withWorkers(world, async (tq) => {
      const { handle } = await createThenFail(tq, 'agent', { backend: 'bare_metal' });
      assert.equal(await handle.result(), 'reset');
      const resets = world.commandsRun.filter((c) => c.name === 'reset');
      assert.equal(resets.length, 2);
      assert.equal(resets[0]!.commandId, resets[1]!.commandId, 'the same command id, so the agent can attach or replay');
      assert.equal(executed(world, 'reset'), 1);
      await recordHistory(handle, 'current-reset-resent');
    });
  });

  it('current agent, in-place mode: a reboot during the reset is an unknown outcome', async () => {
    const world = new FakeWorld();
    bareMetal(world, 'in_place', false);
    world.commandScript.set('reset', ['rebooted']);
    await withWorkers(world, async (tq) => {
      const { handle } = await createThenFail(tq, 'agent', { backend: 'bare_metal' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'command_outcome_unknown');
    });
  });
});

describe('bug 2: operator signals count only in the needs-attention episode they answer', () => {
  it('a double Retry runs one more reset, not two; a release clicked with it is not used later', async () => {
    const world = new FakeWorld();
    world.commandResults.set('readiness', { ok: false, exitCode: 1, stdout: '', stderr: 'not ready', durationMs: 1 });
    await withWorkers(world, async (tq) => {
      const { handle } = await createThenFail(tq, 'hook', {}, { readinessTimeoutSeconds: 20 });
      await waitForState(handle, 'needs_attention');
      assert.equal(world.rollbacksStarted, 1);
      // Retry, Retry again, then Release: the first click answers the episode.
      await handle.signal(retryResetSignal, { actor: 'ops' });
      await handle.signal(retryResetSignal, { actor: 'ops' });
      await handle.signal(releaseSignal, { actor: 'ops', deleteSnapshot: true });
      for (let i = 0; i < 100 && world.rollbacksStarted < 2; i++) await env.sleep('5 seconds');
      await waitForState(handle, 'needs_attention');
      await env.sleep('30 minutes');
      const q = await handle.query(checkpointQuery);
      assert.equal(q.state, 'needs_attention', 'the second failure waits for an operator');
      assert.equal(world.rollbacksStarted, 2, 'one rollback per operator retry');
      assert.equal(world.paused, true, 'a stale release never unpaused the dirty runner');
      assert.ok((q.ignoredOperatorSignals ?? 0) >= 2);
      await recordHistory(handle, 'double-retry');
    });
  });

  it('a retry sent while the checkpoint is still created is ignored, and so is one for another episode', async () => {
    const world = new FakeWorld();
    world.commandResults.set('readiness', { ok: false, exitCode: 1, stdout: '', stderr: 'not ready', durationMs: 1 });
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name, {}, { readinessTimeoutSeconds: 20 }));
      await handle.signal(retryResetSignal, { actor: 'early' });
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      const q = await waitForState(handle, 'needs_attention');
      await handle.signal(retryResetSignal, { actor: 'ops', episode: (q.needsAttentionEpisode ?? 0) + 100 });
      await env.sleep('30 minutes');
      assert.equal((await handle.query(checkpointQuery)).state, 'needs_attention');
      assert.equal(world.rollbacksStarted, 1, 'no automatic second reset');
      // The right episode is acted on.
      world.commandResults.delete('readiness');
      await handle.signal(retryResetSignal, { actor: 'ops', episode: q.needsAttentionEpisode! });
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.rollbacksStarted, 2);
    });
  });
});

describe('bug 3: a release whose snapshot delete fails stays in needs attention', () => {
  it('no workflow task fails; the next retry runs', async () => {
    const world = new FakeWorld();
    world.commandResults.set('readiness', { ok: false, exitCode: 1, stdout: '', stderr: 'not ready', durationMs: 1 });
    await withWorkers(world, async (tq) => {
      const { name, handle } = await createThenFail(tq, 'hook', {}, { readinessTimeoutSeconds: 20 });
      await waitForState(handle, 'needs_attention');
      // Malformed operator signals (straight to Temporal) are never taken for a decision.
      await handle.signal('release', { actor: { toString: 1 }, deleteSnapshot: 'yes' });
      await handle.signal('release', { deleteSnapshot: true });
      await handle.signal('retryReset', {});
      await env.sleep('1 minute');
      assert.equal((await handle.query(checkpointQuery)).state, 'needs_attention');
      assert.equal(world.callCount('deleteSnapshot'), 0);
      world.failures.set('deleteSnapshot', { code: 'proxmox_task_failed', message: 'snapshot delete failed: storage offline' });
      await handle.signal(releaseSignal, { actor: 'ops', deleteSnapshot: true });
      for (let i = 0; i < 50 && world.callCount('deleteSnapshot') === 0; i++) await env.sleep('5 seconds');
      await env.sleep('1 minute');
      const q = await handle.query(checkpointQuery);
      assert.equal(q.state, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'snapshot_delete_failed');
      assert.equal(world.rows.get(name)!.needsAttentionReason, 'snapshot_delete_failed');
      assert.equal(await workflowTaskFailures(handle), 0);
      world.failures.delete('deleteSnapshot');
      world.commandResults.delete('readiness');
      await handle.signal(retryResetSignal, { actor: 'ops' });
      assert.equal(await handle.result(), 'reset');
      await recordHistory(handle, 'release-delete-fails');
    });
  });
});

describe('bug 5: readiness probes of a retry carry new command ids', () => {
  it('the ids of the second round differ from the first', async () => {
    const world = new FakeWorld();
    bareMetal(world, 'in_place', false);
    world.commandResults.set('readiness', { ok: false, exitCode: 1, stdout: '', stderr: 'not ready', durationMs: 1 });
    await withWorkers(world, async (tq) => {
      const { handle } = await createThenFail(tq, 'hook', { backend: 'bare_metal' }, { readinessTimeoutSeconds: 20 });
      await waitForState(handle, 'needs_attention');
      const first = new Set(world.commandsRun.filter((c) => c.name === 'readiness').map((c) => c.commandId));
      const resetIds = new Set(world.commandsRun.filter((c) => c.name === 'reset').map((c) => c.commandId));
      world.commandResults.delete('readiness');
      await handle.signal(retryResetSignal, { actor: 'ops' });
      assert.equal(await handle.result(), 'reset');
      const second = world.commandsRun.filter((c) => c.name === 'readiness' && !first.has(c.commandId));
      assert.equal(second.length, world.commandsRun.filter((c) => c.name === 'readiness').length - first.size, 'no id of the first round was sent again');
      assert.ok(second.length >= 1);
      assert.equal(new Set(world.commandsRun.filter((c) => c.name === 'reset').map((c) => c.commandId)).size, resetIds.size + 1, 'the retried reset has its own id');
    });
  });
});

describe('bug 8: signal handlers cannot throw', () => {
  it('a retryReset with an actor that is no string is ignored; the next finalize is processed', async () => {
    const world = new FakeWorld();
    world.plan.hasCleanupCommand = true;
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name));
      await handle.signal('retryReset', { actor: { toString: 1 } });
      await handle.signal('release', { actor: { toString: 1 }, deleteSnapshot: 'yes' });
      await handle.signal('finalize', { status: 42 });
      await handle.signal('finalize', null);
      await handle.signal(finalizeSignal, { status: 'success', source: 'hook' });
      assert.equal(await handle.result(), 'deleted');
      assert.equal(await workflowTaskFailures(handle), 0);
      await recordHistory(handle, 'malformed-signals');
    });
  });
});

describe('bug 7 and bug 12', () => {
  it('the agent activity outlives the gateway reply deadline (command timeout + 30 s) by 30 s', async () => {
    const world = new FakeWorld();
    bareMetal(world, 'in_place', false);
    await withWorkers(world, async (tq) => {
      const { handle } = await createThenFail(tq, 'hook', { backend: 'bare_metal' }, { commandTimeoutSeconds: 40 });
      assert.equal(await handle.result(), 'reset');
      const history = await handle.fetchHistory();
      const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runAgentCommand');
      assert.ok(scheduled.length >= 2);
      for (const e of scheduled) assert.equal(Number(e.activityTaskScheduledEventAttributes!.startToCloseTimeout!.seconds), 100);
    });
  });

  it('a pause_failed alert is resolved when the operator retries', async () => {
    const world = new FakeWorld();
    world.failures.set('pauseRunner', { code: 'gitlab_auth', message: '403 Forbidden' });
    await withWorkers(world, async (tq) => {
      const { name, handle } = await createThenFail(tq, 'hook');
      await waitForState(handle, 'needs_attention');
      assert.ok(world.alerts.some((a) => a.key === `pause_failed:${name}` && !a.resolved));
      world.failures.delete('pauseRunner');
      await handle.signal(retryResetSignal, { actor: 'ops' });
      assert.equal(await handle.result(), 'reset');
      assert.deepEqual(world.alerts.filter((a) => !a.resolved).map((a) => a.key), []);
    });
  });
});
