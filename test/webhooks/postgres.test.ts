// Two controller instances on one PostgreSQL: each with its own connection pool and dispatcher,
// draining one inbox at the same time. Every event must be signaled exactly once.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { sql } from 'drizzle-orm';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createWebhookDispatcher, purgeProcessedWebhooks, type DispatchResult } from '../../src/webhooks/dispatcher.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { bundleWorkflowsOnce, startDevServerEnv } from '../helpers/temporal.js';
import { createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import {
  GITLAB_SECRET,
  StandInWorld,
  checkpointRow,
  createCheckpoint,
  createLogger,
  query,
  registerRunner,
  signalCount,
  startWebhookApp,
  startWorkers,
  type RunningWorkers,
  type WebhookApp,
} from '../helpers/webhooks-harness.js';
import { eventually } from '../helpers/eventually.js';

let env: TestWorkflowEnvironment;
let database: TestDatabase;
let second: Database;
let app: WebhookApp;
let workers: RunningWorkers;
const logger = createLogger({ level: 'silent' });

beforeAll(async () => {
  [env, database] = await Promise.all([startDevServerEnv(), createPostgresDatabase('e2epool_webhooks')]);
  second = await openDatabase(database.url, { poolSize: 3 });
  workers = await startWorkers(env.nativeConnection, await bundleWorkflowsOnce(), new StandInWorld(), database.db, logger);
  app = await startWebhookApp(database.db, logger, () => undefined);
});

afterAll(async () => {
  await app?.close();
  await workers?.stop();
  await env?.teardown();
  await second?.close();
  await database?.drop();
});

describe('webhook dispatch on PostgreSQL', { timeout: 120_000 }, () => {
  it('two dispatchers on two pools share the inbox: each event is claimed and signaled exactly once', async () => {
    const jobs = Array.from({ length: 8 }, (_, i) => String(7_100 + i));
    const names: string[] = [];
    for (const [i, jobId] of jobs.entries()) {
      const runnerId = await registerRunner(database.db, 500 + i);
      names.push(await createCheckpoint(env.client, workers.taskQueue, runnerId, jobId));
    }
    // Each event delivered twice by "GitLab"; the second copy is a no-op.
    for (const [i, jobId] of jobs.entries()) {
      for (let copy = 0; copy < 2; copy++) {
        const res = await fetch(`${app.url}/webhooks/gitlab`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-gitlab-token': GITLAB_SECRET, 'x-gitlab-event-uuid': `pg-event-${jobId}` },
          body: JSON.stringify({ object_kind: 'build', build_id: Number(jobId), build_status: 'success', runner: { id: 500 + i } }),
        });
        assert.equal(res.status, 200);
      }
    }
    assert.equal((await query(database.db, sql`select count(*)::int as n from webhook_inbox`))[0]!.n, jobs.length);

    const a = createWebhookDispatcher({ db: database.db, temporalClient: env.client, logger, pollIntervalMs: 50, batchSize: 3 });
    const b = createWebhookDispatcher({ db: second.db, temporalClient: env.client, logger, pollIntervalMs: 50, batchSize: 3 });
    const seen: Array<DispatchResult & { by: string }> = [];
    for (let round = 0; round < 10; round++) {
      const [ra, rb] = await Promise.all([a.dispatchOnce(), b.dispatchOnce()]);
      seen.push(...ra.map((r) => ({ ...r, by: 'a' })), ...rb.map((r) => ({ ...r, by: 'b' })));
      if (ra.length === 0 && rb.length === 0) break;
    }
    assert.deepEqual(seen.map((r) => r.jobId).sort(), [...jobs].sort(), 'every event handled once, by one instance');
    assert.ok(seen.every((r) => r.outcome === 'signaled'));
    assert.ok(seen.some((r) => r.by === 'a') && seen.some((r) => r.by === 'b'), 'both instances took part');

    for (const name of names) {
      const row = await eventually(`${name} finalized`, async () => {
        const cp = await checkpointRow(database.db, name);
        return cp.state === 'deleted' ? cp : undefined;
      }, 30_000);
      assert.equal(row.finalize_source, 'webhook');
      assert.equal(await signalCount(env.client, name), 1);
    }
  });

  it('the started loop picks up rows on its own, and purge keeps recent and unprocessed rows', async () => {
    const runnerId = await registerRunner(database.db, 600);
    const name = await createCheckpoint(env.client, workers.taskQueue, runnerId, '7200');
    const loop = createWebhookDispatcher({ db: second.db, temporalClient: env.client, logger, pollIntervalMs: 50 });
    loop.start();
    try {
      const res = await fetch(`${app.url}/webhooks/gitlab`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-gitlab-token': GITLAB_SECRET, 'x-gitlab-event-uuid': 'pg-loop' },
        body: JSON.stringify({ object_kind: 'build', build_id: 7200, build_status: 'canceled' }),
      });
      assert.equal(res.status, 200);
      await eventually('the loop to signal', async () => (await checkpointRow(database.db, name)).finalize_source === 'webhook');
    } finally {
      await loop.stop();
    }
    await database.db.execute(sql`insert into webhook_inbox (event_id, provider, job_id, status, payload) values ('pg-unprocessed', 'gitlab', '1', 'success', '{}'::jsonb)`);
    await database.db.execute(sql`update webhook_inbox set processed_at = now() - interval '10 days' where event_id like 'pg-event-%'`);
    assert.equal(await purgeProcessedWebhooks(database.db, 7), 8);
    const left = await query(database.db, sql`select event_id from webhook_inbox order by event_id`);
    assert.deepEqual(left.map((r) => r.event_id), ['pg-loop', 'pg-unprocessed']);
  });
});
