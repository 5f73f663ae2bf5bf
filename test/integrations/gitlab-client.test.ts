// Contract tests of the GitLab client against the GitLab simulator over real HTTP.
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { got } from 'got';
import { E2epoolError } from '../../src/domain/errors.js';
import { GitlabClient } from '../../src/integrations/gitlab/client.js';
import { GitlabApiError } from '../../src/integrations/gitlab/errors.js';
import { GITLAB_JOB_STATUSES, mapGitlabJobStatus } from '../../src/integrations/gitlab/job-status.js';
import { startGitlabSimulator, type GitlabSimulator } from '../../sim/gitlab/index.js';

const TOKEN = 'glpat-contract-test-token';
const TIMEOUT_MS = 400;
let sim: GitlabSimulator;
let client: GitlabClient;
let nextRunnerId = 100;

beforeAll(async () => {
  sim = await startGitlabSimulator({ tokens: [TOKEN], seed: { projects: [{ id: 5, path: 'grp/app' }, { id: 6, path: 'grp/other' }] } });
  client = new GitlabClient({ baseUrl: sim.url, token: TOKEN, timeoutMs: TIMEOUT_MS });
});

afterAll(async () => {
  await sim.stop();
});

/** A fresh runner per test keeps tests independent while sharing one simulator. */
function newRunner(opts: { paused?: boolean } = {}) {
  return sim.api.addRunner({ id: nextRunnerId++, contacted: true, ...opts });
}

async function expectError(promise: Promise<unknown>, code: string, check: (err: GitlabApiError) => void = () => {}) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof GitlabApiError, `expected a GitlabApiError, got ${String(err)}`);
    assert.ok(err instanceof E2epoolError);
    assert.equal(err.code, code, err.message);
    assert.doesNotMatch(err.message, new RegExp(TOKEN));
    assert.doesNotMatch(JSON.stringify({ ...err, message: err.message }), new RegExp(TOKEN));
    check(err);
    return true;
  });
}

test('getJob returns every GitLab status with its fields, by numeric project id and by path', async () => {
  const runner = newRunner();
  for (const status of GITLAB_JOB_STATUSES) {
    const created = sim.api.createJob({ projectId: 5, runnerId: runner.id, status, name: `job-${status}` });
    for (const project of [5, '5', 'grp/app']) {
      const job = await client.getJob(project, created.id);
      assert.equal(job.id, created.id);
      assert.equal(job.status, status);
      assert.equal(job.name, `job-${status}`);
      assert.equal(job.runner?.id, runner.id);
      assert.equal(job.web_url, `${sim.url}/grp/app/-/jobs/${created.id}`);
      assert.equal(job.pipeline?.project_id, 5);
      assert.equal(job.failure_reason, status === 'failed' ? 'script_failure' : null);
      const terminal = mapGitlabJobStatus(job.status).terminal;
      assert.equal(job.finished_at !== null, terminal, `finished_at of ${status}`);
    }
  }
});

test('getJob URL-encodes a project path and authenticates with PRIVATE-TOKEN', async () => {
  const job = sim.api.createJob({ projectId: 5, status: 'pending' });
  sim.api.clearCalls();
  const got1 = await client.getJob('grp/app', String(job.id));
  assert.equal(got1.runner, null);
  const [call] = sim.api.calls();
  assert.equal(call?.method, 'GET');
  assert.equal(call?.path, `/api/v4/projects/grp%2Fapp/jobs/${job.id}`);
  assert.equal(call?.endpoint, 'getJob');
  assert.equal(call?.authHeader, 'private-token');
  assert.equal(call?.authenticated, true);
});

test('getJob follows a job through its lifecycle', async () => {
  const runner = newRunner();
  const job = sim.api.createJob({ projectId: 5, status: 'pending', runnerId: runner.id });
  assert.equal((await client.getJob(5, job.id)).started_at, null);
  sim.api.setJobStatus(job.id, 'running');
  const running = await client.getJob(5, job.id);
  assert.equal(running.status, 'running');
  assert.equal(running.runner?.id, runner.id);
  assert.ok(running.started_at);
  sim.api.setJobStatus(job.id, 'failed', { failureReason: 'stuck_or_timeout_failure' });
  const failed = await client.getJob(5, job.id);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.failure_reason, 'stuck_or_timeout_failure');
  assert.ok(failed.finished_at);
  assert.deepEqual(mapGitlabJobStatus(failed.status), { terminal: true, outcome: 'failure' });
});

test('a missing job, a job of another project and a missing project are gitlab_not_found', async () => {
  const job = sim.api.createJob({ projectId: 6, status: 'running' });
  await expectError(client.getJob(5, 987654), 'gitlab_not_found', (err) => {
    assert.equal(err.status, 404);
    assert.equal(err.gitlabMessage, '404 Job Not Found');
  });
  await expectError(client.getJob(5, job.id), 'gitlab_not_found', (err) => assert.equal(err.gitlabMessage, '404 Job Not Found'));
  await expectError(client.getJob('grp/missing', job.id), 'gitlab_not_found', (err) => assert.equal(err.gitlabMessage, '404 Project Not Found'));
  await expectError(client.getRunner(99999), 'gitlab_not_found', (err) => assert.equal(err.gitlabMessage, '404 Runner Not Found'));
  await expectError(client.setRunnerPaused(99999, true), 'gitlab_not_found');
});

test('a wrong token is gitlab_auth with GitLab\'s 401 message and never shows the token', async () => {
  const wrong = new GitlabClient({ baseUrl: sim.url, token: 'glpat-wrong-token-value', timeoutMs: TIMEOUT_MS });
  const runner = newRunner();
  const calls = [() => wrong.getRunner(runner.id), () => wrong.setRunnerPaused(runner.id, true), () => wrong.listRunnerJobs(runner.id, 'running'), () => wrong.getJob(5, 1)];
  for (const call of calls) {
    await expectError(call(), 'gitlab_auth', (err) => {
      assert.equal(err.status, 401);
      assert.equal(err.gitlabMessage, '401 Unauthorized');
      assert.doesNotMatch(err.message, /glpat-wrong-token-value/);
      assert.doesNotMatch(JSON.stringify(err.extra), /glpat-wrong-token-value/);
    });
  }
  assert.equal(sim.api.getRunner(runner.id).paused, false, 'an unauthenticated PUT changed nothing');
});

test('pause and unpause send {"paused": bool} and never the deprecated active', async () => {
  const runner = newRunner();
  sim.api.clearCalls();
  const paused = await client.setRunnerPaused(runner.id, true);
  assert.equal(paused.paused, true);
  assert.equal(sim.api.getRunner(runner.id).paused, true);
  const unpaused = await client.setRunnerPaused(String(runner.id), false);
  assert.equal(unpaused.paused, false);
  assert.equal(sim.api.getRunner(runner.id).paused, false);
  const puts = sim.api.calls({ endpoint: 'updateRunner' });
  assert.deepEqual(puts.map((c) => [c.method, c.path, c.body, c.status]), [
    ['PUT', `/api/v4/runners/${runner.id}`, { paused: true }, 200],
    ['PUT', `/api/v4/runners/${runner.id}`, { paused: false }, 200],
  ]);
});

test('the simulator rejects active, active with paused, and an empty update', async () => {
  const runner = newRunner();
  const put = (json: unknown) =>
    got.put(`${sim.url}/api/v4/runners/${runner.id}`, { json, headers: { 'private-token': TOKEN }, throwHttpErrors: false, retry: { limit: 0 } });
  const deprecated = await put({ active: false });
  assert.equal(deprecated.statusCode, 400);
  assert.deepEqual(JSON.parse(deprecated.body), { error: 'active is deprecated, use paused' });
  const both = await put({ active: false, paused: true });
  assert.equal(both.statusCode, 400);
  assert.match(JSON.parse(both.body).error, /mutually exclusive/);
  const empty = await put({});
  assert.equal(empty.statusCode, 400);
  assert.match(JSON.parse(empty.body).error, /at least one parameter must be provided/);
  const invalid = await put({ paused: 'maybe' });
  assert.equal(invalid.statusCode, 400);
  assert.equal(sim.api.getRunner(runner.id).paused, false, 'no rejected update changed the runner');
});

test('the simulator accepts Authorization: Bearer and has no GET /api/v4/jobs/:id route', async () => {
  const job = sim.api.createJob({ projectId: 5, status: 'running' });
  const bearer = await got(`${sim.url}/api/v4/projects/5/jobs/${job.id}`, { headers: { authorization: `Bearer ${TOKEN}` }, throwHttpErrors: false });
  assert.equal(bearer.statusCode, 200);
  const oldRoute = await got(`${sim.url}/api/v4/jobs/${job.id}`, { headers: { 'private-token': TOKEN }, throwHttpErrors: false, retry: { limit: 0 } });
  assert.equal(oldRoute.statusCode, 404);
});

test('getRunner reports paused, online and status from contacted_at', async () => {
  let now = new Date('2030-01-01T00:00:00Z');
  const clockSim = await startGitlabSimulator({ tokens: [TOKEN], now: () => now, onlineWindowMs: 60_000, seed: { runners: [{ id: 1, contacted: true }, { id: 2 }] } });
  try {
    const c = new GitlabClient({ baseUrl: clockSim.url, token: TOKEN, timeoutMs: TIMEOUT_MS });
    const fresh = await c.getRunner(1);
    assert.deepEqual([fresh.online, fresh.status, fresh.paused, fresh.contacted_at], [true, 'online', false, '2030-01-01T00:00:00.000Z']);
    const never = await c.getRunner(2);
    assert.deepEqual([never.online, never.status, never.contacted_at], [false, 'never_contacted', null]);
    now = new Date('2030-01-01T00:01:01Z');
    const stale = await c.getRunner(1);
    assert.deepEqual([stale.online, stale.status], [false, 'offline']);
    clockSim.api.contactRunner(1);
    assert.equal((await c.getRunner(1)).online, true);
    await c.setRunnerPaused(1, true);
    const paused = await c.getRunner(1);
    assert.deepEqual([paused.paused, paused.active], [true, false]);
  } finally {
    await clockSim.stop();
  }
});

test('listRunnerJobs returns only this runner\'s running jobs, with their project ids', async () => {
  const runner = newRunner();
  const other = newRunner();
  const a = sim.api.createJob({ projectId: 5, runnerId: runner.id, status: 'running' });
  const b = sim.api.createJob({ projectId: 6, runnerId: runner.id, status: 'running' });
  sim.api.createJob({ projectId: 5, runnerId: runner.id, status: 'success' });
  sim.api.createJob({ projectId: 5, runnerId: runner.id, status: 'pending' });
  sim.api.createJob({ projectId: 5, runnerId: other.id, status: 'running' });
  sim.api.clearCalls();
  const jobs = await client.listRunnerJobs(runner.id, 'running');
  assert.deepEqual(jobs.map((j) => [j.id, j.status, j.project?.id]).sort(), [[a.id, 'running', 5], [b.id, 'running', 6]].sort());
  const [call] = sim.api.calls({ endpoint: 'listRunnerJobs' });
  assert.equal(call?.path, `/api/v4/runners/${runner.id}/jobs`);
  assert.equal(call?.query.status, 'running');
  assert.equal(call?.query.per_page, '100');
  assert.deepEqual(await client.listRunnerJobs(other.id + 1000, 'running').catch((e: E2epoolError) => e.code), 'gitlab_not_found');
  sim.api.setJobStatus(a.id, 'success');
  sim.api.setJobStatus(b.id, 'canceled');
  assert.deepEqual(await client.listRunnerJobs(runner.id, 'running'), []);
});

test('listRunnerJobs follows pages of 100', async () => {
  const runner = newRunner();
  for (let i = 0; i < 230; i++) sim.api.createJob({ projectId: 5, runnerId: runner.id, status: 'running' });
  sim.api.clearCalls();
  const jobs = await client.listRunnerJobs(runner.id, 'running');
  assert.equal(jobs.length, 230);
  assert.equal(new Set(jobs.map((j) => j.id)).size, 230);
  assert.deepEqual(sim.api.calls({ endpoint: 'listRunnerJobs' }).map((c) => c.query.page), ['1', '2', '3']);
});

test('5xx faults are gitlab_unavailable, the client does not retry by itself, and the fault runs out', async () => {
  const runner = newRunner();
  sim.api.injectFault('getRunner', { kind: 'status', status: 500, times: 2 });
  sim.api.clearCalls();
  await expectError(client.getRunner(runner.id), 'gitlab_unavailable', (err) => {
    assert.equal(err.status, 500);
    assert.equal(err.gitlabMessage, '500 Internal Server Error');
  });
  await expectError(client.getRunner(runner.id), 'gitlab_unavailable');
  assert.equal((await client.getRunner(runner.id)).id, runner.id);
  assert.deepEqual(sim.api.calls({ endpoint: 'getRunner' }).map((c) => [c.status, c.fault ?? null]), [[500, 'status'], [500, 'status'], [200, null]]);
  for (const status of [502, 503, 504, 429]) {
    sim.api.injectFault('listRunnerJobs', { kind: 'status', status, times: 1 });
    await expectError(client.listRunnerJobs(runner.id, 'running'), 'gitlab_unavailable', (err) => assert.equal(err.status, status));
  }
});

test('a failed pause changes nothing and a later retry pauses', async () => {
  const runner = newRunner();
  sim.api.injectFault('updateRunner', { kind: 'status', status: 503, times: 1 });
  await expectError(client.setRunnerPaused(runner.id, true), 'gitlab_unavailable');
  assert.equal(sim.api.getRunner(runner.id).paused, false);
  assert.equal((await client.setRunnerPaused(runner.id, true)).paused, true);
});

test('injected 404, 401 and 403 map to gitlab_not_found and gitlab_auth; other 4xx are not retried as success', async () => {
  const runner = newRunner();
  sim.api.injectFault('getRunner', { kind: 'status', status: 404, times: 1 });
  await expectError(client.getRunner(runner.id), 'gitlab_not_found', (err) => assert.equal(err.gitlabMessage, '404 Runner Not Found'));
  sim.api.injectFault('updateRunner', { kind: 'status', status: 403, message: '403 Forbidden - No access granted', times: 1 });
  await expectError(client.setRunnerPaused(runner.id, true), 'gitlab_auth', (err) => {
    assert.equal(err.status, 403);
    assert.equal(err.gitlabMessage, '403 Forbidden - No access granted');
  });
  sim.api.injectFault('getJob', { kind: 'status', status: 401, times: 1 });
  await expectError(client.getJob(5, 1), 'gitlab_auth');
  sim.api.injectFault('getRunner', { kind: 'status', status: 400, message: 'bad', times: 1 });
  await expectError(client.getRunner(runner.id), 'gitlab_bad_request', (err) => assert.match(err.message, /rejected/));
});

test('a hanging GitLab is gitlab_unavailable once the timeout passes', async () => {
  const runner = newRunner();
  sim.api.injectFault('getRunner', { kind: 'hang', times: 1 });
  const started = Date.now();
  await expectError(client.getRunner(runner.id), 'gitlab_unavailable', (err) => {
    assert.match(err.message, new RegExp(`no answer within ${TIMEOUT_MS} ms`));
    assert.equal(err.status, undefined);
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= TIMEOUT_MS - 20 && elapsed < TIMEOUT_MS + 1500, `timed out after ${elapsed} ms`);
  // A slow answer within the timeout is fine.
  sim.api.injectFault('getRunner', { kind: 'delay', ms: 50, times: 1 });
  assert.equal((await client.getRunner(runner.id)).id, runner.id);
});

test('a dropped connection and a closed port are gitlab_unavailable', async () => {
  const runner = newRunner();
  sim.api.injectFault('any', { kind: 'disconnect', times: 1 });
  await expectError(client.getRunner(runner.id), 'gitlab_unavailable', (err) => assert.match(err.message, /connection error/));
  const gone = await startGitlabSimulator({ tokens: [TOKEN] });
  await gone.stop();
  const c = new GitlabClient({ baseUrl: gone.url, token: TOKEN, timeoutMs: TIMEOUT_MS });
  await expectError(c.getRunner(1), 'gitlab_unavailable', (err) => assert.match(err.message, /ECONNREFUSED/));
});

test('a base URL with a trailing slash or a pasted /api/v4 reaches the same routes', async () => {
  const runner = newRunner();
  for (const baseUrl of [`${sim.url}/`, `${sim.url}/api/v4`, `${sim.url}/api/v4/`]) {
    const c = new GitlabClient({ baseUrl, token: TOKEN, timeoutMs: TIMEOUT_MS });
    assert.equal((await c.getRunner(runner.id)).id, runner.id);
  }
});

// A misconfigured GitLab URL: something that is not GitLab answers.
test('redirects are not followed (the token stays home) and non-JSON or odd answers are gitlab_unavailable', async () => {
  const seen: Array<{ url: string; token: string | undefined }> = [];
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', token: req.headers['private-token'] as string | undefined });
    if (req.url?.startsWith('/moved/')) {
      res.writeHead(301, { location: `http://127.0.0.1:${(server.address() as AddressInfo).port}/elsewhere` }).end();
    } else if (req.url?.includes('/runners/1')) {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>sign in</html>');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'not-a-number', paused: 'no' }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const moved = new GitlabClient({ baseUrl: `${base}/moved`, token: TOKEN, timeoutMs: TIMEOUT_MS });
    await expectError(moved.getRunner(1), 'gitlab_unavailable', (err) => assert.match(err.message, /redirect/));
    assert.equal(seen.some((s) => s.url === '/elsewhere'), false, 'redirect was not followed');
    const html = new GitlabClient({ baseUrl: base, token: TOKEN, timeoutMs: TIMEOUT_MS });
    await expectError(html.getRunner(1), 'gitlab_unavailable', (err) => assert.match(err.message, /not JSON/));
    await expectError(html.getRunner(2), 'gitlab_unavailable', (err) => assert.match(err.message, /unexpected shape/));
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
