// Operator routes of the HTTP API against a real Temporal dev server, worker and PostgreSQL:
// retry-reset and release of a checkpoint in needs attention, listings with filters and cursors,
// one checkpoint's transition log, the per-runner create rate limit, and the API's own deadline.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { sql } from 'drizzle-orm';
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
  [env, database] = await Promise.all([startDevServerEnv(), createPostgresDatabase('e2epool_api_admin')]);
  h = await startApiHarness(env, database);
  base = h.api.base;
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
  await database?.drop();
});

const admin = (method: string, path: string, body?: unknown) => call(base, method, path, { token: ADMIN_TOKEN, body });

async function stateOf(token: string, name: string): Promise<string> {
  return (await call(base, 'GET', `/checkpoint/status/${name}`, { token })).body.state;
}

describe('admin checkpoint API', { timeout: 120_000 }, () => {
  it('retry-reset and release: 409 unless in needs attention; 202, signalled, audited; release frees the runner', async () => {
    const token = await h.registerRunner('op-runner');
    // A service allowing one create per runner (and almost no refill) shows the rate limit later.
    const limited = await h.startApp({ createRateLimit: { burst: 1, perMinute: 0.001 } });
    const created = await call(limited.base, 'POST', '/checkpoint/create', { token, body: { runner_id: 'op-runner', job_id: 'op-1' } });
    assert.equal(created.status, 201);
    const name = created.body.name;

    const notYet = await admin('POST', `/api/checkpoints/${name}/retry-reset`);
    assert.deepEqual(notYet, { status: 409, body: { detail: `Checkpoint '${name}' is not in needs_attention (state: created)` } });
    assert.equal((await admin('POST', `/api/checkpoints/${name}/release`, { deleteSnapshot: true })).status, 409);
    assert.deepEqual(await admin('POST', '/api/checkpoints/job-none-1700000000-abcdef12/retry-reset'), { status: 404, body: { detail: 'Checkpoint not found' } });
    // Auth comes before the body, and the release body is validated.
    assert.equal((await call(base, 'POST', `/api/checkpoints/${name}/release`, { auth: 'Bearer wrong', rawBody: '{oops' })).status, 403);
    assert.equal((await call(base, 'POST', `/api/checkpoints/${name}/release`, { body: {} })).status, 401, 'no admin header');
    const missingFlag = await admin('POST', `/api/checkpoints/${name}/release`, {});
    assert.equal(missingFlag.status, 422);
    assert.deepEqual(missingFlag.body.detail[0].loc, ['body', 'deleteSnapshot']);

    await call(base, 'POST', '/checkpoint/finalize', { token, body: { checkpoint_name: name, status: 'failure' } });
    await eventually('needs attention', async () => (await stateOf(token, name)) === 'needs_attention', POLL);

    assert.deepEqual(await admin('POST', `/api/checkpoints/${name}/retry-reset`), { status: 202, body: { detail: 'Reset retry requested', checkpoint_name: name } });
    // The retry runs the reset again; with no agent it comes back to needs attention.
    await eventually(
      'retry recorded',
      async () => {
        const detail = await admin('GET', `/api/checkpoints/${name}`);
        const events = detail.body.transitions.map((t: any) => t.event);
        // Back in needs attention after the retry: a step failed again after the retry was recorded.
        return events.includes('retry_reset') && events.lastIndexOf('step_failed') > events.indexOf('retry_reset') && detail.body.checkpoint.state === 'needs_attention';
      },
      POLL,
    );

    assert.deepEqual(await admin('POST', `/api/checkpoints/${name}/release`, { deleteSnapshot: true }), { status: 202, body: { detail: 'Release requested', checkpoint_name: name } });
    await eventually('released', async () => (await stateOf(token, name)) === 'released', POLL);
    assert.equal((await admin('POST', `/api/checkpoints/${name}/release`, { deleteSnapshot: false })).status, 409);

    const audit = await database.db.execute(sql`select actor, action, target, detail from audit_log where target = ${name} order by id`);
    assert.deepEqual(
      (audit as any).rows.map((r: any) => [r.actor, r.action, r.detail.deleteSnapshot ?? null]),
      [
        ['admin', 'checkpoint.retry_reset', null],
        ['admin', 'checkpoint.release', true],
      ],
    );

    // The claim is free. Past the cooldown the limited service refuses (its one token is spent);
    // the default service creates.
    await sleep(2100);
    assert.deepEqual(await call(limited.base, 'POST', '/checkpoint/create', { token, body: { runner_id: 'op-runner', job_id: 'op-2' } }), {
      status: 429,
      body: { detail: "Too many create requests for runner 'op-runner'" },
    });
    assert.equal((await call(base, 'POST', '/checkpoint/create', { token, body: { runner_id: 'op-runner', job_id: 'op-2' } })).status, 201);
  });

  it('lists checkpoints with state words, runner and time filters, and a cursor; shows one with its log and Temporal link', async () => {
    const tokenL = await h.registerRunner('list-runner');
    const tokenM = await h.registerRunner('list-other');
    const first = (await call(base, 'POST', '/checkpoint/create', { token: tokenL, body: { runner_id: 'list-runner', job_id: 'list-1' } })).body;
    await call(base, 'POST', '/checkpoint/finalize', { token: tokenL, body: { checkpoint_name: first.name, status: 'failure' } });
    await eventually('needs attention', async () => (await stateOf(tokenL, first.name)) === 'needs_attention', POLL);
    const second = (await call(base, 'POST', '/checkpoint/create', { token: tokenM, body: { runner_id: 'list-other', job_id: 'list-2' } })).body;
    assert.equal(second.state, 'created');

    const mine = await admin('GET', '/api/checkpoints?runner=list-runner');
    assert.equal(mine.status, 200);
    assert.equal(mine.body.total, 1);
    assert.equal(mine.body.items[0].name, first.name);
    assert.equal(mine.body.items[0].needs_attention_reason, 'agent_unreachable');
    assert.equal(mine.body.nextCursor, null);

    const names = async (query: string) => (await admin('GET', `/api/checkpoints?${query}`)).body.items.map((i: any) => i.name);
    assert.ok((await names('state=active&limit=500')).includes(second.name));
    assert.ok((await names('state=active&limit=500')).includes(first.name), 'needs attention is active');
    assert.ok((await names('state=failed&limit=500')).includes(first.name));
    assert.ok(!(await names('state=failed&limit=500')).includes(second.name));
    assert.deepEqual(await names('state=created,deleted&runner=list-other'), [second.name]);
    assert.deepEqual(await names(`runner=list-other&since=${encodeURIComponent(second.created_at)}`), [second.name]);
    assert.deepEqual(await names('runner=list-other&until=2000-01-01T00:00:00'), []);

    // Cursor paging walks every row once, newest first.
    const all = await admin('GET', '/api/checkpoints?limit=500');
    const seen: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const page: any = await admin('GET', `/api/checkpoints?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(page.body.total, all.body.total);
      assert.ok(page.body.items.length <= 2);
      seen.push(...page.body.items.map((i: any) => i.name));
      cursor = page.body.nextCursor;
    }
    assert.deepEqual(seen, all.body.items.map((i: any) => i.name));
    assert.equal(new Set(seen).size, all.body.total);

    const bad = await admin('GET', '/api/checkpoints?state=bogus&limit=0&since=yesterday');
    assert.equal(bad.status, 422);
    assert.deepEqual(bad.body.detail.map((d: any) => d.loc.join('.')), ['query.state', 'query.since', 'query.limit']);
    assert.equal((await call(base, 'GET', '/api/checkpoints')).status, 401, 'admin token header required');
    assert.deepEqual(await call(base, 'GET', '/api/checkpoints', { auth: 'Bearer wrong' }), { status: 403, body: { detail: 'Invalid admin token' } });

    const detail = await admin('GET', `/api/checkpoints/${first.name}`);
    assert.equal(detail.status, 200);
    assert.equal(detail.body.checkpoint.name, first.name);
    assert.equal(detail.body.checkpoint.state, 'needs_attention');
    assert.match(detail.body.checkpoint.created_at, ISO_UTC);
    assert.deepEqual(
      detail.body.transitions.slice(0, 3).map((t: any) => [t.seq, t.from, t.to]),
      [
        [0, null, 'creating'],
        [1, 'creating', 'created'],
        [2, 'created', 'finalize_queued'],
      ],
    );
    assert.equal(detail.body.transitions.at(-1).to, 'needs_attention');
    assert.equal(detail.body.temporalUiUrl, `http://127.0.0.1:8233/namespaces/${env.namespace ?? 'default'}/workflows/${first.name}`);
    assert.deepEqual(await admin('GET', '/api/checkpoints/job-none-1700000000-abcdef12'), { status: 404, body: { detail: 'Checkpoint not found' } });

    const health = await call(base, 'GET', '/health');
    assert.equal(health.body.status, 'degraded', 'a runner needs attention');
    assert.ok(health.body.runners.needsAttention >= 1);
    assert.ok(health.body.runners.busy >= 1);
    assert.ok(health.body.stats.created >= 2);
    assert.ok(health.body.stats.failed >= 1);
  });

  it('answers 503 Controller did not answer in time when no worker takes the create, after deadline + grace', async () => {
    const token = await h.registerRunner('slow-runner');
    const stalled = await h.startApp({ taskQueue: 'api-test-no-worker', config: { CREATE_TIMEOUT_SECONDS: 1 }, clientGraceSeconds: 1 });
    const started = Date.now();
    const answer = await call(stalled.base, 'POST', '/checkpoint/create', { token, body: { runner_id: 'slow-runner', job_id: 'slow-1' } });
    assert.deepEqual(answer, { status: 503, body: { detail: 'Controller did not answer in time' } });
    const took = Date.now() - started;
    assert.ok(took >= 1900 && took < 10_000, `answered after ${took} ms`);
    const rows = await database.db.execute(sql`select count(*)::int as n from checkpoints where runner_id = 'slow-runner'`);
    assert.equal((rows as any).rows[0].n, 0);
    // The caller gave up on it: the workflow is canceled, so a late create is compensated, never kept.
    const ids = await eventually('the abandoned create\'s workflow in the visibility list', async () => {
      const found: string[] = [];
      for await (const wf of env.client.workflow.list({ query: "RunnerId = 'slow-runner'" })) found.push(wf.workflowId);
      return found.length > 0 && found;
    }, { timeoutMs: 5000, intervalMs: 100 });
    assert.equal(ids.length, 1);
    const history = await env.client.workflow.getHandle(ids[0]!).fetchHistory();
    assert.ok((history.events ?? []).some((e) => e.workflowExecutionCancelRequestedEventAttributes), 'a cancel was requested');
    await env.client.workflow.getHandle(ids[0]!).terminate('test: no worker serves this queue');
  });

  it('a claim whose workflow was terminated is stale: needs attention (orphan_claim), never released by itself, released by an operator', async () => {
    const token = await h.registerRunner('orphan-runner');
    const created = await call(base, 'POST', '/checkpoint/create', { token, body: { runner_id: 'orphan-runner', job_id: 'orph-1' } });
    assert.equal(created.status, 201);
    const name = created.body.name;
    await env.client.workflow.getHandle(name).terminate('test: someone used Terminate');
    const blocked = await call(base, 'POST', '/checkpoint/create', { token, body: { runner_id: 'orphan-runner', job_id: 'orph-2' } });
    assert.equal(blocked.status, 409);
    assert.match(blocked.body.detail, /its workflow has ended: an operator must release it/);
    const detail = await admin('GET', `/api/checkpoints/${name}`);
    assert.equal(detail.body.checkpoint.state, 'needs_attention');
    assert.equal(detail.body.checkpoint.needs_attention_reason, 'orphan_claim');
    const alerts: any = await database.db.execute(sql`select severity from alerts where key = ${`needs_attention:${name}`} and resolved_at is null`);
    assert.deepEqual(alerts.rows, [{ severity: 'critical' }]);
    // Still blocked on a second try: nothing releases it automatically.
    assert.equal((await call(base, 'POST', '/checkpoint/create', { token, body: { runner_id: 'orphan-runner', job_id: 'orph-3' } })).status, 409);
    assert.equal((await admin('POST', `/api/checkpoints/${name}/release`, { deleteSnapshot: false })).status, 202);
    const after = await call(base, 'POST', '/checkpoint/create', { token, body: { runner_id: 'orphan-runner', job_id: 'orph-4' } });
    assert.equal(after.status, 201, JSON.stringify(after.body));
  });
});
