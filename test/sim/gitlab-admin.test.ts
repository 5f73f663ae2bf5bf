// The GitLab simulator's admin HTTP API (/_sim) and its command line entry.
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { got } from 'got';
import { E2epoolError } from '../../src/domain/errors.js';
import { GitlabClient } from '../../src/integrations/gitlab/client.js';
import { parseGitlabSimulatorArgs, runGitlabSimulatorCli, startGitlabSimulator, type GitlabSimulator } from '../../sim/gitlab/index.js';

const TOKEN = 'glpat-admin-test';
let sim: GitlabSimulator;
let client: GitlabClient;

beforeAll(async () => {
  sim = await startGitlabSimulator({ tokens: [TOKEN] });
  client = new GitlabClient({ baseUrl: sim.url, token: TOKEN, timeoutMs: 500 });
});

afterAll(async () => {
  await sim.stop();
});

async function admin(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, json?: unknown) {
  const res = await got(`${sim.url}/_sim${path}`, { method, json, throwHttpErrors: false, retry: { limit: 0 } });
  return { status: res.statusCode, body: JSON.parse(res.body) };
}

test('the admin API drives projects, runners and a job through a runner loop', async () => {
  assert.equal((await admin('POST', '/projects', { id: 11, path: 'team/web' })).status, 201);
  const runner = await admin('POST', '/runners', { id: 21, description: 'vm-21', contacted: true });
  assert.equal(runner.status, 201);
  assert.deepEqual([runner.body.id, runner.body.paused, runner.body.online], [21, false, true]);

  const created = await admin('POST', '/jobs', { projectId: 'team/web' });
  assert.equal(created.status, 201);
  assert.equal(created.body.status, 'pending');
  const jobId = created.body.id as number;

  assert.equal((await admin('POST', '/runners/21/paused', { paused: true })).body.paused, true);
  assert.deepEqual((await admin('POST', '/runners/21/assign-next')).body, { job: null });
  assert.equal((await admin('POST', '/runners/21/paused', { paused: false })).body.paused, false);
  const assigned = await admin('POST', '/runners/21/assign-next');
  assert.equal(assigned.body.job.id, jobId);
  assert.equal(assigned.body.job.runner.id, 21);

  assert.deepEqual((await client.listRunnerJobs(21, 'running')).map((j) => j.id), [jobId]);
  const finished = await admin('POST', `/jobs/${jobId}/status`, { status: 'failed', failureReason: 'script_failure' });
  assert.equal(finished.body.failure_reason, 'script_failure');
  assert.equal((await client.getJob('team/web', jobId)).status, 'failed');

  const state = await admin('GET', '/state');
  assert.ok(state.body.projects.some((p: { path: string }) => p.path === 'team/web'));
  assert.ok(state.body.jobs.some((j: { id: number; status: string }) => j.id === jobId && j.status === 'failed'));
});

test('the admin API rejects bad input with 400 and unknown things with 404', async () => {
  assert.equal((await admin('POST', '/jobs', { projectId: 999 })).status, 404);
  assert.equal((await admin('POST', '/runners', { id: 'x' })).status, 400);
  assert.equal((await admin('POST', '/runners', { tags: 'docker' })).status, 400);
  assert.equal((await admin('POST', '/projects', { path: 'no-namespace' })).status, 400);
  const badStatus = await admin('POST', '/runners', { id: 31 }).then(() => admin('POST', '/jobs', { projectId: 11, status: 'done' }));
  assert.equal(badStatus.status, 400);
  assert.match(badStatus.body.error, /unknown job status/);
  assert.equal((await admin('POST', '/jobs/424242/status', { status: 'success' })).status, 404);
  assert.equal((await admin('POST', '/faults', { endpoint: 'getJob', kind: 'explode' })).status, 400);
  assert.equal((await admin('POST', '/faults', { endpoint: 'nope', kind: 'hang' })).status, 400);
  assert.equal((await admin('POST', '/faults', { endpoint: 'getJob', kind: 'status', status: 200 })).status, 400);
  assert.equal((await admin('POST', '/webhooks', { url: 'not a url' })).status, 400);
  assert.equal((await admin('GET', '/nothing-here')).status, 404);
  const raw = await got.post(`${sim.url}/_sim/jobs`, { body: '{oops', headers: { 'content-type': 'application/json' }, throwHttpErrors: false });
  assert.equal(raw.statusCode, 400);
});

test('faults injected over HTTP reach the client, and the call record shows them', async () => {
  await admin('POST', '/runners', { id: 41, contacted: true });
  await admin('DELETE', '/calls');
  assert.equal((await admin('POST', '/faults', { endpoint: 'getRunner', kind: 'status', status: 503, times: 1 })).status, 201);
  await assert.rejects(client.getRunner(41), (err: E2epoolError) => err.code === 'gitlab_unavailable');
  assert.equal((await client.getRunner(41)).id, 41);

  await admin('POST', '/faults', { endpoint: 'updateRunner', kind: 'hang' });
  const quick = new GitlabClient({ baseUrl: sim.url, token: TOKEN, timeoutMs: 100 });
  assert.equal((await admin('GET', '/faults')).body.faults[0].remaining, null, 'stays until cleared');
  await assert.rejects(quick.setRunnerPaused(41, true), (err: E2epoolError) => err.code === 'gitlab_unavailable');
  await assert.rejects(quick.setRunnerPaused(41, true), (err: E2epoolError) => err.code === 'gitlab_unavailable');
  await admin('DELETE', '/faults');
  assert.equal((await client.setRunnerPaused(41, true)).paused, true);

  const calls = (await admin('GET', '/calls?endpoint=updateRunner')).body.calls as Array<{ status: number | null; fault?: string; body: unknown }>;
  assert.deepEqual(calls.map((c) => [c.status, c.fault ?? null, c.body]), [
    [null, 'hang', { paused: true }],
    [null, 'hang', { paused: true }],
    [200, null, { paused: true }],
  ]);
});

test('webhooks configured over HTTP deliver, and flush waits for them', async () => {
  const got1: Array<{ uuid: string; status: string }> = [];
  const receiver: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      got1.push({ uuid: String(req.headers['x-gitlab-event-uuid']), status: JSON.parse(raw).build_status });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    assert.equal((await admin('POST', '/webhooks', { url, token: 's', duplicates: 1 })).status, 201);
    assert.deepEqual((await admin('GET', '/webhooks')).body.webhooks[0].hasToken, true);
    const job = await admin('POST', '/jobs', { projectId: 11, status: 'success', runnerId: 21 });
    await admin('POST', '/webhooks/flush');
    assert.deepEqual(got1.map((g) => g.status), ['success', 'success']);
    assert.equal(got1[0]!.uuid, got1[1]!.uuid);
    assert.equal((await admin('POST', '/webhooks/resend', { uuid: got1[0]!.uuid })).status, 202);
    await admin('POST', '/webhooks/flush');
    assert.equal(got1.length, 3);
    const deliveries = (await admin('GET', '/webhooks/deliveries')).body.deliveries as Array<{ jobId: number }>;
    assert.ok(deliveries.every((d) => d.jobId === job.body.id));
  } finally {
    await admin('DELETE', '/webhooks');
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
});

test('stop() returns while a request hangs', async () => {
  const other = await startGitlabSimulator({ tokens: [TOKEN], seed: { runners: [{ id: 1 }] } });
  other.api.injectFault('any', { kind: 'hang' });
  const hanging = new GitlabClient({ baseUrl: other.url, token: TOKEN, timeoutMs: 5000 }).getRunner(1).catch((e: E2epoolError) => e.code);
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  await other.stop();
  assert.ok(Date.now() - started < 1000);
  assert.equal(await hanging, 'gitlab_unavailable');
});

test('the CLI parses its flags, serves with the given token and webhook, and stops on abort', async () => {
  const out = new PassThrough();
  let printed = '';
  out.on('data', (c: Buffer) => (printed += c.toString()));
  const abort = new AbortController();
  let started: GitlabSimulator | undefined;
  const done = runGitlabSimulatorCli(['--port', '0', '--token', 'cli-token', '--webhook-url', 'http://127.0.0.1:9/hook', '--webhook-secret', 'x'], {
    out,
    signal: abort.signal,
    onStarted: (s) => (started = s),
  });
  while (!started) await new Promise((r) => setTimeout(r, 5));
  assert.match(printed, new RegExp(`listening on ${started.url}`));
  assert.doesNotMatch(printed, /cli-token|secret x/);
  assert.deepEqual(started.api.listWebhooks().map((w) => [w.url, w.hasToken]), [['http://127.0.0.1:9/hook', true]]);
  started.api.addRunner({ id: 5 });
  const c = new GitlabClient({ baseUrl: started.url, token: 'cli-token', timeoutMs: 500 });
  assert.equal((await c.getRunner(5)).id, 5);
  abort.abort();
  await done;
  assert.match(printed, /stopped/);
  await assert.rejects(c.getRunner(5), (err: E2epoolError) => err.code === 'gitlab_unavailable');
});

test('the CLI flags parse with defaults, and bad flags are validation errors', () => {
  assert.deepEqual(parseGitlabSimulatorArgs([]), { port: 8929, host: '127.0.0.1', tokens: [], webhookUrls: [], webhookSecret: undefined });
  assert.deepEqual(parseGitlabSimulatorArgs(['--port', '0', '--token', 'a', '--token', 'b', '--webhook-url', 'http://x/h', '--webhook-secret', 's']), {
    port: 0,
    host: '127.0.0.1',
    tokens: ['a', 'b'],
    webhookUrls: ['http://x/h'],
    webhookSecret: 's',
  });
  for (const args of [['--port', 'abc'], ['--port', '70000'], ['--bogus'], ['extra'], ['--webhook-url', 'ftp://x'], ['--webhook-secret', 's'], ['--token', '']]) {
    assert.throws(() => parseGitlabSimulatorArgs(args), (err: unknown) => err instanceof E2epoolError && err.code === 'validation', args.join(' '));
  }
});

const cliScript = "const m = await import('./sim/gitlab/cli.ts'); await m.runGitlabSimulatorCli(process.argv.slice(1));";
const spawnCli = (...args: string[]) =>
  spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', cliScript, '--', ...args], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });

test('the CLI exits 2 with a message on a bad flag', async () => {
  const child = spawnCli('--port', 'nope');
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 2);
  assert.match(stderr, /Error: --port must be 0-65535/);
});

test('the CLI runs in the foreground of its own process and exits on SIGTERM', async () => {
  const child = spawnCli('--port', '0');
  try {
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${output}`)), 10_000);
      child.stdout.on('data', (c: Buffer) => {
        output += c.toString();
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    const res = await got(`${url}/_sim/state`, { throwHttpErrors: false });
    assert.equal(res.statusCode, 200);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(output, /default token glpat-e2epool-simulator/);
    assert.match(output, /stopped/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
