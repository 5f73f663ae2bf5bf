// The GitLab simulator's job lifecycle and its "Job Hook" deliveries to a real HTTP receiver.
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseGitlabJobEvent, verifyGitlabToken } from '../../src/integrations/gitlab/webhooks.js';
import { startGitlabSimulator, type GitlabSimulator, type SimWebhookConfig } from '../../sim/gitlab/index.js';

interface Received {
  headers: IncomingHttpHeaders;
  raw: Buffer;
  body: any;
  at: number;
}

/** A tiny webhook receiver; `answers` are the statuses to reply with, in order, then 200. */
class Receiver {
  readonly received: Received[] = [];
  answers: number[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        this.received.push({ headers: req.headers, raw, body: JSON.parse(raw.toString('utf8')), at: Date.now() });
        const status = this.answers.shift() ?? 200;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: status < 300 }));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/webhooks/gitlab`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const SECRET = 'webhook-secret-value';
let receiver: Receiver;
const sims: GitlabSimulator[] = [];

beforeAll(async () => {
  receiver = new Receiver();
  await receiver.start();
});

afterAll(async () => {
  for (const sim of sims) await sim.stop();
  await receiver.stop();
});

/** One simulator per test: its webhook options and counters stay the test's own. */
async function simWithHook(hook: Partial<SimWebhookConfig> = {}): Promise<GitlabSimulator> {
  receiver.received.length = 0;
  receiver.answers = [];
  const sim = await startGitlabSimulator({
    webhooks: [{ url: receiver.url, token: SECRET, retryDelayMs: 5, ...hook }],
    seed: { projects: [{ id: 42, path: 'acme/e2e' }], runners: [{ id: 7, description: 'vm-7', contacted: true }] },
  });
  sims.push(sim);
  return sim;
}

test('every job status change is POSTed as a Job Hook with token, a fresh UUID and the payload fields', async () => {
  const sim = await simWithHook();
  const job = sim.api.createJob({ projectId: 42 });
  sim.api.assignNextJob(7);
  sim.api.setJobStatus(job.id, 'success');
  await sim.api.flushWebhooks();

  assert.deepEqual(receiver.received.map((r) => r.body.build_status), ['pending', 'running', 'success']);
  const uuids = receiver.received.map((r) => r.headers['x-gitlab-event-uuid']);
  assert.equal(new Set(uuids).size, 3, 'one UUID per event');
  for (const r of receiver.received) {
    assert.equal(r.headers['x-gitlab-event'], 'Job Hook');
    assert.equal(r.headers['x-gitlab-token'], SECRET);
    assert.match(String(r.headers['x-gitlab-event-uuid']), /^[0-9a-f-]{36}$/);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(verifyGitlabToken(SECRET, r.headers['x-gitlab-token'] as string), { ok: true });
    assert.equal(r.body.object_kind, 'build');
    assert.equal(r.body.build_id, job.id);
    assert.equal(r.body.project_id, 42);
    assert.equal(r.body.project.path_with_namespace, 'acme/e2e');
    assert.equal(r.body.commit.id, r.body.pipeline_id, 'commit.id carries the pipeline id, as GitLab does');
  }
  const [pending, running, success] = receiver.received.map((r) => r.body);
  assert.equal(pending.runner, null, 'no runner before assignment');
  assert.equal(pending.build_started_at, null);
  assert.deepEqual(running.runner, { active: true, runner_type: 'project_type', is_shared: false, id: 7, description: 'vm-7', tags: [] });
  assert.match(running.build_started_at, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  assert.equal(running.build_finished_at, null);
  assert.match(success.build_finished_at, /UTC$/);
  assert.ok(success.build_finished_at_iso.endsWith('Z'));
  assert.equal(typeof success.build_duration, 'number');

  // What the controller's webhook route would make of them.
  const parsed = receiver.received.map((r) => parseGitlabJobEvent(r.headers as Record<string, string>, r.raw));
  assert.deepEqual(parsed.map((p) => p.kind), ['ignore', 'ignore', 'finalize']);
  assert.deepEqual(parsed[2], {
    kind: 'finalize',
    eventId: uuids[2],
    jobId: String(job.id),
    projectId: '42',
    status: 'success',
    runnerId: 7,
    providerStatus: 'success',
  });
});

test('failed and canceled jobs carry their outcome and failure reason', async () => {
  const sim = await simWithHook();
  const failed = sim.api.createJob({ projectId: 42, runnerId: 7, status: 'running' });
  sim.api.setJobStatus(failed.id, 'failed', { failureReason: 'runner_system_failure' });
  const canceled = sim.api.createJob({ projectId: 42, runnerId: 7, status: 'running' });
  sim.api.setJobStatus(canceled.id, 'canceled');
  await sim.api.flushWebhooks();
  const terminal = receiver.received.filter((r) => ['failed', 'canceled'].includes(r.body.build_status));
  assert.deepEqual(terminal.map((r) => [r.body.build_id, r.body.build_status, r.body.build_failure_reason]), [
    [failed.id, 'failed', 'runner_system_failure'],
    [canceled.id, 'canceled', null],
  ]);
  const outcomes = terminal.map((r) => parseGitlabJobEvent(r.headers as Record<string, string>, r.raw));
  assert.deepEqual(outcomes.map((o) => (o.kind === 'finalize' ? o.status : o.reason)), ['failure', 'canceled']);
});

test('duplicates deliver the same event again with the same UUID', async () => {
  const sim = await simWithHook({ duplicates: 1 });
  const job = sim.api.createJob({ projectId: 42, runnerId: 7, status: 'running' });
  sim.api.setJobStatus(job.id, 'success');
  await sim.api.flushWebhooks();
  assert.deepEqual(receiver.received.map((r) => r.body.build_status), ['running', 'running', 'success', 'success']);
  const [a, b, c, d] = receiver.received.map((r) => r.headers['x-gitlab-event-uuid']);
  assert.equal(a, b);
  assert.equal(c, d);
  assert.notEqual(a, c);
  assert.deepEqual(receiver.received[2]!.raw, receiver.received[3]!.raw, 'byte-identical body');
  assert.deepEqual(sim.api.deliveries().map((d) => d.copy), [0, 1, 0, 1]);
});

test('a manual resend repeats an earlier event with its original UUID', async () => {
  const sim = await simWithHook();
  const job = sim.api.createJob({ projectId: 42, runnerId: 7, status: 'success' });
  await sim.api.flushWebhooks();
  const uuid = String(receiver.received[0]!.headers['x-gitlab-event-uuid']);
  assert.equal(sim.api.resendWebhook(uuid), true);
  assert.equal(sim.api.resendWebhook('no-such-uuid'), false);
  await sim.api.flushWebhooks();
  assert.equal(receiver.received.length, 2);
  assert.equal(receiver.received[1]!.headers['x-gitlab-event-uuid'], uuid);
  assert.equal(receiver.received[1]!.body.build_id, job.id);
});

test('a delay holds each delivery back', async () => {
  const sim = await simWithHook({ delayMs: 150 });
  const started = Date.now();
  sim.api.createJob({ projectId: 42, status: 'pending' });
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(receiver.received.length, 0, 'not delivered before the delay');
  await sim.api.flushWebhooks();
  assert.equal(receiver.received.length, 1);
  assert.ok(receiver.received[0]!.at - started >= 140, `delivered after ${receiver.received[0]!.at - started} ms`);
});

test('5xx answers are retried with the same UUID until accepted; 4xx is final', async () => {
  const sim = await simWithHook({ maxAttempts: 4 });
  receiver.answers = [500, 502];
  const job = sim.api.createJob({ projectId: 42, runnerId: 7, status: 'success' });
  await sim.api.flushWebhooks();
  assert.equal(receiver.received.length, 3);
  assert.equal(new Set(receiver.received.map((r) => r.headers['x-gitlab-event-uuid'])).size, 1);
  assert.deepEqual(sim.api.deliveries().map((d) => [d.jobId, d.attempt, d.status]), [[job.id, 1, 500], [job.id, 2, 502], [job.id, 3, 200]]);

  receiver.answers = [400];
  sim.api.setJobStatus(job.id, 'failed');
  await sim.api.flushWebhooks();
  assert.equal(receiver.received.length, 4, 'a 4xx is not retried');
  assert.equal(sim.api.deliveries().at(-1)?.status, 400);
});

test('delivery gives up after maxAttempts, and an unreachable receiver is recorded as an error', async () => {
  const sim = await simWithHook({ maxAttempts: 3 });
  receiver.answers = [503, 503, 503, 503];
  sim.api.createJob({ projectId: 42, status: 'pending' });
  await sim.api.flushWebhooks();
  assert.equal(receiver.received.length, 3);
  assert.deepEqual(sim.api.deliveries().map((d) => d.status), [503, 503, 503]);

  sim.api.removeWebhooks();
  sim.api.addWebhook({ url: 'http://127.0.0.1:9/hook', maxAttempts: 2, retryDelayMs: 1 });
  sim.api.createJob({ projectId: 42, status: 'pending' });
  await sim.api.flushWebhooks();
  const failed = sim.api.deliveries().filter((d) => d.hookUrl === 'http://127.0.0.1:9/hook');
  assert.equal(failed.length, 2);
  assert.ok(failed.every((d) => d.status === undefined && typeof d.error === 'string'));
});

test('a hook without a token sends no X-Gitlab-Token, and options can change at run time', async () => {
  const sim = await simWithHook({ token: undefined });
  sim.api.createJob({ projectId: 42, status: 'pending' });
  await sim.api.flushWebhooks();
  assert.equal(receiver.received[0]!.headers['x-gitlab-token'], undefined);
  assert.equal(sim.api.updateWebhooks({ duplicates: 2 }), 1);
  sim.api.createJob({ projectId: 42, status: 'pending' });
  await sim.api.flushWebhooks();
  assert.equal(receiver.received.length, 4);
});

test('assignNextJob plays gitlab-runner: nothing while paused, oldest eligible pending job otherwise', async () => {
  const sim = await simWithHook();
  sim.api.addRunner({ id: 8, tags: ['docker'] });
  const reservedFor8 = sim.api.createJob({ projectId: 42, runnerId: 8 });
  const tagged = sim.api.createJob({ projectId: 42, tags: ['docker'] });
  const first = sim.api.createJob({ projectId: 42 });
  const second = sim.api.createJob({ projectId: 42 });

  sim.api.setRunnerPaused(7, true);
  assert.equal(sim.api.assignNextJob(7), null, 'a paused runner picks up nothing');
  assert.equal(sim.api.getJob(first.id).status, 'pending');
  sim.api.setRunnerPaused(7, false);

  const picked = sim.api.assignNextJob(7);
  assert.equal(picked?.id, first.id, 'skips the job reserved for runner 8 and the tagged one');
  assert.equal(picked?.status, 'running');
  assert.equal(picked?.runnerId, 7);
  assert.ok(picked?.startedAt);
  assert.equal(sim.api.assignNextJob(7)?.id, second.id);
  assert.equal(sim.api.assignNextJob(7), null, 'nothing left for runner 7');
  assert.equal(sim.api.assignNextJob(8)?.id, reservedFor8.id);
  assert.equal(sim.api.assignNextJob(8)?.id, tagged.id);
  assert.throws(() => sim.api.assignNextJob(99), /runner 99 does not exist/);
});

test('a runner poll refreshes contacted_at, which makes it online', async () => {
  let now = new Date('2030-06-01T12:00:00Z');
  const sim = await startGitlabSimulator({ now: () => now, onlineWindowMs: 1000, seed: { projects: [{ id: 1 }], runners: [{ id: 3 }] } });
  sims.push(sim);
  assert.equal(sim.api.state.runnerStatus(sim.api.getRunner(3)), 'never_contacted');
  sim.api.assignNextJob(3);
  assert.equal(sim.api.getRunner(3).contactedAt?.toISOString(), '2030-06-01T12:00:00.000Z');
  assert.equal(sim.api.state.isRunnerOnline(sim.api.getRunner(3)), true);
  now = new Date('2030-06-01T12:00:02Z');
  assert.equal(sim.api.state.runnerStatus(sim.api.getRunner(3)), 'offline');
  now = new Date('2030-12-01T12:00:02Z');
  assert.equal(sim.api.state.runnerStatus(sim.api.getRunner(3)), 'stale');
});
