// `e2epool worker` (the standalone checkpoint-queue worker) is built like serve's: alerts its
// activities raise are delivered from it. A checkpoint whose agent cannot be reached needs
// attention, and the alert webhook hears of it from the worker process.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { WithStartWorkflowOperation } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startCheckpointWorker } from '../../src/checkpoint-worker.js';
import { loadConfig } from '../../src/config.js';
import { mintCheckpointName } from '../../src/domain/checkpoint-name.js';
import { RunnerRegistry } from '../../src/inventory/registry.js';
import { checkpointTimingsFromConfig } from '../../src/services/checkpoint-timings.js';
import { checkpointV2Workflow } from '../../workflows/checkpoint/workflow.js';
import { createUpdate, finalizeSignal } from '../../workflows/messages.js';
import { createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { startDevServerEnv } from '../helpers/temporal.js';

describe('standalone worker', { timeout: 180_000 }, () => {
  let env: TestWorkflowEnvironment;
  let database: TestDatabase;
  let hook: http.Server;
  const delivered: Array<{ key?: string; state?: string }> = [];

  beforeAll(async () => {
    [env, database] = await Promise.all([startDevServerEnv(), createPostgresDatabase('e2epool_worker_alerts')]);
    hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        delivered.push(JSON.parse(body));
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => hook?.close(() => resolve()));
    await env?.teardown();
    await database?.drop();
  });

  it('delivers the alerts its activities raise', async () => {
    const config = loadConfig({}, {
      DATABASE_URL: database.url,
      TEMPORAL_ADDRESS: (env as unknown as { address: string }).address,
      TASK_QUEUE: `standalone-${randomBytes(3).toString('hex')}`,
      TOKEN_PEPPER: 'pepper-for-the-standalone-worker-test',
      ALERT_WEBHOOK_URLS: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`,
      ALERT_WEBHOOK_FORMAT: 'generic',
      AGENT_ROUTE_ATTEMPTS: 1,
      POLLER_ENABLED: 'false',
      FINALIZE_COOLDOWN_SECONDS: 0,
      LOG_LEVEL: 'silent',
    });
    const registry = new RunnerRegistry({ db: database.db, pepper: config.TOKEN_PEPPER });
    await registry.createRunner({ runner_id: 'no-agent', backend: 'bare_metal', reset_cmd: 'reset' });
    const worker = await startCheckpointWorker(config);
    try {
      const name = mintCheckpointName('77', Math.floor(Date.now() / 1000), randomBytes(4).toString('hex'));
      const start = new WithStartWorkflowOperation(checkpointV2Workflow, {
        workflowId: name,
        taskQueue: config.TASK_QUEUE,
        args: [{ name, runnerId: 'no-agent', jobId: '77', backend: 'bare_metal', timings: checkpointTimingsFromConfig(config) }],
        workflowIdConflictPolicy: 'USE_EXISTING',
      });
      await env.client.workflow.executeUpdateWithStart(createUpdate, { args: [{ deadlineMs: Date.now() + 60_000 }], updateId: 'create', startWorkflowOperation: start });
      const handle = await start.workflowHandle();
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      const key = `needs_attention:${name}`;
      for (let i = 0; i < 300 && !delivered.some((d) => d.key === key); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(delivered.some((d) => d.key === key), `delivered: ${JSON.stringify(delivered)}`);
      await handle.terminate('test done');
    } finally {
      await worker.stop();
    }
  });
});
