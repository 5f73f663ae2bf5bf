// Shared set-up of the checkpoint workflow tests: one time-skipping server and one workflow bundle per
// test file, workers over a FakeWorld, creates as the API does them, and history recording.
import { afterAll, beforeAll } from 'vitest';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WithStartWorkflowOperation, WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { checkpointV2Workflow } from '../../workflows/checkpoint/workflow.js';
import { checkpointQuery, createUpdate, type CheckpointWorkflowInput } from '../../workflows/messages.js';
import { mintCheckpointName } from '../../src/domain/checkpoint-name.js';
import { gatewayTaskQueue } from '../../activities/types.js';
import { FakeWorld, GATEWAY_INSTANCE } from './fake-world.js';
import { timeSkippingTimings } from './timings.js';
import { startDevServerEnv, startTimeSkippingEnv, bundleWorkflowsOnce, workflowsIndexPath } from './temporal.js';

export let env: TestWorkflowEnvironment;
export let bundle: WorkflowBundleWithSourceMap;
let queueCounter = 0;

/**
 * Starts the server and bundles the workflows for this test file: the time-skipping test server,
 * or the dev server for scenarios that play out in real time (a slow database during a create).
 */
export function useCheckpointServer(server: 'time-skipping' | 'dev' = 'time-skipping'): void {
  beforeAll(async () => {
    env = server === 'dev' ? await startDevServerEnv() : await startTimeSkippingEnv();
    bundle = await bundleWorkflowsOnce(workflowsIndexPath);
  });
  afterAll(async () => env?.teardown());
}


/** Runs `fn` with a checkpoint worker and a gateway worker serving `world`. */
/** A task queue of its own for each test. */
export function newTaskQueue(): string {
  return `checkpoint-test-${++queueCounter}`;
}

export async function withWorkers<T>(world: FakeWorld, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = newTaskQueue();
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities: world.activities() });
  const gateway = await Worker.create({ connection: env.nativeConnection, taskQueue: gatewayTaskQueue(GATEWAY_INSTANCE), activities: world.agentActivities() });
  return gateway.runUntil(worker.runUntil(fn(taskQueue)));
}

export function inputFor(name: string, overrides: Partial<CheckpointWorkflowInput> = {}, timings: Partial<CheckpointWorkflowInput['timings']> = {}): CheckpointWorkflowInput {
  return { name, runnerId: 'runner-1', jobId: name.split('-')[1]!, backend: 'proxmox', timings: { ...timeSkippingTimings, ...timings }, ...overrides };
}

let jobCounter = 1000;
export function newName(): string {
  return mintCheckpointName(String(++jobCounter), Math.floor(Date.now() / 1000), randomBytes(4).toString('hex'));
}

/** Starts the workflow and creates the checkpoint through update-with-start, as the API does. */
export async function create(taskQueue: string, input: CheckpointWorkflowInput) {
  const start = new WithStartWorkflowOperation(checkpointV2Workflow, {
    workflowId: input.name,
    taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
  });
  let result;
  try {
    result = await env.client.workflow.executeUpdateWithStart(createUpdate, {
    // Workflow time is the server's skipped time, not the wall clock.
    args: [{ deadlineMs: (await env.currentTimeMs()) + 300_000 }],
      updateId: 'create',
      startWorkflowOperation: start,
    });
  } catch (err) {
    // The workflow already closed: read the recorded outcome of the same update, as the API does.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const handle = env.client.workflow.getHandle<typeof checkpointV2Workflow>(input.name);
    return { result: await handle.executeUpdate(createUpdate, { updateId: 'create', args: [{ deadlineMs: (await env.currentTimeMs()) + 300_000 }] }), handle };
  }
  return { result, handle: await start.workflowHandle() };
}

export async function waitForState(handle: WorkflowHandle, state: string, maxSteps = 200) {
  for (let i = 0; i < maxSteps; i++) {
    const q = await handle.query(checkpointQuery);
    if (q.state === state) return q;
    await env.sleep('5 seconds');
  }
  const q = await handle.query(checkpointQuery);
  assert.fail(`checkpoint never reached ${state}; it is ${q.state} (step ${q.step})`);
}

/** Folder of the histories recorded by today's workflow code (one folder per workflow release). */
export const RECORDING_RELEASE = 'v2';
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * With E2EPOOL_RECORD_HISTORIES=1 the finished history of a path is written to
 * test/workflows/histories/<release>/, where the replay test checks today's workflow code against it.
 * An existing file is never overwritten: it is the regression record of the code that wrote it.
 * (The top-level files and checkpoint-fixes-2026-12/ are histories of checkpointWorkflow, the first
 * release; v2/ holds those of checkpointV2Workflow.)
 */
export async function recordHistory(handle: WorkflowHandle, path: string) {
  if (process.env.E2EPOOL_RECORD_HISTORIES !== '1') return;
  const file = new URL(`../workflows/histories/${RECORDING_RELEASE}/${path}.json`, import.meta.url);
  if (existsSync(file)) return;
  const history = await handle.fetchHistory();
  mkdirSync(new URL('.', file), { recursive: true });
  // Stack traces name the recording checkout; a fixed root keeps that machine's paths out of the repository.
  writeFileSync(file, JSON.stringify(history, null, 1).replaceAll(REPO_ROOT, '/opt/e2epool/'));
}

export function order(world: FakeWorld, ...names: string[]) {
  const firstIndex = (n: string) => world.calls.findIndex((c) => c.name === n);
  for (let i = 1; i < names.length; i++) {
    assert.ok(firstIndex(names[i - 1]!) >= 0 && firstIndex(names[i - 1]!) < firstIndex(names[i]!), `${names[i - 1]} must run before ${names[i]}: ${world.calls.map((c) => c.name).join(', ')}`);
  }
}

