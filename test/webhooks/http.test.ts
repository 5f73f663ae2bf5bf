// The webhook routes over real HTTP with a real PGlite inbox: authentication (fail closed), what is
// stored and what is ignored, de-duplication by delivery id, body limits and a broken database.
import { afterAll, beforeAll, beforeEach, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { sql } from 'drizzle-orm';
import { createWebhooksRouter, type WebhooksRouterOptions } from '../../src/api/routes/webhooks.js';
import { openDatabase } from '../../src/store/database.js';
import { findFreePort } from '../../temporal/free-port.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { captureLogs } from '../helpers/log-capture.js';

const GITLAB_SECRET = 'gl-hook-secret-4711';
const GITHUB_SECRET = 'gh-hook-secret-0815';

interface App {
  url: string;
  stored: number;
  close(): Promise<void>;
}

const servers: App[] = [];
const logs = captureLogs();
let database: TestDatabase;

async function startApp(config: WebhooksRouterOptions['config'], extra: Partial<WebhooksRouterOptions> = {}, db = database): Promise<App> {
  const app = express();
  const state = { stored: 0 };
  app.use(createWebhooksRouter({ db: db.db, config, logger: logs.logger, onStored: () => state.stored++, ...extra }));
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const handle: App = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get stored() {
      return state.stored;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  servers.push(handle);
  return handle;
}

function jobHook(status: string, extra: Record<string, unknown> = {}) {
  return { object_kind: 'build', build_id: 9001, build_status: status, project_id: 5, runner: { id: 7, description: 'r7' }, ...extra };
}

async function post(url: string, body: string | object, headers: Record<string, string> = {}) {
  const started = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, ms: performance.now() - started };
}

async function inbox() {
  const result: any = await database.db.execute(sql`select event_id, provider, job_id, status, payload, processed_at, attempts, outcome from webhook_inbox order by received_at`);
  return result.rows as Array<Record<string, any>>;
}

const sign = (raw: string, secret = GITHUB_SECRET) => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;

beforeAll(async () => {
  database = await createPgliteDatabase();
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await database?.drop();
});
beforeEach(async () => {
  await database.db.execute(sql`delete from webhook_inbox`);
});

describe('POST /webhooks/gitlab', () => {
  it('answers 403 "secret not configured" with or without a token when no secret is set, and stores nothing', async () => {
    const app = await startApp({});
    for (const headers of [{}, { 'x-gitlab-token': '' }, { 'x-gitlab-token': 'anything' }] as Array<Record<string, string>>) {
      const res = await post(`${app.url}/webhooks/gitlab`, jobHook('success'), { 'x-gitlab-event-uuid': 'u-1', ...headers });
      assert.equal(res.status, 403);
      assert.deepEqual(res.body, { detail: 'GitLab webhook secret not configured' });
    }
    assert.deepEqual(await inbox(), []);
    assert.equal(app.stored, 0);
  });

  it('answers 403 "Invalid webhook token" for a missing, empty or wrong token', async () => {
    const app = await startApp({ gitlabSecret: GITLAB_SECRET });
    for (const headers of [{}, { 'x-gitlab-token': '' }, { 'x-gitlab-token': `${GITLAB_SECRET}x` }, { 'x-gitlab-token': GITLAB_SECRET.slice(0, -1) }] as Array<Record<string, string>>) {
      const res = await post(`${app.url}/webhooks/gitlab`, jobHook('success'), { 'x-gitlab-event-uuid': 'u-2', ...headers });
      assert.equal(res.status, 403);
      assert.deepEqual(res.body, { detail: 'Invalid webhook token' });
    }
    assert.deepEqual(await inbox(), []);
  });

  it('stores a terminal job event by its X-Gitlab-Event-UUID and answers 200 {"ok":true} at once', async () => {
    const app = await startApp({ gitlabSecret: GITLAB_SECRET });
    const res = await post(`${app.url}/webhooks/gitlab`, jobHook('failed'), { 'x-gitlab-token': GITLAB_SECRET, 'x-gitlab-event-uuid': 'uuid-failed-1', 'x-gitlab-event': 'Job Hook' });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { ok: true });
    assert.ok(res.ms < 1000, `answered in ${res.ms} ms`);
    const rows = await inbox();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.event_id, 'uuid-failed-1');
    assert.equal(rows[0]!.provider, 'gitlab');
    assert.equal(rows[0]!.job_id, '9001');
    assert.equal(rows[0]!.status, 'failure');
    assert.deepEqual(rows[0]!.payload, { jobId: '9001', projectId: '5', runnerId: 7, status: 'failure', providerStatus: 'failed' });
    assert.equal(rows[0]!.processed_at, null);
    assert.equal(rows[0]!.attempts, 0);
    assert.equal(app.stored, 1);
  });

  it('stores a redelivery with the same UUID once and does not wake the dispatcher again', async () => {
    const app = await startApp({ gitlabSecret: GITLAB_SECRET });
    for (let i = 0; i < 3; i++) {
      const res = await post(`${app.url}/webhooks/gitlab`, jobHook('success'), { 'x-gitlab-token': GITLAB_SECRET, 'x-gitlab-event-uuid': 'uuid-dup' });
      assert.equal(res.status, 200);
    }
    // Without a UUID the body digest is the id: the same body is the same event.
    for (let i = 0; i < 2; i++) await post(`${app.url}/webhooks/gitlab`, jobHook('canceled'), { 'x-gitlab-token': GITLAB_SECRET });
    const rows = await inbox();
    assert.deepEqual(rows.map((r) => [r.event_id.startsWith('sha256:') ? 'digest' : r.event_id, r.status]), [['uuid-dup', 'success'], ['digest', 'canceled']]);
    assert.equal(app.stored, 2);
  });

  it('ignores non-terminal statuses, other event kinds and malformed bodies with 200, storing nothing', async () => {
    const app = await startApp({ gitlabSecret: GITLAB_SECRET });
    const bodies: Array<string | object> = [
      jobHook('created'),
      jobHook('pending'),
      jobHook('running'),
      jobHook('manual'),
      jobHook('canceling'),
      jobHook('some_future_status'),
      { object_kind: 'pipeline', object_attributes: { id: 1, status: 'success' } },
      { object_kind: 'build', build_status: 'success' },
      { object_kind: 'build', build_id: 'abc', build_status: 'success' },
      '{"object_kind": "build", ',
      '[1,2,3]',
      '',
    ];
    let n = 0;
    for (const body of bodies) {
      const res = await post(`${app.url}/webhooks/gitlab`, body, { 'x-gitlab-token': GITLAB_SECRET, 'x-gitlab-event-uuid': `ignored-${++n}` });
      assert.equal(res.status, 200, `body ${JSON.stringify(body)}`);
      assert.deepEqual(res.body, { ok: true });
    }
    assert.deepEqual(await inbox(), []);
    assert.equal(app.stored, 0);
    assert.match(logs.text(), /job status running is not terminal/);
    assert.match(logs.text(), /body is not valid JSON/);
  });

  it('answers 413 for a body over the limit without storing it', async () => {
    const app = await startApp({ gitlabSecret: GITLAB_SECRET }, { bodyLimitBytes: 1024 });
    const res = await post(`${app.url}/webhooks/gitlab`, jobHook('success', { padding: 'x'.repeat(4096) }), { 'x-gitlab-token': GITLAB_SECRET });
    assert.equal(res.status, 413);
    assert.deepEqual(res.body, { detail: 'Request body too large' });
    assert.deepEqual(await inbox(), []);
  });

  it('answers 503 when the inbox cannot be written, so GitLab redelivers', async () => {
    // A PostgreSQL URL where nothing listens: every query fails with ECONNREFUSED.
    const broken = await openDatabase(`postgresql://postgres@127.0.0.1:${await findFreePort()}/nowhere`);
    const app = await startApp({ gitlabSecret: GITLAB_SECRET }, {}, { ...broken, url: '', drop: () => broken.close() });
    const res = await post(`${app.url}/webhooks/gitlab`, jobHook('success'), { 'x-gitlab-token': GITLAB_SECRET, 'x-gitlab-event-uuid': 'u-broken' });
    assert.equal(res.status, 503);
    assert.deepEqual(res.body, { detail: 'Webhook could not be stored, retry later' });
    assert.equal(app.stored, 0);
    assert.ok(res.ms < 8000, `answered in ${res.ms} ms`);
    await broken.close();
  });

  it('never writes the secret or the presented token to the logs', () => {
    assert.ok(logs.lines.length > 0);
    assert.ok(!logs.text().includes(GITLAB_SECRET));
    assert.ok(!logs.text().includes(GITLAB_SECRET.slice(0, -1)));
  });
});

describe('POST /webhooks/github', () => {
  const completed = (conclusion: string, id = 555) => JSON.stringify({ action: 'completed', workflow_job: { id, conclusion, runner_id: 3 }, repository: { full_name: 'acme/app' } });

  it('answers 403 "GitHub webhook secret not configured" when no secret is set, even with a signature', async () => {
    const app = await startApp({ gitlabSecret: GITLAB_SECRET });
    const raw = completed('success');
    const res = await post(`${app.url}/webhooks/github`, raw, { 'x-github-event': 'workflow_job', 'x-hub-signature-256': sign(raw) });
    assert.equal(res.status, 403);
    assert.deepEqual(res.body, { detail: 'GitHub webhook secret not configured' });
  });

  it('answers 403 "Invalid webhook signature" for a missing, bogus or other-secret signature, before any filtering', async () => {
    const app = await startApp({ githubSecret: GITHUB_SECRET });
    const raw = completed('success');
    for (const headers of [{}, { 'x-hub-signature-256': 'sha256=invalidsignature' }, { 'x-hub-signature-256': sign(raw, 'other') }, { 'x-hub-signature-256': sign(`${raw} `) }] as Array<Record<string, string>>) {
      const res = await post(`${app.url}/webhooks/github`, raw, { 'x-github-event': 'workflow_job', ...headers });
      assert.equal(res.status, 403);
      assert.deepEqual(res.body, { detail: 'Invalid webhook signature' });
    }
    // An ignorable event with a bad signature is still rejected.
    const res = await post(`${app.url}/webhooks/github`, '{}', { 'x-github-event': 'ping', 'x-hub-signature-256': 'sha256=00' });
    assert.equal(res.status, 403);
    assert.deepEqual(await inbox(), []);
  });

  it('stores a signed completed workflow_job over the exact bytes received, by X-GitHub-Delivery', async () => {
    const app = await startApp({ githubSecret: GITHUB_SECRET });
    // Odd spacing: a re-serialised body would not match the signature.
    const raw = `{ "action":"completed",  "workflow_job": {"id": 777, "conclusion": "cancelled", "runner_id": 3}, "repository": {"full_name": "acme/app"} }`;
    const headers = { 'x-github-event': 'workflow_job', 'x-github-delivery': 'gh-delivery-1', 'x-hub-signature-256': sign(raw) };
    for (let i = 0; i < 2; i++) assert.equal((await post(`${app.url}/webhooks/github`, raw, headers)).status, 200);
    const rows = await inbox();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.event_id, 'gh-delivery-1');
    assert.equal(rows[0]!.provider, 'github');
    assert.equal(rows[0]!.job_id, '777');
    assert.equal(rows[0]!.status, 'canceled');
    assert.equal(rows[0]!.payload.projectId, 'acme/app');
    assert.equal(app.stored, 1);
  });

  it('ignores signed events that do not finalize (other event, in_progress, skipped) with 200', async () => {
    const app = await startApp({ githubSecret: GITHUB_SECRET });
    const cases: Array<[string, string]> = [
      ['check_run', completed('success')],
      ['ping', '{"zen":"hi"}'],
      ['workflow_job', JSON.stringify({ action: 'in_progress', workflow_job: { id: 1, conclusion: null } })],
      ['workflow_job', completed('skipped')],
      ['workflow_job', completed('neutral')],
      ['workflow_job', 'not json'],
    ];
    for (const [event, raw] of cases) {
      const res = await post(`${app.url}/webhooks/github`, raw, { 'x-github-event': event, 'x-hub-signature-256': sign(raw) });
      assert.equal(res.status, 200, `${event} ${raw}`);
      assert.deepEqual(res.body, { ok: true });
    }
    assert.deepEqual(await inbox(), []);
    assert.ok(!logs.text().includes(GITHUB_SECRET));
  });
});
