// The HTTP API on the embedded PGlite database (the `e2epool dev` default): a checkpoint round trip
// through the real workflow, then `/healthz` and `/health` once the database is gone.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { startDevServerEnv } from '../helpers/temporal.js';
import { ADMIN_TOKEN, call, startApiHarness, type ApiHarness } from '../helpers/api-harness.js';
import { eventually } from '../helpers/eventually.js';

/** How the API tests poll: up to 15 s, every 100 ms. */
const POLL = { timeoutMs: 15_000, intervalMs: 100 };

let env: TestWorkflowEnvironment;
let database: TestDatabase;
let h: ApiHarness;
let base: string;
let databaseClosed = false;

beforeAll(async () => {
  [env, database] = await Promise.all([startDevServerEnv(), createPgliteDatabase()]);
  h = await startApiHarness(env, database);
  base = h.api.base;
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
  if (!databaseClosed) await database?.drop();
});

describe('checkpoint HTTP API on PGlite', { timeout: 60_000 }, () => {
  it('creates, reports, finalizes and lists a checkpoint', async () => {
    assert.deepEqual(await call(base, 'GET', '/healthz'), { status: 200, body: { status: 'ok', detail: null } });
    const token = await h.registerRunner('lite-runner');
    const created = await call(base, 'POST', '/checkpoint/create', { token, body: { runner_id: 'lite-runner', job_id: '4242', caller: 'ci' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const name = created.body.name;
    assert.match(name, /^job-4242-\d+-[0-9a-f]{8}$/);
    assert.equal((await call(base, 'GET', `/checkpoint/status/${name}`, { token })).body.state, 'created');
    assert.deepEqual(await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: name, status: 'canceled', source: 'manual' } }), {
      status: 202,
      body: { detail: 'Finalize queued', checkpoint_name: name },
    });
    await eventually('needs attention (no agent to reset with)', async () => (await call(base, 'GET', `/checkpoint/status/${name}`, { token })).body.state === 'needs_attention', POLL);
    const status = (await call(base, 'GET', `/checkpoint/status/${name}`, { token })).body;
    assert.equal(status.finalize_status, 'canceled');
    assert.equal(status.finalize_source, 'manual');
    const list = await call(base, 'GET', '/api/checkpoints?state=failed', { token: ADMIN_TOKEN });
    assert.deepEqual(list.body.items.map((i: any) => [i.name, i.caller]), [[name, 'ci']]);
    const health = await call(base, 'GET', '/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.runners.total, 1);
    assert.equal(health.body.runners.paused, 1);
    assert.equal(health.body.queueDepth, 0, 'needs attention waits for an operator, not in the queue');
  });

  it('answers 503 unhealthy when the database is gone', async () => {
    await h.close();
    await database.drop();
    databaseClosed = true;
    // The harness closed its servers; a fresh app on the closed database answers the probes.
    const { createApp } = await import('../../src/api/app.js');
    const { createLogger } = await import('../../src/logger.js');
    const app = createApp({ db: database.db, registry: h.registry, checkpoints: h.api.service, config: h.config, logger: createLogger({ level: 'silent' }), temporal: { client: env.client } });
    const server = await new Promise<import('node:http').Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
      const healthz = await call(url, 'GET', '/healthz');
      assert.equal(healthz.status, 503);
      assert.equal(healthz.body.status, 'unhealthy');
      assert.equal(typeof healthz.body.detail, 'string');
      assert.ok(healthz.body.detail.length > 0);
      const health = await call(url, 'GET', '/health');
      assert.equal(health.status, 503);
      assert.equal(health.body.status, 'unhealthy');
      assert.deepEqual(health.body.database, { reachable: false });
      assert.equal(health.body.temporal.reachable, true);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
