// Every path of the checkpoint workflow on the real time-skipping test server, with in-memory
// activities (the real ones are tested against simulators and databases elsewhere).
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { checkpointV2Workflow } from '../../workflows/checkpoint/workflow.js';
import { checkpointQuery, finalizeSignal, releaseSignal, retryResetSignal } from '../../workflows/messages.js';
import { gatewayTaskQueue } from '../../activities/types.js';
import { FakeWorld, GATEWAY_INSTANCE } from '../helpers/fake-world.js';
import { bundle, create, env, inputFor, newName, newTaskQueue, order, recordHistory, useCheckpointServer, waitForState, withWorkers } from '../helpers/checkpoint-harness.js';

useCheckpointServer();

describe('checkpoint workflow', () => {
  it('success with the cleanup action deletes the snapshot and ends deleted, never pausing', async () => {
    const world = new FakeWorld();
    world.plan.hasCleanupCommand = true;
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { result, handle } = await create(tq, inputFor(name));
      assert.deepEqual(result, { name, state: 'created' });
      await handle.signal(finalizeSignal, { status: 'success', source: 'hook' });
      assert.equal(await handle.result(), 'deleted');
      assert.deepEqual(world.statesOf(name), ['created', 'finalize_queued', 'cleaning', 'deleted']);
      assert.equal(world.rows.get(name)!.holdsClaim, false);
      assert.equal(world.callCount('pauseRunner'), 0);
      assert.equal(world.callCount('rollbackVm'), 0);
      assert.equal(world.snapshotExists, false);
      assert.deepEqual(world.commandsRun.map((c) => c.name), ['cleanup']);
      await recordHistory(handle, 'success-cleanup');
    });
  });

  it('success with the reset action and failure both roll back, prove readiness, then unpause', async () => {
    for (const [status, successAction] of [['success', 'reset'], ['failure', 'cleanup']] as const) {
      const world = new FakeWorld();
      world.plan.successAction = successAction;
      await withWorkers(world, async (tq) => {
        const name = newName();
        const { handle } = await create(tq, inputFor(name));
        await handle.signal(finalizeSignal, { status, source: 'hook' });
        assert.equal(await handle.result(), 'reset');
        assert.deepEqual(world.statesOf(name), ['created', 'finalize_queued', 'pausing', 'confirming_idle', 'resetting', 'awaiting_readiness', 'releasing_claim', 'unpausing', 'reset']);
        order(world, 'pauseRunner', 'listRunningJobs', 'assertVmUnchanged', 'stopVm', 'rollbackVm', 'startVm', 'deleteSnapshot', 'unpauseRunner');
        assert.equal(world.callCount('listRunningJobs'), 2, 'idle means two empty answers');
        const readiness = world.commandsRun.filter((c) => c.name === 'readiness');
        assert.equal(readiness.length, 1);
        assert.ok(readiness[0]!.expectedEpoch > world.rows.get(name)!.epochAtReset!, 'readiness ran on a session newer than the reset');
        assert.equal(world.paused, false);
        assert.equal(world.rows.get(name)!.finalizeStatus, status);
        await recordHistory(handle, `${status}-${successAction}-reset`);
      });
    }
  });

  it('cancellation while created resets the runner as a canceled job', async () => {
    const world = new FakeWorld();
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name));
      await handle.cancel();
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.rows.get(name)!.finalizeStatus, 'canceled');
      assert.equal(world.rows.get(name)!.finalizeSource, 'cancel');
      await recordHistory(handle, 'cancel');
    });
  });

  it('at the TTL resets a finished job as gc_reset', async () => {
    const world = new FakeWorld();
    world.jobObservation = { kind: 'terminal', outcome: 'failure' };
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name, { projectId: '7' }, { ttlSeconds: 600, pollerEnabled: false }));
      assert.equal(await handle.result(), 'gc_reset');
      assert.equal(world.callCount('observeJob'), 1);
      assert.ok(world.statesOf(name).includes('resetting'));
      await recordHistory(handle, 'ttl-job-finished');
    });
  });

  it('at the TTL extends a running job, recording it, and needs attention at the maximum age', async () => {
    const world = new FakeWorld();
    world.jobObservation = { kind: 'running' };
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name, { projectId: '7' }, { ttlSeconds: 600, maxTtlSeconds: 1800, pollerEnabled: false }));
      const q = await waitForState(handle, 'needs_attention', 400);
      assert.equal(q.needsAttention?.reason, 'ttl_exceeded');
      assert.equal(q.ttlExtensions, 2);
      assert.equal(world.projections.filter((p) => p.name === name && p.event === 'ttl_extended').length, 2);
      assert.equal(world.callCount('rollbackVm'), 0, 'no reset past the maximum age');
      // GitLab errors extend too: they are never a reason to reset.
      await handle.signal(releaseSignal, { actor: 'test', deleteSnapshot: true });
      await recordHistory(handle, 'ttl-max-age-release');
      assert.equal(await handle.result(), 'released');
    });
  });

  it('a GitLab error at the TTL extends instead of resetting', async () => {
    const world = new FakeWorld();
    world.failures.set('observeJob', { code: 'gitlab_auth', message: '401 Unauthorized' });
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name, { projectId: '7' }, { ttlSeconds: 600, pollerEnabled: false }));
      await env.sleep('700 seconds');
      const q = await handle.query(checkpointQuery);
      assert.equal(q.state, 'created');
      assert.equal(q.ttlExtensions, 1);
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      assert.equal(await handle.result(), 'reset');
      await recordHistory(handle, 'ttl-gitlab-error-extended');
    });
  });

  it('the GitLab job watch finalizes with source poller', async () => {
    const world = new FakeWorld();
    world.watchOutcome = 'failure';
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name, { projectId: '7' }, { pollerMinAgeSeconds: 30 }));
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.rows.get(name)!.finalizeSource, 'poller');
      await recordHistory(handle, 'poller-finalize');
      assert.equal(world.rows.get(name)!.finalizeStatus, 'failure');
    });
  });

  it('the first of three finalize sources wins; the others are recorded and ignored', async () => {
    const world = new FakeWorld();
    world.plan.hasCleanupCommand = true;
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name));
      await handle.signal(finalizeSignal, { status: 'success', source: 'hook' });
      await handle.signal(finalizeSignal, { status: 'failure', source: 'webhook' });
      await handle.signal(finalizeSignal, { status: 'canceled', source: 'agent' });
      assert.equal(await handle.result(), 'deleted');
      assert.equal(world.rows.get(name)!.finalizeStatus, 'success');
      assert.equal(world.rows.get(name)!.finalizeSource, 'hook');
      assert.equal(world.projections.filter((p) => p.name === name && p.event === 'finalize_requested_ignored').length, 2);
      await recordHistory(handle, 'duplicate-finalize');
      assert.equal(world.callCount('rollbackVm'), 0);
    });
  });

  it('a failed snapshot answers the create with backend, deletes leftovers and releases the claim', async () => {
    const world = new FakeWorld();
    world.failures.set('takeSnapshot', { code: 'proxmox_task_failed', message: 'snapshot task failed: storage full' });
    await withWorkers(world, async (tq) => {
      const name = newName();
      await assert.rejects(create(tq, inputFor(name)), (err: unknown) => {
        assert.ok(err instanceof WorkflowUpdateFailedError);
        assert.ok(err.cause instanceof ApplicationFailure);
        assert.equal(err.cause.type, 'backend');
        assert.match(err.cause.message, /storage full/);
        return true;
      });
      const handle = env.client.workflow.getHandle(name);
      assert.equal(await handle.result(), 'create_failed');
      assert.equal(world.callCount('deleteSnapshot'), 1);
      assert.deepEqual(world.rows.get(name), { state: 'create_failed', holdsClaim: false });
      await recordHistory(handle, 'snapshot-failure');
    });
  });

  it('a rejected create writes no row and ends rejected; a second create of the same id reads the outcome', async () => {
    const world = new FakeWorld();
    world.claimResult = { ok: false, code: 'conflict', detail: "Active checkpoint 'job-1-1-aaaaaaaa' already exists for runner 'runner-1'" };
    await withWorkers(world, async (tq) => {
      const name = newName();
      for (let i = 0; i < 2; i++) {
        await assert.rejects(create(tq, inputFor(name)), (err: any) => err.cause?.type === 'conflict' && /already exists/.test(err.cause.message));
      }
      assert.equal(await env.client.workflow.getHandle(name).result(), 'rejected');
      await recordHistory(env.client.workflow.getHandle(name), 'rejected');
      assert.equal(world.projections.length, 0);
      assert.equal(world.callCount('takeSnapshot'), 0);
    });
  });

  it('a workflow nobody creates through ends abandoned without a row', async () => {
    const world = new FakeWorld();
    await withWorkers(world, async (tq) => {
      const name = newName();
      const handle = await env.client.workflow.start(checkpointV2Workflow, { workflowId: name, taskQueue: tq, args: [inputFor(name)] });
      assert.equal(await handle.result(), 'abandoned');
      await recordHistory(handle, 'abandoned');
      assert.equal(world.callCount('claimRunner'), 0);
    });
  });

  it('a failed reset needs attention, keeps the runner paused, and an operator retry resets', async () => {
    const world = new FakeWorld();
    world.failures.set('rollbackVm', { code: 'proxmox_not_most_recent', message: "can't rollback, 'x' is not most recent snapshot", times: 1 });
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name));
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'reset_failed');
      assert.equal(world.paused, true, 'never unpause a dirty runner');
      assert.equal(world.callCount('unpauseRunner'), 0);
      assert.equal(world.snapshotExists, true, 'snapshot kept for the operator');
      assert.deepEqual(world.alerts, [{ key: `needs_attention:${name}`, severity: 'critical', resolved: false }]);
      assert.equal(world.rows.get(name)!.holdsClaim, true);
      await handle.signal(retryResetSignal, { actor: 'alice' });
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.paused, false);
      assert.equal(world.alerts[0]!.resolved, true);
      assert.ok(world.projections.some((p) => p.event === 'retry_reset' && p.detail?.includes('alice')));
      await recordHistory(handle, 'reset-failure-retry');
    });
  });

  it('an operator release deletes the snapshot on request, releases and unpauses', async () => {
    const world = new FakeWorld();
    world.failures.set('pauseRunner', { code: 'gitlab_auth', message: '403 Forbidden' });
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name));
      await handle.signal(finalizeSignal, { status: 'canceled', source: 'webhook' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'pause_failed');
      assert.ok(world.alerts.some((a) => a.key === `pause_failed:${name}` && a.severity === 'critical'));
      world.failures.delete('pauseRunner');
      await handle.signal(releaseSignal, { actor: 'bob', deleteSnapshot: true });
      assert.equal(await handle.result(), 'released');
      assert.equal(world.snapshotExists, false);
      assert.equal(world.rows.get(name)!.holdsClaim, false);
      assert.equal(world.callCount('rollbackVm'), 0);
      await recordHistory(handle, 'pause-failure-release');
    });
  });

  it('readiness refuses an agent session older than the reset', async () => {
    const world = new FakeWorld();
    world.agentReconnectsAfterReset = false;
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name));
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'readiness_timeout');
      assert.match(q.needsAttention!.detail, /older than the reset/);
      assert.equal(world.commandsRun.filter((c) => c.name === 'readiness').length, 0, 'no readiness probe on a stale session');
      assert.equal(world.paused, true);
      // The agent comes back; the operator retries.
      world.agentReconnectsAfterReset = true;
      await handle.signal(retryResetSignal, { actor: 'ops' });
      assert.equal(await handle.result(), 'reset');
      await recordHistory(handle, 'stale-session-retry');
    });
  });

  it('a job still running on the paused runner is waited for, then needs attention', async () => {
    const world = new FakeWorld();
    world.runningJobs = Array.from({ length: 100 }, () => ({ kind: 'jobs' as const, jobIds: ['999'] }));
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name));
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'runner_busy');
      assert.match(q.needsAttention!.detail, /999/);
      assert.equal(world.callCount('stopVm'), 0, 'nothing destructive while a job runs');
      await recordHistory(handle, 'runner-busy');
    });
  });

  it("waits for the checkpoint's own job to leave the runner, then resets", async () => {
    const world = new FakeWorld();
    await withWorkers(world, async (tq) => {
      const name = newName();
      const input = inputFor(name);
      world.runningJobs = [{ kind: 'jobs', jobIds: [input.jobId] }, { kind: 'unknown', detail: '502' }, { kind: 'jobs', jobIds: [] }];
      const { handle } = await create(tq, input);
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.callCount('listRunningJobs'), 4);
      await recordHistory(handle, 'own-job-wait');
    });
  });

  it('a worker killed mid-rollback is replaced and the rollback is not started twice', async () => {
    const world = new FakeWorld();
    world.hangFirstRollback = true;
    const name = newName();
    const taskQueue = newTaskQueue();
    const gateway = await Worker.create({ connection: env.nativeConnection, taskQueue: gatewayTaskQueue(GATEWAY_INSTANCE), activities: world.agentActivities() });
    await gateway.runUntil(async () => {
      // No sticky cache: the time-skipping server never moves a dead worker's sticky tasks back.
      const first = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities: world.activities(), shutdownGraceTime: '100ms', maxCachedWorkflows: 0 });
      const firstRun = first.run();
      const { handle } = await create(taskQueue, inputFor(name));
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      await world.rollbackHanging;
      first.shutdown();
      await firstRun;
      const second = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities: world.activities() });
      await second.runUntil(async () => {
        assert.equal(await handle.result(), 'reset');
        await recordHistory(handle, 'worker-killed-mid-rollback');
      });
    });
    assert.equal(world.rollbacksStarted, 1, 'one rollback on the hypervisor');
    assert.deepEqual(world.calls.filter((c) => c.name === 'rollbackVm').map((c) => c.attempt), [1, 2], 'the same activity retried');
    assert.equal(world.callCount('stopVm'), 1);
    assert.equal(world.callCount('startVm'), 1);
  });

  it('bare metal: the agent runs the declared reset; a reboot-mode session drop with a new boot id is the reboot', async () => {
    const world = new FakeWorld();
    Object.assign(world.plan, { backend: 'bare_metal', resetMode: 'reboot', vmid: null });
    world.commandScript.set('reset', ['rebooted']);
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name, { backend: 'bare_metal' }));
      await handle.signal(finalizeSignal, { status: 'failure', source: 'agent' });
      assert.equal(await handle.result(), 'reset');
      assert.deepEqual(world.commandsRun.map((c) => c.name), ['reset', 'readiness']);
      assert.match(world.commandsRun[0]!.commandId, new RegExp(`^${name}:reset:\\d+$`));
      await recordHistory(handle, 'bare-metal-reboot');
      assert.equal(world.callCount('rollbackVm'), 0);
    });
  });

  it('bare metal: a legacy session lost during an in-place reset needs attention (outcome unknown)', async () => {
    const world = new FakeWorld();
    Object.assign(world.plan, { backend: 'bare_metal', resetMode: 'in_place', vmid: null });
    world.agent = { epoch: 1, legacy: true, declared: null };
    world.commandResults.set('reset', 'lose_session');
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name, { backend: 'bare_metal' }));
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'command_outcome_unknown');
      assert.equal(world.commandsRun.filter((c) => c.name === 'reset').length, 1, 'never re-sent to a legacy agent');
    });
  });

  it('bare metal: an agent without a declared reset command needs attention', async () => {
    const world = new FakeWorld();
    Object.assign(world.plan, { backend: 'bare_metal', resetMode: 'auto', vmid: null });
    world.agent = { epoch: 1, legacy: false, declared: ['readiness'] };
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name, { backend: 'bare_metal' }));
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      const q = await waitForState(handle, 'needs_attention');
      assert.equal(q.needsAttention?.reason, 'command_not_declared');
      await recordHistory(handle, 'command-not-declared');
    });
  });

  it('an unpause GitLab refuses is retried without limit, with an alert, until it works; the checkpoint still ends reset', async () => {
    const world = new FakeWorld();
    world.failures.set('unpauseRunner', { code: 'gitlab_auth', message: '401 Unauthorized', times: 2 });
    await withWorkers(world, async (tq) => {
      const name = newName();
      const { handle } = await create(tq, inputFor(name));
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      assert.equal(await handle.result(), 'reset');
      assert.equal(world.callCount('unpauseRunner'), 3);
      assert.equal(world.paused, false);
      assert.deepEqual(world.alerts.filter((a) => a.key === `unpause_slow:${name}`), [{ key: `unpause_slow:${name}`, severity: 'warning', resolved: true }]);
      await recordHistory(handle, 'unpause-retry');
    });
  });

  it('a claim the database never answers fails the create with backend and leaves no claim', async () => {
    const world = new FakeWorld();
    world.failures.set('claimRunner', { code: 'validation', message: 'database refused the statement' });
    await withWorkers(world, async (tq) => {
      const name = newName();
      await assert.rejects(create(tq, inputFor(name)), (err: any) => err.cause?.type === 'backend' && /could not claim the runner/.test(err.cause.message));
      assert.equal(await env.client.workflow.getHandle(name).result(), 'create_failed');
      await recordHistory(env.client.workflow.getHandle(name), 'claim-failure');
      assert.equal(world.callCount('takeSnapshot'), 0);
      assert.equal([...world.rows.values()].some((r) => r.holdsClaim), false);
    });
  });
});
