// The dev-server launcher against the real Temporal CLI: start, round trip, search attributes that
// visibility can query, start checks of `serve`, and no process of the server's group left behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { createSelfCheckActivities } from '../../activities/self-check.js';
import { assertServerCapabilities } from '../../temporal/capabilities.js';
import { connectTemporal, type TemporalClients } from '../../temporal/client.js';
import { startTemporalDevServer, type TemporalDevServer } from '../../temporal/dev-server.js';
import { isProcessGroupAlive } from '../../temporal/process-group.js';
import { assertSearchAttributes, listMissingSearchAttributes, registerSearchAttributes } from '../../temporal/search-attributes-admin.js';
import {
  BackendSearchAttribute,
  CheckpointStateSearchAttribute,
  e2epoolSearchAttributes,
  JobIdSearchAttribute,
  NeedsAttentionSearchAttribute,
  RunnerIdSearchAttribute,
} from '../../temporal/search-attributes.js';
import { repoRoot } from '../../temporal/tool-paths.js';
import { selfCheckWorkflow } from '../../workflows/index.js';
import { eventually } from '../helpers/eventually.js';
import { processesInGroup } from '../helpers/process-table.js';
import { bundleWorkflowsOnce, quietTemporalRuntime, requireTemporalBinaries, startDevServerEnv } from '../helpers/temporal.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const namespace = 'e2epool-it';

describe('temporal dev server launcher', () => {
  let server: TemporalDevServer;
  let temporal: TemporalClients;
  let bundle: WorkflowBundleWithSourceMap;

  beforeAll(async () => {
    requireTemporalBinaries(['cli']);
    quietTemporalRuntime();
    [server, bundle] = await Promise.all([startTemporalDevServer({ logger: silent, namespace, ui: false }), bundleWorkflowsOnce()]);
    temporal = await connectTemporal({ TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: namespace });
  });
  afterAll(async () => {
    await temporal?.connection.close();
    await server?.stop();
  });

  test('registers our search attributes in its namespace at start', async () => {
    assert.deepEqual(server.registeredSearchAttributes, e2epoolSearchAttributes.map((a) => a.name));
    assert.deepEqual(await listMissingSearchAttributes(temporal.connection, namespace), []);
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(server.uiUrl, undefined);
  });

  test('round trip through a worker; the run is listed by a query on our search attributes', async () => {
    const taskQueue = `self-check-${randomUUID()}`;
    const workflowId = `self-check-${randomUUID()}`;
    const runnerId = `runner-${randomUUID().slice(0, 8)}`;
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    try {
      const worker = await Worker.create({ connection: nativeConnection, namespace, taskQueue, workflowBundle: bundle, activities: createSelfCheckActivities() });
      const result = await worker.runUntil(
        temporal.client.workflow.execute(selfCheckWorkflow, {
          workflowId,
          taskQueue,
          args: [{ message: 'dev server' }],
          typedSearchAttributes: [
            { key: RunnerIdSearchAttribute, value: runnerId },
            { key: JobIdSearchAttribute, value: '1234' },
            { key: CheckpointStateSearchAttribute, value: 'creating' },
            { key: BackendSearchAttribute, value: 'proxmox' },
            { key: NeedsAttentionSearchAttribute, value: false },
          ],
        }),
      );
      assert.deepEqual(result, { message: 'dev server', workflowId, activityAttempt: 1, taskQueue });
    } finally {
      await nativeConnection.close();
    }

    const query = `RunnerId = '${runnerId}' AND JobId = '1234' AND CheckpointState = 'creating' AND Backend = 'proxmox' AND NeedsAttention = false`;
    let found: WorkflowExecutionInfo[] = [];
    await eventually(
      `a workflow matching ${query}`,
      async () => {
        found = [];
        for await (const info of temporal.client.workflow.list({ query })) found.push(info);
        return found.length > 0;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    assert.equal(found.length, 1);
    assert.equal(found[0]!.workflowId, workflowId);
    assert.equal(found[0]!.status.name, 'COMPLETED');
    assert.equal(found[0]!.typedSearchAttributes.get(RunnerIdSearchAttribute), runnerId);
    assert.equal(found[0]!.typedSearchAttributes.get(NeedsAttentionSearchAttribute), false);

    let others = 0;
    for await (const _ of temporal.client.workflow.list({ query: `RunnerId = '${runnerId}' AND NeedsAttention = true` })) others += 1;
    assert.equal(others, 0);
  });

  test('the server accepts update-with-start', async () => {
    const capabilities = await assertServerCapabilities(temporal.connection, namespace);
    assert.equal(capabilities.updateWithStart, true);
    assert.match(capabilities.serverVersion, /^\d+\.\d+\.\d+/);
    await assert.rejects(assertServerCapabilities(temporal.connection, 'no-such-namespace'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'not_configured');
      assert.match(err.message, /no-such-namespace/);
      return true;
    });
  });

  test('a namespace without our search attributes is refused with the commands that fix it, then registered idempotently', async () => {
    // The dev server always creates 'default' too; the launcher registered ours only in `namespace`.
    await assert.rejects(assertSearchAttributes(temporal.connection, 'default', { register: false }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'not_configured');
      for (const { name } of e2epoolSearchAttributes) {
        assert.match(err.message, new RegExp(`\\b${name}\\b`));
      }
      assert.match(err.message, /temporal operator search-attribute create --namespace default --name RunnerId --type Keyword/);
      assert.match(err.message, /temporal operator search-attribute create --namespace default --name NeedsAttention --type Bool/);
      return true;
    });
    const first = await assertSearchAttributes(temporal.connection, 'default', { register: true });
    assert.deepEqual(first.registered, e2epoolSearchAttributes.map((a) => a.name));
    assert.deepEqual(await registerSearchAttributes(temporal.connection, 'default'), []);
    assert.deepEqual(await assertSearchAttributes(temporal.connection, 'default', { register: false }), { registered: [] });
  });

  test('stop() ends the whole process group', async () => {
    const { pgid } = server;
    assert.ok(processesInGroup(pgid).some((p) => p.command.includes('start-dev')), 'the server runs in its own group');
    await temporal.connection.close();
    await server.stop();
    assert.equal(isProcessGroupAlive(pgid), false);
    assert.deepEqual(processesInGroup(pgid), []);
    await server.stop(); // idempotent
  });
});

describe('startDevServerEnv (TestWorkflowEnvironment.createLocal on the project CLI)', () => {
  test('comes up with our search attributes and update-with-start', async () => {
    const env = await startDevServerEnv();
    try {
      assert.match(env.address, /^127\.0\.0\.1:\d+$/);
      assert.deepEqual(await listMissingSearchAttributes(env.connection, 'default'), []);
      assert.equal((await assertServerCapabilities(env.connection, 'default')).updateWithStart, true);
    } finally {
      await env.teardown();
    }
  });
});

// A process that started a dev server and then dies takes the server's group with it.
type DeathMode = 'uncaught-exception' | 'sigterm' | 'sigterm-with-own-once-handler';

async function serverOfDyingProcess(how: DeathMode): Promise<{ pgid: number; exitCode: number | null; output: string }> {
  const devServerUrl = pathToFileURL(path.join(repoRoot, 'temporal', 'dev-server.ts')).href;
  const script = `
    import { startTemporalDevServer } from ${JSON.stringify(devServerUrl)};
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    let server;
    if (${JSON.stringify(how)} === 'sigterm-with-own-once-handler') {
      // Registered before the launcher's hook, so it runs (and is removed) first.
      process.once('SIGTERM', async () => {
        await server.stop();
        process.stdout.write('graceful stop done\\n');
        process.exit(0);
      });
    }
    server = await startTemporalDevServer({ logger: silent, ui: false });
    process.stdout.write(JSON.stringify({ pgid: server.pgid }) + '\\n');
    if (${JSON.stringify(how)} === 'uncaught-exception') setTimeout(() => { throw new Error('boom'); }, 10);
    else setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ exitCode: number | null }>((resolve) => child.once('exit', (exitCode) => resolve({ exitCode })));
  await eventually(() => `the child to report its server: ${stdout}${stderr}`, () => stdout.includes('\n') || child.exitCode !== null, 30_000);
  const line = stdout.split('\n')[0] ?? '';
  assert.ok(line.startsWith('{'), `child did not report its server: ${stdout}${stderr}`);
  const { pgid } = JSON.parse(line) as { pgid: number };
  assert.ok(isProcessGroupAlive(pgid));
  if (how !== 'uncaught-exception') child.kill('SIGTERM');
  const { exitCode } = await exited;
  return { pgid, exitCode, output: stdout + stderr };
}

describe('the dev server dies with the process that started it', { concurrent: true }, () => {
  test('on an uncaught exception', async () => {
    const { pgid, exitCode } = await serverOfDyingProcess('uncaught-exception');
    assert.equal(exitCode, 1);
    await eventually(() => `group ${pgid} to exit; still alive: ${JSON.stringify(processesInGroup(pgid))}`, () => !isProcessGroupAlive(pgid), 10_000);
  });

  test('on SIGTERM (exit code 143, as without a handler)', async () => {
    const { pgid, exitCode } = await serverOfDyingProcess('sigterm');
    assert.equal(exitCode, 143);
    await eventually(() => `group ${pgid} to exit; still alive: ${JSON.stringify(processesInGroup(pgid))}`, () => !isProcessGroupAlive(pgid), 10_000);
  });

  test("on SIGTERM the process's own handler still runs its orderly stop (a once listener included)", async () => {
    const { pgid, exitCode, output } = await serverOfDyingProcess('sigterm-with-own-once-handler');
    assert.equal(exitCode, 0, output);
    assert.match(output, /graceful stop done/);
    assert.equal(isProcessGroupAlive(pgid), false);
  });
});
