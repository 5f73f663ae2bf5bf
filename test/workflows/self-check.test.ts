// Round trip on the time-skipping test server: client → workflow (bundled from workflows/index.ts,
// whose `.js` import specifiers point at `.ts` files) → activity → result.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createSelfCheckActivities, type SelfCheckActivities } from '../../activities/self-check.js';
import { registerSearchAttributes } from '../../temporal/search-attributes-admin.js';
import { BackendSearchAttribute, CheckpointStateSearchAttribute, JobIdSearchAttribute, NeedsAttentionSearchAttribute, RunnerIdSearchAttribute } from '../../temporal/search-attributes.js';
import { selfCheckWorkflow } from '../../workflows/index.js';
import { bundleWorkflowsOnce, startTimeSkippingEnv } from '../helpers/temporal.js';

describe('self-check workflow on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;
  let bundle: WorkflowBundleWithSourceMap;

  beforeAll(async () => {
    [env, bundle] = await Promise.all([startTimeSkippingEnv(), bundleWorkflowsOnce()]);
  });
  afterAll(async () => {
    await env?.teardown();
  });

  async function runWithWorker<T>(activities: SelfCheckActivities, body: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = `self-check-${randomUUID()}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities });
    return await worker.runUntil(body(taskQueue));
  }

  test('the bundle is built once per process and contains the workflow', async () => {
    assert.equal(await bundleWorkflowsOnce(), bundle);
    assert.match(bundle.code, /selfCheckWorkflow/);
    assert.match(bundle.code, /workflows\/self-check\.ts/, 'webpack resolved ./self-check.js to the .ts source');
  });

  test('the activity answers through the workflow, with our search attributes on the start', async () => {
    const workflowId = `self-check-${randomUUID()}`;
    const result = await runWithWorker(createSelfCheckActivities(), (taskQueue) =>
      env.client.workflow.execute(selfCheckWorkflow, {
        workflowId,
        taskQueue,
        args: [{ message: 'hello temporal' }],
        typedSearchAttributes: [
          { key: RunnerIdSearchAttribute, value: 'runner-1' },
          { key: JobIdSearchAttribute, value: '42' },
          { key: CheckpointStateSearchAttribute, value: 'creating' },
          { key: BackendSearchAttribute, value: 'proxmox' },
          { key: NeedsAttentionSearchAttribute, value: false },
        ],
      }).then((value) => ({ value, taskQueue })),
    );
    assert.deepEqual(result.value, { message: 'hello temporal', workflowId, activityAttempt: 1, taskQueue: result.taskQueue });
  });

  test('a failing activity is retried by the policy the workflow sets', async () => {
    const real = createSelfCheckActivities();
    let calls = 0;
    const flaky: SelfCheckActivities = {
      async echoSelfCheck(input) {
        calls += 1;
        if (calls === 1) throw new Error('transient failure');
        return await real.echoSelfCheck(input);
      },
    };
    const result = await runWithWorker(flaky, (taskQueue) =>
      env.client.workflow.execute(selfCheckWorkflow, { workflowId: `self-check-${randomUUID()}`, taskQueue, args: [{ message: 'again' }] }),
    );
    assert.equal(calls, 2);
    assert.equal(result.activityAttempt, 2);
    assert.equal(result.message, 'again');
  });

  test('an input without a message fails the workflow with a validation failure', async () => {
    const err = await runWithWorker(createSelfCheckActivities(), (taskQueue) =>
      env.client.workflow
        .execute(selfCheckWorkflow, { workflowId: `self-check-${randomUUID()}`, taskQueue, args: [{} as { message: string }] })
        .then(() => undefined, (e: unknown) => e),
    );
    assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'validation');
  });

  test('search attributes were registered at start: registering again adds nothing', async () => {
    assert.deepEqual(await registerSearchAttributes(env.connection, 'default'), []);
  });
});
