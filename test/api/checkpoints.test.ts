// The runner-facing HTTP API (protocol spec §4.1–4.4) against a real Temporal dev server, a real
// worker running the checkpoint workflow, PostgreSQL, and fetch over 127.0.0.1.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { sql } from 'drizzle-orm';
import { agentPresence, controllerInstances } from '../../db/schema.js';
import { agentRequestHandlerFor } from '../../src/services/checkpoints.js';
import { E2epoolError } from '../../src/domain/errors.js';
import { createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { startDevServerEnv } from '../helpers/temporal.js';
import { ADMIN_TOKEN, ISO_UTC, call, startApiHarness, type ApiHarness } from '../helpers/api-harness.js';
import { eventually } from '../helpers/eventually.js';

/** How the API tests poll: up to 15 s, every 100 ms. */
const POLL = { timeoutMs: 15_000, intervalMs: 100 };

let env: TestWorkflowEnvironment;
let database: TestDatabase;
let h: ApiHarness;
let base: string;

beforeAll(async () => {
  [env, database] = await Promise.all([startDevServerEnv(), createPostgresDatabase('e2epool_api')]);
  h = await startApiHarness(env, database);
  base = h.api.base;
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
  await database?.drop();
});

let jobCounter = 100;
const nextJob = () => `job${++jobCounter}`;

async function create(token: string, runnerId: string, jobId = nextJob()) {
  return call(base, 'POST', '/checkpoint/create', { token, body: { runner_id: runnerId, job_id: jobId } });
}

describe('checkpoint HTTP API', { timeout: 120_000 }, () => {
  it('answers /healthz exactly as e2epool and /health with the operator summary', async () => {
    assert.deepEqual(await call(base, 'GET', '/healthz'), { status: 200, body: { status: 'ok', detail: null } });
    const health = await call(base, 'GET', '/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.database.reachable, true);
    assert.deepEqual(health.body.temporal, { reachable: true, namespace: env.namespace ?? 'default' });
    assert.equal(typeof health.body.runners.total, 'number');
    assert.equal(health.body.version, '0.1.0');
    assert.deepEqual(await call(base, 'GET', '/no/such/route'), { status: 404, body: { detail: 'Not Found' } });
  });

  it('checks auth before the body: missing header 422, lowercase bearer 401, bad token with empty body 403', async () => {
    const token = await h.registerRunner('auth-runner');
    const missing = await call(base, 'POST', '/checkpoint/create', { body: {} });
    assert.equal(missing.status, 422);
    assert.deepEqual(missing.body.detail[0].loc, ['header', 'authorization']);
    assert.deepEqual(await call(base, 'POST', '/checkpoint/create', { auth: `bearer ${token}`, body: {} }), { status: 401, body: { detail: 'Invalid authorization header' } });
    assert.deepEqual(await call(base, 'POST', '/checkpoint/create', { auth: 'Bearer wrong-token' }), { status: 403, body: { detail: 'Invalid token' } });
    assert.deepEqual(await call(base, 'POST', '/checkpoint/finalize', { auth: 'Bearer wrong-token', rawBody: '{not json' }), { status: 403, body: { detail: 'Invalid token' } });
    assert.deepEqual(await call(base, 'GET', '/runner/readiness', { auth: 'Bearer wrong-token' }), { status: 403, body: { detail: 'Invalid token' } });

    const empty = await call(base, 'POST', '/checkpoint/create', { token, body: {} });
    assert.equal(empty.status, 422);
    assert.deepEqual(
      empty.body.detail.map((d: any) => [d.type, d.loc.join('.')]),
      [
        ['missing', 'body.runner_id'],
        ['missing', 'body.job_id'],
      ],
    );
    const noBody = await call(base, 'POST', '/checkpoint/create', { token });
    assert.equal(noBody.status, 422);
    assert.deepEqual(noBody.body.detail[0].loc, ['body']);
    const badJson = await call(base, 'POST', '/checkpoint/create', { token, rawBody: '{"runner_id": ' });
    assert.equal(badJson.status, 422);
    assert.equal(badJson.body.detail[0].type, 'json_invalid');
    const pattern = await call(base, 'POST', '/checkpoint/create', { token, body: { runner_id: 'runner@bad!', job_id: 'job id 123' } });
    assert.equal(pattern.status, 422);
    assert.deepEqual(
      pattern.body.detail.map((d: any) => d.type),
      ['string_pattern_mismatch', 'string_pattern_mismatch'],
    );
    const tooBig = await call(base, 'POST', '/checkpoint/create', { token, rawBody: JSON.stringify({ runner_id: 'auth-runner', job_id: 'x', caller: 'y'.repeat(70_000) }) });
    assert.equal(tooBig.status, 413);
  });

  it('creates: 201 with the CheckpointResponse; status 200; 404 unknown runner; 403 for another runner; 422 when the job id cannot form a name', async () => {
    const tokenA = await h.registerRunner('runner-a');
    const tokenB = await h.registerRunner('runner-b');
    const created = await create(tokenA, 'runner-a', 'test-job-789');
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const cp = created.body;
    assert.match(cp.name, /^job-test-job-789-\d+-[0-9a-f]{8}$/);
    assert.deepEqual(Object.keys(cp).sort(), ['created_at', 'finalize_source', 'finalize_status', 'finalized_at', 'job_id', 'name', 'runner_id', 'state']);
    assert.equal(cp.runner_id, 'runner-a');
    assert.equal(cp.job_id, 'test-job-789');
    assert.equal(cp.state, 'created');
    assert.equal(cp.finalize_status, null);
    assert.equal(cp.finalize_source, null);
    assert.equal(cp.finalized_at, null);
    assert.match(cp.created_at, ISO_UTC);

    assert.deepEqual(await call(base, 'GET', `/checkpoint/status/${cp.name}`, { token: tokenA }), { status: 200, body: cp });
    assert.deepEqual(await call(base, 'GET', `/checkpoint/status/${cp.name}`, { token: tokenB }), { status: 404, body: { detail: 'Checkpoint not found' } }, "another runner's checkpoint reads as missing");
    assert.deepEqual(await call(base, 'GET', '/checkpoint/status/job-nope-1700000000-abcdef12', { token: tokenA }), { status: 404, body: { detail: 'Checkpoint not found' } });
    assert.deepEqual(await call(base, 'GET', '/checkpoint/status/anything-goes', { token: tokenA }), { status: 404, body: { detail: 'Checkpoint not found' } });

    // Whether another runner id exists is not the token's business: the same answer either way.
    assert.deepEqual(await create(tokenA, 'no-such-runner'), { status: 403, body: { detail: 'Token not authorized for this runner' } });
    assert.deepEqual(await create(tokenB, 'runner-a'), { status: 403, body: { detail: 'Token not authorized for this runner' } });
    const long = await create(tokenB, 'runner-b', 'j'.repeat(30));
    assert.equal(long.status, 422);
    assert.match(long.body.detail, /at most 16 fit in a 40-character snapshot name/);
    const upper = await create(tokenB, 'runner-b', 'Job.1');
    assert.equal(upper.status, 422);
    assert.match(upper.body.detail, /cannot form a checkpoint name/);
  });

  it('same job on the same runner attaches (201, same name); another job gets 409 naming the holder', async () => {
    const token = await h.registerRunner('attach-runner');
    const first = await create(token, 'attach-runner', 'build-1');
    assert.equal(first.status, 201);
    const again = await create(token, 'attach-runner', 'build-1');
    assert.deepEqual(again, { status: 201, body: first.body });
    assert.deepEqual(await create(token, 'attach-runner', 'build-2'), {
      status: 409,
      body: { detail: `Active checkpoint '${first.body.name}' already exists for runner 'attach-runner'` },
    });
  });

  it('concurrent creates on one runner: exactly one 201, the others 409; concurrent retries of one job all get its checkpoint', async () => {
    const token = await h.registerRunner('race-runner');
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => create(token, 'race-runner', `race-${i}`)));
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses, [201, 409, 409, 409, 409], JSON.stringify(answers));
    const winner = answers.find((a) => a.status === 201)!.body;
    for (const a of answers.filter((x) => x.status === 409)) assert.match(a.body.detail, /^Active checkpoint .*already exists for runner 'race-runner'/);
    const rows = await database.db.execute(sql.raw(`select count(*)::int as n from checkpoints where runner_id = 'race-runner'`));
    assert.equal((rows as any).rows[0].n, 1, 'losers wrote no row');
    assert.equal(winner.state, 'created');

    const token2 = await h.registerRunner('retry-runner');
    const retries = await Promise.all(Array.from({ length: 3 }, () => create(token2, 'retry-runner', 'same-job')));
    assert.deepEqual(retries.map((r) => r.status), [201, 201, 201], JSON.stringify(retries));
    assert.equal(new Set(retries.map((r) => r.body.name)).size, 1, 'every retry got the same checkpoint');
  });

  it('finalize: 422 on a bad name or status, 202 Finalize queued, then 202 Already finalized; 403 and 404; then cooldown 429 and 409', async () => {
    const token = await h.registerRunner('fin-runner');
    const other = await h.registerRunner('fin-other');
    const { body: cp } = await create(token, 'fin-runner', 'fin-1');

    const badName = await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: 'invalid-name', status: 'success' } });
    assert.equal(badName.status, 422);
    assert.equal(badName.body.detail.length, 1);
    assert.equal(badName.body.detail[0].type, 'value_error');
    assert.deepEqual(badName.body.detail[0].loc, ['body', 'checkpoint_name']);
    assert.ok(badName.body.detail[0].msg.includes('checkpoint_name must match pattern ^job-[\\w.\\-]+-\\d+-[0-9a-f]{8}$'), badName.body.detail[0].msg);
    const badStatus = await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: cp.name, status: 'unknown' } });
    assert.equal(badStatus.status, 422);
    assert.equal(badStatus.body.detail[0].type, 'enum');
    const noStatus = await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: cp.name } });
    assert.deepEqual(noStatus.body.detail.map((d: any) => [d.type, d.loc.join('.')]), [['missing', 'body.status']]);
    const badSource = await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: cp.name, status: 'success', source: 's'.repeat(60) } });
    assert.equal(badSource.status, 422, 'a source longer than the column is refused, not a 500');

    assert.deepEqual(await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: 'job-unknown-1700000000-abcdef12', status: 'success' } }), {
      status: 404,
      body: { detail: 'Checkpoint not found' },
    });
    assert.deepEqual(await call(base, 'POST', '/checkpoint/finalize', { token: other, body: { checkpoint_name: cp.name, status: 'success' } }), {
      status: 404,
      body: { detail: 'Checkpoint not found' },
    });

    // GitLab's $CI_JOB_STATUS `failed` is accepted as failure.
    assert.deepEqual(await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: cp.name, status: 'failed' } }), {
      status: 202,
      body: { detail: 'Finalize queued', checkpoint_name: cp.name },
    });
    // Creating right after the finalize was queued: cooldown first (e2epool probe 173).
    const row = await eventually(
      'finalize projected',
      async () => {
        const s = await call(base, 'GET', `/checkpoint/status/${cp.name}`, { token });
        return s.body.finalize_status ? s.body : null;
      },
      POLL,
    );
    assert.equal(row.finalize_status, 'failure');
    assert.equal(row.finalize_source, 'hook');
    assert.match(row.finalized_at, ISO_UTC);
    assert.deepEqual(await create(token, 'fin-runner', 'fin-2'), { status: 429, body: { detail: 'Cooldown period active, try again later' } });

    const again = await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: cp.name, status: 'success', source: 'webhook' } });
    assert.equal(again.status, 202);
    assert.equal(again.body.detail, 'Already finalized');
    assert.notEqual(again.body.state, 'created');

    // The holder is on the reset path (no agent: it ends in needs_attention): 409 at once.
    await eventually('needs attention', async () => (await call(base, 'GET', `/checkpoint/status/${cp.name}`, { token })).body.state === 'needs_attention', POLL);
    await sleep(2000);
    assert.deepEqual(await create(token, 'fin-runner', 'fin-3'), { status: 409, body: { detail: `Active checkpoint '${cp.name}' already exists for runner 'fin-runner'` } });
    const status = await call(base, 'GET', `/checkpoint/status/${cp.name}`, { token });
    assert.equal(status.body.finalize_status, 'failure', 'the first finalize won');
  });

  it('readiness answers from state: no agent 503, live session 200, drained 503, needs attention 503', async () => {
    const token = await h.registerRunner('ready-runner');
    const notConnected = await call(base, 'GET', '/runner/readiness', { token });
    assert.deepEqual(notConnected, { status: 503, body: { detail: 'Runner not ready: agent not connected', runner_id: 'ready-runner', ready: false, reason: 'agent_not_connected' } });

    await database.db.insert(controllerInstances).values({ instanceId: 'api-test-instance' }).onConflictDoNothing();
    await database.db.insert(agentPresence).values({ runnerId: 'ready-runner', instanceId: 'api-test-instance', sessionEpoch: 1, declaredCommands: null });
    assert.deepEqual(await call(base, 'GET', '/runner/readiness', { token }), { status: 200, body: { runner_id: 'ready-runner', ready: true, detail: null } });

    await h.registry.setDrained('ready-runner', true);
    const drained = await call(base, 'GET', '/runner/readiness', { token });
    assert.equal(drained.status, 503);
    assert.equal(drained.body.reason, 'drained');
    assert.match(drained.body.detail, /^Runner not ready/);
    assert.deepEqual(await create(token, 'ready-runner'), { status: 409, body: { detail: "Runner 'ready-runner' is drained and accepts no new checkpoints" } });
    await h.registry.setDrained('ready-runner', false);

    // A presence row on an instance that stopped heartbeating is not a live session.
    await database.db.execute(sql.raw(`update controller_instances set last_seen = now() - interval '5 minutes' where instance_id = 'api-test-instance'`));
    assert.equal((await call(base, 'GET', '/runner/readiness', { token })).body.reason, 'agent_not_connected');
    await database.db.execute(sql.raw(`update controller_instances set last_seen = now() where instance_id = 'api-test-instance'`));

    const { body: cp } = await create(token, 'ready-runner', 'ready-1');
    assert.equal((await call(base, 'GET', '/runner/readiness', { token })).status, 200, 'a created checkpoint is a job running, not a reset');
    await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: cp.name, status: 'canceled' } });
    const attention = await eventually(
      'needs attention',
      async () => {
        const r = await call(base, 'GET', '/runner/readiness', { token });
        return r.body.reason === 'needs_attention' ? r : null;
      },
      POLL,
    );
    assert.equal(attention.status, 503);
    assert.ok(attention.body.detail.includes(cp.name));
  });

  it('maintenance mode: create 503 with the message; finalize, status and readiness keep working; it survives restarts', async () => {
    const token = await h.registerRunner('maint-runner');
    const { body: cp } = await create(token, 'maint-runner', 'maint-1');
    const message = 'Upgrading the controller, back at 14:00';
    const on = await call(base, 'POST', '/api/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: true, message } });
    assert.deepEqual(on, { status: 200, body: { enabled: true, message } });
    try {
      assert.deepEqual(await create(token, 'maint-runner', 'maint-2'), { status: 503, body: { detail: message } });
      assert.equal((await call(base, 'GET', `/checkpoint/status/${cp.name}`, { token })).status, 200);
      const readiness = await call(base, 'GET', '/runner/readiness', { token });
      assert.equal(readiness.body.reason, 'maintenance');
      const health = await call(base, 'GET', '/health');
      assert.deepEqual(health.body.maintenance, { enabled: true, message });
      // A fresh app (a restarted controller) reads the same state from the database.
      const restarted = await h.startApp();
      assert.deepEqual(await call(restarted.base, 'GET', '/api/admin/maintenance', { token: ADMIN_TOKEN }), { status: 200, body: { enabled: true, message } });
      assert.deepEqual(await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: cp.name, status: 'success' } }), {
        status: 202,
        body: { detail: 'Finalize queued', checkpoint_name: cp.name },
      });
    } finally {
      assert.equal((await call(base, 'POST', '/api/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: false } })).status, 200);
    }
    assert.equal((await call(base, 'GET', '/api/admin/maintenance', { token: ADMIN_TOKEN })).body.enabled, false);
    const badBody = await call(base, 'POST', '/api/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: 'yes' } });
    assert.equal(badBody.status, 422);
    assert.equal((await call(base, 'POST', '/api/admin/maintenance', { auth: 'Bearer nope', body: { enabled: true } })).status, 403);
    const audit = await database.db.execute(sql.raw(`select action from audit_log where target = 'maintenance' order by id`));
    assert.deepEqual((audit as any).rows.map((r: any) => r.action), ['maintenance.enable', 'maintenance.disable']);
  });

  it('the WebSocket adapter runs the same rules: session runner, source agent, WebSocket 403 wording', async () => {
    const token = await h.registerRunner('ws-runner');
    await h.registerRunner('ws-other');
    const ws = agentRequestHandlerFor(h.api.service);
    const cp: any = await ws.create('ws-runner', { job_id: 'ws-1' });
    assert.equal(cp.runner_id, 'ws-runner');
    assert.equal(cp.state, 'created');
    await assert.rejects(ws.status('ws-other', { checkpoint_name: cp.name }), (err: unknown) => err instanceof E2epoolError && err.code === 'checkpoint_not_found' && err.detail === 'Checkpoint not found');
    await assert.rejects(ws.create('ws-runner', { job_id: 'Bad Job' }), (err: unknown) => err instanceof E2epoolError && err.code === 'validation');
    assert.deepEqual(await ws.finalize('ws-runner', { checkpoint_name: cp.name, status: 'success' }), { detail: 'Finalize queued', checkpoint_name: cp.name });
    const row = await eventually(
      'finalize projected',
      async () => {
        const s = await call(base, 'GET', `/checkpoint/status/${cp.name}`, { token });
        return s.body.finalize_source ? s.body : null;
      },
      POLL,
    );
    assert.equal(row.finalize_source, 'agent');
  });
});
