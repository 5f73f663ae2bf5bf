// Webhooks end to end: the GitLab simulator POSTs real Job Hooks to our router over HTTP, the inbox
// lives in PGlite, and the dispatcher signals real checkpoint workflows on a Temporal dev server.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createWebhookDispatcher, purgeProcessedWebhooks, requeueWebhook, webhookRetryDelayMs, type WebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { startGitlabSimulator, type GitlabSimulator } from '../../sim/gitlab/index.js';
import { findFreePort } from '../../temporal/free-port.js';
import { bundleWorkflowsOnce, startDevServerEnv } from '../helpers/temporal.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import {
  GITHUB_SECRET,
  GITLAB_SECRET,
  StandInWorld,
  checkpointRow,
  createCheckpoint,
  inboxRowsForJob,
  query,
  registerRunner,
  signalCount,
  startWebhookApp,
  startWorkers,
  type RunningWorkers,
  type WebhookApp,
} from '../helpers/webhooks-harness.js';
import { eventually } from '../helpers/eventually.js';
import { captureLogs } from '../helpers/log-capture.js';

let env: TestWorkflowEnvironment;
let database: TestDatabase;
let sim: GitlabSimulator;
let app: WebhookApp;
let workers: RunningWorkers;
const world = new StandInWorld();
const logs = captureLogs();
const { logger } = logs;
/** The dispatcher the router wakes; tests swap it to play Temporal going away and coming back. */
let active: WebhookDispatcher | null = null;
let nextGitlabRunnerId = 100;

function goodDispatcher(extra: Partial<Parameters<typeof createWebhookDispatcher>[0]> = {}) {
  return createWebhookDispatcher({ db: database.db, temporalClient: env.client, logger, pollIntervalMs: 100, backoff: { initialMs: 50, maxMs: 500 }, ...extra });
}

/** A client whose server is gone: nothing listens on its port. */
async function deadClient(): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = Connection.lazy({ address: `127.0.0.1:${await findFreePort()}`, connectTimeout: '300 ms' });
  return { client: new Client({ connection }), close: () => connection.close() };
}

async function swapDispatcher(next: WebhookDispatcher | null) {
  await active?.stop();
  active = next;
  active?.start();
}

/** A GitLab runner in the simulator and the registry, and a checkpoint for a new job on it. */
async function jobWithCheckpoint(opts: { checkpointOnOtherRunner?: boolean } = {}) {
  const gitlabRunnerId = ++nextGitlabRunnerId;
  sim.api.addRunner({ id: gitlabRunnerId, contacted: true });
  const runnerId = await registerRunner(database.db, opts.checkpointOnOtherRunner ? ++nextGitlabRunnerId : gitlabRunnerId);
  const job = sim.api.createJob({ projectId: 5, runnerId: gitlabRunnerId });
  sim.api.setJobStatus(job.id, 'running', { runnerId: gitlabRunnerId });
  const name = await createCheckpoint(env.client, workers.taskQueue, runnerId, String(job.id), '5');
  return { jobId: job.id, name, runnerId, gitlabRunnerId };
}

async function finishedInbox(jobId: number | string, count = 1) {
  return eventually(`inbox rows of job ${jobId} to be processed`, async () => {
    const rows = await inboxRowsForJob(database.db, String(jobId));
    return rows.length === count && rows.every((r) => r.processed_at !== null) ? rows : undefined;
  });
}

async function stateOf(name: string, states: string[]) {
  return eventually(`${name} to reach ${states.join('|')}`, async () => {
    const row = await checkpointRow(database.db, name);
    return states.includes(row.state) ? row : undefined;
  });
}

beforeAll(async () => {
  [env, database] = await Promise.all([startDevServerEnv(), createPgliteDatabase()]);
  const bundle = await bundleWorkflowsOnce();
  workers = await startWorkers(env.nativeConnection, bundle, world, database.db, logger);
  app = await startWebhookApp(database.db, logger, () => active?.notify());
  sim = await startGitlabSimulator({
    webhooks: [{ url: `${app.url}/webhooks/gitlab`, token: GITLAB_SECRET, retryDelayMs: 20 }],
    seed: { projects: [{ id: 5, path: 'grp/app' }] },
  });
  await swapDispatcher(goodDispatcher());
});

afterAll(async () => {
  await active?.stop();
  await sim?.stop();
  await app?.close();
  await workers?.stop();
  await env?.teardown();
  await database?.drop();
});

describe('webhook → inbox → finalize signal', { timeout: 120_000 }, () => {
  it('a terminal Job Hook finalizes the real workflow with source webhook; non-terminal hooks store nothing', async () => {
    const { jobId, name } = await jobWithCheckpoint();
    await sim.api.flushWebhooks();
    // created/pending and running were delivered and ignored.
    assert.deepEqual(await inboxRowsForJob(database.db, String(jobId)), []);
    assert.equal((await checkpointRow(database.db, name)).state, 'created');

    sim.api.setJobStatus(jobId, 'success');
    await sim.api.flushWebhooks();
    const [row] = await finishedInbox(jobId);
    assert.equal(row!.outcome, 'signaled');
    assert.equal(row!.attempts, 1);
    const cp = await stateOf(name, ['deleted']);
    assert.equal(cp.finalize_status, 'success');
    assert.equal(cp.finalize_source, 'webhook');
    const transitions = await query(database.db, sql`select to_state, event, detail from checkpoint_transitions where checkpoint_name = ${name} order by seq`);
    assert.deepEqual(transitions.map((t) => t.to_state), ['creating', 'created', 'finalize_queued', 'cleaning', 'deleted']);
    assert.match(transitions[2]!.detail, /source=webhook/);
    assert.deepEqual(world.commands.filter((c) => c.commandId.startsWith(name)).map((c) => c.name), ['cleanup']);

    const hooks = sim.api.deliveries().filter((d) => d.jobId === jobId);
    assert.deepEqual(hooks.map((d) => d.buildStatus), ['pending', 'running', 'success']);
    assert.ok(hooks.every((d) => d.status === 200 && d.attempt === 1), JSON.stringify(hooks));
  });

  it('a failed job reaches finalize_queued with status failure and source webhook, then the reset path', async () => {
    const { jobId, name } = await jobWithCheckpoint();
    sim.api.setJobStatus(jobId, 'failed', { failureReason: 'script_failure' });
    await sim.api.flushWebhooks();
    assert.equal((await finishedInbox(jobId))[0]!.outcome, 'signaled');
    const cp = await stateOf(name, ['finalize_queued', 'pausing', 'confirming_idle', 'resetting', 'awaiting_readiness', 'releasing_claim', 'unpausing', 'reset']);
    assert.equal(cp.finalize_status, 'failure');
    assert.equal(cp.finalize_source, 'webhook');
    await stateOf(name, ['reset']);
  });

  it('a duplicate delivery (same UUID) is acted on once: one inbox row, one signal, one finalize transition', async () => {
    sim.api.updateWebhooks({ duplicates: 2 });
    try {
      const { jobId, name } = await jobWithCheckpoint();
      sim.api.setJobStatus(jobId, 'success');
      await sim.api.flushWebhooks();
      const copies = sim.api.deliveries().filter((d) => d.jobId === jobId && d.buildStatus === 'success');
      assert.equal(copies.length, 3);
      assert.equal(new Set(copies.map((d) => d.uuid)).size, 1);
      assert.ok(copies.every((d) => d.status === 200));
      // GitLab's manual "Resend request" carries the same UUID too.
      sim.api.resendWebhook(copies[0]!.uuid);
      await sim.api.flushWebhooks();

      const rows = await finishedInbox(jobId);
      assert.equal(rows[0]!.event_id, copies[0]!.uuid);
      await stateOf(name, ['deleted']);
      assert.equal(await signalCount(env.client, name), 1);
      const finalizes = await query(database.db, sql`select event from checkpoint_transitions where checkpoint_name = ${name} and event like 'finalize_requested%'`);
      assert.deepEqual(finalizes.map((f) => f.event), ['finalize_requested']);
    } finally {
      sim.api.updateWebhooks({ duplicates: 0 });
    }
  });

  it('a hook naming another GitLab runner than the checkpoint\'s is logged and ignored', async () => {
    const { jobId, name, gitlabRunnerId } = await jobWithCheckpoint({ checkpointOnOtherRunner: true });
    sim.api.setJobStatus(jobId, 'success');
    await sim.api.flushWebhooks();
    const [row] = await finishedInbox(jobId);
    assert.equal(row!.outcome, 'runner_mismatch');
    assert.equal(await signalCount(env.client, name), 0);
    assert.equal((await checkpointRow(database.db, name)).state, 'created');
    assert.match(logs.text(), new RegExp(`names GitLab runner ${gitlabRunnerId}, but checkpoint ${name}`));
    await env.client.workflow.getHandle(name).signal('finalize', { status: 'success', source: 'hook' });
    await stateOf(name, ['deleted']);
  });

  it('a hook for a job without an active checkpoint is done as no_active_checkpoint; a closed workflow counts as already finalized', async () => {
    sim.api.addRunner({ id: 90, contacted: true });
    const stray = sim.api.createJob({ projectId: 5, runnerId: 90 });
    sim.api.setJobStatus(stray.id, 'canceled');
    await sim.api.flushWebhooks();
    assert.equal((await finishedInbox(stray.id))[0]!.outcome, 'no_active_checkpoint');

    // A workflow terminated behind our back: its row still holds the claim, the signal finds it closed.
    const { jobId, name } = await jobWithCheckpoint();
    await env.client.workflow.getHandle(name).terminate('test: workflow gone');
    sim.api.setJobStatus(jobId, 'success');
    await sim.api.flushWebhooks();
    const [row] = await finishedInbox(jobId);
    assert.equal(row!.outcome, 'already_finalized');
  });

  it('GitHub and GitLab job ids are separate namespaces', async () => {
    const sign = (raw: string) => `sha256=${createHmac('sha256', GITHUB_SECRET).update(raw).digest('hex')}`;
    const post = async (jobId: string, delivery: string) => {
      const raw = JSON.stringify({ action: 'completed', workflow_job: { id: Number(jobId), conclusion: 'timed_out', runner_id: 12 }, repository: { full_name: 'acme/app' } });
      const res = await fetch(`${app.url}/webhooks/github`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-github-event': 'workflow_job', 'x-github-delivery': delivery, 'x-hub-signature-256': sign(raw) },
        body: raw,
      });
      assert.equal(res.status, 200);
    };
    // A GitLab checkpoint whose job id a GitHub job happens to share: not finalized by GitHub.
    const gitlab = await jobWithCheckpoint();
    await post(String(gitlab.jobId), 'gh-collide');
    assert.equal((await finishedInbox(gitlab.jobId))[0]!.outcome, 'no_active_checkpoint');
    assert.equal((await checkpointRow(database.db, gitlab.name)).state, 'created');

    // A runner not registered with GitLab is where GitHub jobs run.
    const runnerId = await registerRunner(database.db, null);
    const name = await createCheckpoint(env.client, workers.taskQueue, runnerId, '880001');
    await post('880001', 'gh-ok');
    assert.equal((await finishedInbox('880001'))[0]!.outcome, 'signaled');
    const cp = await stateOf(name, ['finalize_queued', 'pausing', 'confirming_idle', 'resetting', 'awaiting_readiness', 'releasing_claim', 'unpausing', 'reset']);
    assert.equal(cp.finalize_status, 'failure');
    assert.equal(cp.finalize_source, 'webhook');

    sim.api.setJobStatus(gitlab.jobId, 'success');
    await sim.api.flushWebhooks();
    await stateOf(gitlab.name, ['deleted']);
  });

  it('with Temporal unreachable the hook is still answered 200 fast, the row stays pending, and it is delivered once Temporal is back', async () => {
    const dead = await deadClient();
    try {
      await swapDispatcher(createWebhookDispatcher({ db: database.db, temporalClient: dead.client, logger, pollIntervalMs: 50, backoff: { initialMs: 50, maxMs: 200 }, signalTimeoutMs: 500 }));
      const { jobId, name } = await jobWithCheckpoint();

      // Measured directly: a hook answered while every signal fails.
      const started = performance.now();
      const res = await fetch(`${app.url}/webhooks/gitlab`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-gitlab-token': GITLAB_SECRET, 'x-gitlab-event-uuid': `direct-${jobId}`, 'x-gitlab-event': 'Job Hook' },
        body: JSON.stringify({ object_kind: 'build', build_id: 999_000 + jobId, build_status: 'success' }),
      });
      const answerMs = performance.now() - started;
      assert.equal(res.status, 200);
      assert.ok(answerMs < 1000, `answered in ${answerMs.toFixed(0)} ms`);

      sim.api.setJobStatus(jobId, 'success');
      await sim.api.flushWebhooks();
      assert.ok(sim.api.deliveries().filter((d) => d.jobId === jobId).every((d) => d.status === 200 && d.attempt === 1));
      const pending = await eventually('two failed attempts', async () => {
        const [row] = await inboxRowsForJob(database.db, String(jobId));
        return row && row.attempts >= 2 ? row : undefined;
      });
      assert.equal(pending.processed_at, null);
      assert.equal(pending.outcome, null);
      assert.match(pending.last_error, /\S/);
      assert.ok(!pending.last_error.includes(GITLAB_SECRET));
      assert.equal((await checkpointRow(database.db, name)).state, 'created');

      await swapDispatcher(goodDispatcher());
      const [row] = await finishedInbox(jobId);
      assert.equal(row!.outcome, 'signaled');
      assert.equal(row!.last_error, null);
      const cp = await stateOf(name, ['deleted']);
      assert.equal(cp.finalize_source, 'webhook');
      assert.equal(await signalCount(env.client, name), 1);
    } finally {
      await swapDispatcher(goodDispatcher());
      await dead.close();
    }
  });

  it('after maxAttempts a row is given up but kept; requeueing it delivers it; purge deletes only old processed rows', async () => {
    const dead = await deadClient();
    try {
      await swapDispatcher(null);
      const giving = createWebhookDispatcher({ db: database.db, temporalClient: dead.client, logger, pollIntervalMs: 50, maxAttempts: 1, signalTimeoutMs: 300 });
      const { jobId, name } = await jobWithCheckpoint();
      sim.api.setJobStatus(jobId, 'success');
      await sim.api.flushWebhooks();
      const results = await giving.dispatchOnce();
      assert.deepEqual(results.map((r) => [r.jobId, r.outcome]), [[String(jobId), 'gave_up']]);
      const [row] = await inboxRowsForJob(database.db, String(jobId));
      assert.equal(row!.outcome, 'gave_up');
      assert.equal(row!.processed_at, null);
      assert.match(logs.text(), /given up/);
      assert.deepEqual(await giving.dispatchOnce(), [], 'a given-up row is not retried');

      assert.equal(await requeueWebhook(database.db, row!.event_id), true);
      const good = goodDispatcher();
      assert.deepEqual((await good.dispatchOnce()).map((r) => r.outcome), ['signaled']);
      await stateOf(name, ['deleted']);

      await database.db.execute(sql`update webhook_inbox set processed_at = now() - interval '40 days' where job_id = ${String(jobId)}`);
      const before = await query(database.db, sql`select count(*)::int as n from webhook_inbox where processed_at is not null`);
      assert.equal(await purgeProcessedWebhooks(database.db, 30), 1);
      const afterPurge = await query(database.db, sql`select count(*)::int as n from webhook_inbox where processed_at is not null`);
      assert.equal(afterPurge[0]!.n, before[0]!.n - 1);
      assert.deepEqual(await inboxRowsForJob(database.db, String(jobId)), []);
    } finally {
      await swapDispatcher(goodDispatcher());
      await dead.close();
    }
  });

  it('retry waits double from the first and stop at the cap', () => {
    const b = { initialMs: 1000, maxMs: 300_000 };
    assert.deepEqual([1, 2, 3, 4, 9, 10, 50].map((n) => webhookRetryDelayMs(n, b)), [1000, 2000, 4000, 8000, 256_000, 300_000, 300_000]);
  });
});
