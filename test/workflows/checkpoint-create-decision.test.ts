// The create is decided in one place (workflow review, bugs 6 and 14). These play out in real time
// (a slow database, a cancel mid-snapshot), so they run on the dev server, not the time-skipping one.
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { WithStartWorkflowOperation, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { checkpointV2Workflow } from '../../workflows/checkpoint/workflow.js';
import { checkpointQuery, createUpdate, finalizeSignal } from '../../workflows/messages.js';
import { FakeWorld } from '../helpers/fake-world.js';
import { env, inputFor, newName, recordHistory, useCheckpointServer, withWorkers } from '../helpers/checkpoint-harness.js';

useCheckpointServer('dev');

describe('bug 6 and bug 14: the create is decided in one place', () => {
  it('a deadline that passes while the snapshot is being recorded answers success, and the checkpoint is created', async () => {
    const world = new FakeWorld();
    world.projectionDelayMs.set('snapshot_taken', 4000);
    await withWorkers(world, async (tq) => {
      const name = newName();
      const start = new WithStartWorkflowOperation(checkpointV2Workflow, { workflowId: name, taskQueue: tq, args: [inputFor(name)], workflowIdConflictPolicy: 'USE_EXISTING' });
      const result = await env.client.workflow.executeUpdateWithStart(createUpdate, { args: [{ deadlineMs: Date.now() + 2000 }], updateId: 'create', startWorkflowOperation: start });
      assert.equal(result.state, 'created');
      const handle = await start.workflowHandle();
      assert.equal((await handle.query(checkpointQuery)).state, 'created');
      assert.equal(world.rows.get(name)!.holdsClaim, true);
      await handle.signal(finalizeSignal, { status: 'success', source: 'hook' });
      assert.equal(await handle.result(), 'deleted');
    });
  });

  it('a cancel during create answers a domain failure (backend), and the create is compensated', async () => {
    const world = new FakeWorld();
    world.takeSnapshotDelayMs = 3000;
    await withWorkers(world, async (tq) => {
      const name = newName();
      const start = new WithStartWorkflowOperation(checkpointV2Workflow, { workflowId: name, taskQueue: tq, args: [inputFor(name)], workflowIdConflictPolicy: 'USE_EXISTING' });
      const update = env.client.workflow.executeUpdateWithStart(createUpdate, { args: [{ deadlineMs: Date.now() + 300_000 }], updateId: 'create', startWorkflowOperation: start });
      // The operation's handle only resolves with the update's answer: cancel by id meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const handle = env.client.workflow.getHandle(name);
      await handle.cancel();
      await assert.rejects(update, (err: unknown) => {
        assert.ok(err instanceof WorkflowUpdateFailedError);
        assert.ok(err.cause instanceof ApplicationFailure, `cause is ${String(err.cause)}`);
        assert.equal(err.cause.type, 'backend');
        return true;
      });
      assert.equal(await handle.result(), 'create_failed');
      assert.equal(world.snapshotExists, false);
      assert.equal(world.rows.get(name)!.holdsClaim, false);
    });
  });

  it('a snapshot slower than the create deadline answers create_timeout, is cut near the deadline and compensated', async () => {
    const world = new FakeWorld();
    world.takeSnapshotDelayMs = 12_000;
    await withWorkers(world, async (tq) => {
      const name = newName();
      const started = Date.now();
      const start = new WithStartWorkflowOperation(checkpointV2Workflow, { workflowId: name, taskQueue: tq, args: [inputFor(name)], workflowIdConflictPolicy: 'USE_EXISTING' });
      await assert.rejects(env.client.workflow.executeUpdateWithStart(createUpdate, { args: [{ deadlineMs: Date.now() + 2000 }], updateId: 'create', startWorkflowOperation: start }), (err: unknown) => {
        assert.ok(err instanceof WorkflowUpdateFailedError);
        assert.equal((err.cause as ApplicationFailure).type, 'create_timeout');
        return true;
      });
      const handle = env.client.workflow.getHandle(name);
      assert.equal(await handle.result(), 'create_failed');
      assert.ok(Date.now() - started < 11_000, 'the snapshot activity was cut near the deadline, not after it finished');
      assert.equal(world.callCount('deleteSnapshot'), 1);
      assert.equal(world.rows.get(name)!.holdsClaim, false);
      await recordHistory(handle, 'create-timeout');
    });
  });
});
