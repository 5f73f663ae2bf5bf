// Paths the second release of the checkpoint workflow (checkpointV2Workflow) takes on: a legacy
// reset lost to an instance crash, the VM guard, orphan snapshots, agent pause and unpause, a
// bounded history for an unpause that never works, and the cost of one reset lifecycle.
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { CHECKPOINT_V1_WORKFLOW_TYPE, createUpdate, finalizeSignal, releaseSignal } from '../../workflows/messages.js';
import { FakeWorld } from '../helpers/fake-world.js';
import { create, env, inputFor, newName, recordHistory, useCheckpointServer, waitForState, withWorkers } from '../helpers/checkpoint-harness.js';

useCheckpointServer();

const EventType = proto.temporal.api.enums.v1.EventType;

async function failAfterCreate(tq: string, overrides: Parameters<typeof inputFor>[1] = {}, timings: Parameters<typeof inputFor>[2] = {}) {
  const name = newName();
  const { handle } = await create(tq, inputFor(name, overrides, timings));
  await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
  return { name, handle };
}

async function eventsOf(handle: WorkflowHandle) {
  return (await handle.fetchHistory()).events ?? [];
}

describe('checkpoint workflow v2', () => {
  it('legacy agent, reboot mode: a reset whose instance died is an unknown outcome, never the reboot', async () => {
    const world = new FakeWorld();
    Object.assign(world.plan, { backend: 'bare_metal', resetMode: 'reboot', vmid: null });
    world.agent = { epoch: 1, legacy: true, declared: null };
    world.commandScript.set('reset', ['ran_then_instance_died']);
    await withWorkers(world, async (tq) => {
      const { handle } = await failAfterCreate(tq, { backend: 'bare_metal' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'command_outcome_unknown');
      assert.equal(world.commandsExecuted.filter((c) => c.name === 'readiness').length, 0, 'the new session of the same boot proves nothing');
      assert.equal(world.paused, true);
      await recordHistory(handle, 'legacy-reboot-instance-lost');
    });
  });

  it('current agent, reboot mode: a session seen before its hello is never taken for the same boot (no second reset)', async () => {
    const world = new FakeWorld();
    Object.assign(world.plan, { backend: 'bare_metal', resetMode: 'reboot', vmid: null });
    world.agent = { epoch: 1, legacy: false, declared: ['reset', 'readiness'], bootId: 'boot-1' };
    world.commandScript.set('reset', ['rebooted_hello_late']);
    await withWorkers(world, async (tq) => {
      const { handle } = await failAfterCreate(tq, { backend: 'bare_metal' });
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.commandsExecuted.filter((c) => c.name === 'reset').length, 1, 'the reset ran once');
      assert.equal(world.commandsRun.filter((c) => c.name === 'reset').length, 1, 'and was sent once');
      await recordHistory(handle, 'current-reboot-hello-late');
    });
  });

  it('a VM that is no longer the checkpoint\'s needs attention before anything destructive', async () => {
    const world = new FakeWorld();
    world.failures.set('assertVmUnchanged', { code: 'config_changed', message: 'runner VM id is now 101, the checkpoint was taken on VM 100' });
    await withWorkers(world, async (tq) => {
      const { handle } = await failAfterCreate(tq);
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'config_changed');
      assert.equal(world.callCount('stopVm'), 0);
      await recordHistory(handle, 'config-changed');
    });
  });

  it('a transport error while checking the VM is retried, not taken for a changed VM', async () => {
    const world = new FakeWorld();
    world.failures.set('assertVmUnchanged', { code: 'proxmox_unavailable', message: 'connect ECONNREFUSED', times: 2 });
    await withWorkers(world, async (tq) => {
      const { handle } = await failAfterCreate(tq);
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.callCount('assertVmUnchanged'), 3);
    });
  });

  it('the epoch watermark of a Proxmox reset is taken after the stop: a session of the old boot cannot prove readiness', async () => {
    const world = new FakeWorld();
    world.plan.hasReadinessCommand = false;
    world.agentReconnectsAfterReset = false;
    world.reconnectDuringStop = true;
    await withWorkers(world, async (tq) => {
      const { handle } = await failAfterCreate(tq, {}, { readinessTimeoutSeconds: 30 });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'readiness_timeout');
      const row = [...world.rows.values()][0]!;
      assert.ok(row.epochAtReset! > world.agent!.epoch, 'the watermark exceeds the session that began during the stop');
    });
  });

  it('a snapshot that fails and cannot be deleted is an orphan needing attention; a release ends it', async () => {
    const world = new FakeWorld();
    world.failures.set('takeSnapshot', { code: 'proxmox_task_failed', message: 'snapshot task failed' });
    world.failures.set('deleteSnapshot', { code: 'proxmox_task_failed', message: "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", times: 1 });
    await withWorkers(world, async (tq) => {
      const name = newName();
      await assert.rejects(create(tq, inputFor(name)), (err: any) => err.cause?.type === 'backend');
      const handle = env.client.workflow.getHandle(name);
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'orphan_snapshot');
      await handle.signal(releaseSignal, { actor: 'ops', deleteSnapshot: true, episode: q.needsAttentionEpisode! });
      assert.equal(await handle.result(), 'released');
      assert.equal([...world.rows.values()].some((r) => r.holdsClaim), false);
      await recordHistory(handle, 'orphan-snapshot');
    });
  });

  it('an agent-paused runner is paused and unpaused by its agent around the reset', async () => {
    const world = new FakeWorld();
    Object.assign(world.plan, { backend: 'bare_metal', resetMode: 'in_place', vmid: null, pauseMethod: 'agent' });
    world.agent = { epoch: 1, legacy: false, declared: ['reset', 'readiness', 'pause_runner', 'unpause_runner'], bootId: 'boot-1' };
    await withWorkers(world, async (tq) => {
      const { handle } = await failAfterCreate(tq, { backend: 'bare_metal' });
      assert.equal(await handle.result(), 'reset');
      assert.deepEqual(world.commandsExecuted.map((c) => c.name), ['pause_runner', 'reset', 'readiness', 'unpause_runner']);
      await recordHistory(handle, 'agent-pause-unpause');
    });
  });

  it('an agent unpause that never works alerts after the configured time and keeps the history bounded for 24 h', async () => {
    const world = new FakeWorld();
    Object.assign(world.plan, { backend: 'bare_metal', resetMode: 'in_place', vmid: null, pauseMethod: 'agent' });
    world.agent = { epoch: 1, legacy: false, declared: ['reset', 'readiness', 'pause_runner', 'unpause_runner'], bootId: 'boot-1' };
    world.commandResults.set('unpause_runner', { ok: false, exitCode: 1, stdout: '', stderr: 'gitlab-runner: unreachable', durationMs: 1 });
    await withWorkers(world, async (tq) => {
      const { name, handle } = await failAfterCreate(tq, { backend: 'bare_metal' });
      const firstRunId = (await handle.describe()).runId;
      await env.sleep('24 hours');
      assert.deepEqual(world.alerts.filter((a) => a.key === `unpause_slow:${name}`), [{ key: `unpause_slow:${name}`, severity: 'warning', resolved: false }]);
      const current = await handle.describe();
      assert.notEqual(current.runId, firstRunId, 'the run continued as new');
      assert.ok((current.historyLength ?? 0) < 10_000, `history of the current run: ${current.historyLength} events`);
      const first = await eventsOf(env.client.workflow.getHandle(name, firstRunId));
      assert.ok(first.length < 10_000, `first run: ${first.length} events`);
      assert.equal(first.at(-1)?.eventType, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW);
      world.commandResults.delete('unpause_runner');
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.alerts.find((a) => a.key === `unpause_slow:${name}`)?.resolved, true);
      assert.equal(world.rows.get(name)?.state, 'reset');
    });
  });

  it('a bare-metal reset lifecycle on a legacy agent takes at most 40 history events', async () => {
    const world = new FakeWorld();
    Object.assign(world.plan, { backend: 'bare_metal', resetMode: 'auto', vmid: null, pauseMethod: 'none' });
    world.agent = { epoch: 1, legacy: true, declared: null };
    world.agentReconnectsAfterReset = false;
    await withWorkers(world, async (tq) => {
      const { handle } = await failAfterCreate(tq, { backend: 'bare_metal' }, { resetSettleSeconds: 0, pollerEnabled: false });
      assert.equal(await handle.result(), 'reset');
      const events = await eventsOf(handle);
      assert.ok(events.length <= 40, `${events.length} events`);
      const upserts = events.filter((e) => e.eventType === EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES).length;
      assert.ok(upserts <= 4, `${upserts} search-attribute upserts`);
      await recordHistory(handle, 'bare-metal-legacy-auto');
    });
  });

  it('a run of the first release (checkpointWorkflow) still finishes on today\'s worker', async () => {
    const world = new FakeWorld();
    await withWorkers(world, async (tq) => {
      const name = newName();
      const start = new WithStartWorkflowOperation(CHECKPOINT_V1_WORKFLOW_TYPE, { workflowId: name, taskQueue: tq, args: [inputFor(name)], workflowIdConflictPolicy: 'USE_EXISTING' });
      await env.client.workflow.executeUpdateWithStart(createUpdate, { args: [{ deadlineMs: (await env.currentTimeMs()) + 300_000 }], updateId: 'create', startWorkflowOperation: start });
      const handle = await start.workflowHandle();
      assert.equal((await handle.describe()).type, CHECKPOINT_V1_WORKFLOW_TYPE);
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.callCount('rollbackVm'), 1);
      assert.equal(world.callCount('recordProgress'), 0, 'the first release projects one transition at a time');
    });
  });

  describe('every loop that can last a day keeps its history bounded', () => {
    const day = { readinessTimeoutSeconds: 86_400, readinessPollIntervalSeconds: 1, ownJobGraceSeconds: 86_400, foreignJobGraceSeconds: 86_400, idlePollSeconds: 1, ttlSeconds: 60, maxTtlSeconds: 86_400 };

    async function afterADay(handle: WorkflowHandle, reason: string) {
      await env.sleep('25 hours');
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, reason);
      const events = (await eventsOf(handle)).length;
      assert.ok(events < 3_000, `${events} events after a day`);
    }

    it('readiness polled every second for a day', async () => {
      const world = new FakeWorld();
      Object.assign(world.plan, { backend: 'bare_metal', resetMode: 'in_place', vmid: null, pauseMethod: 'none' });
      world.commandResults.set('readiness', { ok: false, exitCode: 1, stdout: '', stderr: 'not ready', durationMs: 1 });
      await withWorkers(world, async (tq) => {
        const { handle } = await failAfterCreate(tq, { backend: 'bare_metal' }, day);
        await afterADay(handle, 'readiness_timeout');
      });
    });

    it('idle confirmation polled every second for a day', async () => {
      const world = new FakeWorld();
      await withWorkers(world, async (tq) => {
        const name = newName();
        const input = inputFor(name, {}, day);
        world.runningJobs = Array.from({ length: 100_000 }, () => ({ kind: 'jobs' as const, jobIds: [input.jobId] }));
        const { handle } = await create(tq, input);
        await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
        await afterADay(handle, 'runner_busy');
      });
    });

    it('a running job checked every minute up to the maximum age', async () => {
      const world = new FakeWorld();
      world.jobObservation = { kind: 'running' };
      await withWorkers(world, async (tq) => {
        const name = newName();
        const { handle } = await create(tq, inputFor(name, {}, { ...day, pollerEnabled: false }));
        await afterADay(handle, 'ttl_exceeded');
      });
    });
  });
});
