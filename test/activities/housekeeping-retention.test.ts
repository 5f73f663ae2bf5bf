// Retention on a real Temporal dev server (Schedules need it; the time-skipping server has no
// schedule API), a real worker with the housekeeping activities and PGlite, and real HTTP: the admin
// cleanup route (auth and body checks, dry run counts, then a real run that deletes exactly the old
// end-state rows), schedule creation twice (one of each, updated), a schedule-triggered run; and the
// batched purge on PostgreSQL.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { createHousekeepingActivities, type PurgeReport } from '../../activities/housekeeping.js';
import { createHousekeepingRouter } from '../../src/api/routes/housekeeping.js';
import { ensureHousekeepingSchedules, ORPHAN_AUDIT_SCHEDULE_ID, RETENTION_SCHEDULE_ID } from '../../temporal/schedules.js';
import type { Db } from '../../src/store/database.js';
import { createPgliteDatabase, createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { bundleWorkflowsOnce, startDevServerEnv } from '../helpers/temporal.js';
import { newRegistry } from '../helpers/activities-harness.js';
import { eventually } from '../helpers/eventually.js';
import { insertCheckpoint, serve, type TestServer } from '../helpers/observability-fixtures.js';
import { captureLogs } from '../helpers/log-capture.js';

const ADMIN = 'housekeeping-admin-token';
const RETENTION_DAYS = 90;
const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000);

/** Rows on both sides of the window; returns the names that must survive. */
async function seed(db: Db): Promise<{ kept: string[]; purged: string[] }> {
  const old = daysAgo(100);
  const purged: string[] = [];
  // Every end state, ended 100 days ago: purged with their two transitions each.
  for (const [i, state] of ['deleted', 'reset', 'gc_reset', 'create_failed', 'released'].entries()) {
    purged.push(await insertCheckpoint(db, { runnerId: `old-${i}`, state, createdAt: daysAgo(101), endedAt: old }));
  }
  // An end state without ended_at: created_at decides.
  const noEnd = await insertCheckpoint(db, { runnerId: 'old-noend', state: 'create_failed', createdAt: old });
  await db.execute(sql`update checkpoints set ended_at = null where name = ${noEnd}`);
  purged.push(noEnd);

  const kept = [
    // Created long ago but ended recently.
    await insertCheckpoint(db, { runnerId: 'recent', state: 'deleted', createdAt: old, endedAt: daysAgo(10) }),
    // Old but still active: holds the claim.
    await insertCheckpoint(db, { runnerId: 'attention', state: 'needs_attention', createdAt: old, holdsClaim: true }),
    // Old and past the claim but not ended.
    await insertCheckpoint(db, { runnerId: 'unpausing', state: 'unpausing', createdAt: old }),
    // An end state still holding the claim (never written by the workflow): never touched.
    await insertCheckpoint(db, { runnerId: 'odd', state: 'released', createdAt: old, endedAt: old, holdsClaim: true }),
  ];

  await db.execute(sql`insert into alerts (key, severity, message, opened_at, resolved_at) values
    ('old-1', 'warning', 'm', ${daysAgo(120).toISOString()}::timestamptz, ${old.toISOString()}::timestamptz),
    ('old-2', 'warning', 'm', ${daysAgo(120).toISOString()}::timestamptz, ${old.toISOString()}::timestamptz),
    ('recent', 'warning', 'm', ${daysAgo(120).toISOString()}::timestamptz, ${daysAgo(5).toISOString()}::timestamptz),
    ('open-old', 'warning', 'm', ${old.toISOString()}::timestamptz, null)`);
  await db.execute(sql`insert into webhook_inbox (event_id, provider, payload, received_at, processed_at) values
    ('done-old', 'gitlab', '{}'::jsonb, ${old.toISOString()}::timestamptz, ${old.toISOString()}::timestamptz),
    ('done-recent', 'gitlab', '{}'::jsonb, ${daysAgo(1).toISOString()}::timestamptz, ${daysAgo(1).toISOString()}::timestamptz),
    ('gave-up-old', 'gitlab', '{}'::jsonb, ${old.toISOString()}::timestamptz, null)`);
  await db.execute(sql`insert into audit_log (actor, action, at) values
    ('admin', 'release', ${old.toISOString()}::timestamptz), ('admin', 'release', ${old.toISOString()}::timestamptz),
    ('admin', 'maintenance', ${daysAgo(95).toISOString()}::timestamptz), ('admin', 'release', ${daysAgo(2).toISOString()}::timestamptz)`);
  return { kept, purged };
}

const expectedCounts = { checkpoints: 6, checkpointTransitions: 12, alerts: 2, webhookInbox: 1, auditLog: 3 };

async function column(db: Db, query: ReturnType<typeof sql>): Promise<string[]> {
  const result: any = await db.execute(query);
  return (result.rows ?? []).map((r: any) => String(Object.values(r)[0])).sort();
}

async function assertOnlyKeptRemain(db: Db, seeded: { kept: string[]; purged: string[] }): Promise<void> {
  assert.deepEqual(await column(db, sql`select name from checkpoints`), [...seeded.kept].sort());
  // Each kept checkpoint keeps both of its transitions.
  assert.deepEqual(await column(db, sql`select checkpoint_name from checkpoint_transitions`), [...seeded.kept, ...seeded.kept].sort());
  assert.deepEqual(await column(db, sql`select key from alerts`), ['open-old', 'recent']);
  assert.deepEqual(await column(db, sql`select event_id from webhook_inbox`), ['done-recent', 'gave-up-old']);
  assert.deepEqual(await column(db, sql`select action from audit_log`), ['release']);
}

describe('retention through Temporal and the admin API (PGlite)', { timeout: 120_000 }, () => {
  let env: TestWorkflowEnvironment;
  let database: TestDatabase;
  let worker: Worker;
  let running: Promise<void>;
  let server: TestServer;
  let seeded: { kept: string[]; purged: string[] };
  const taskQueue = `housekeeping-${randomBytes(4).toString('hex')}`;
  const { logger } = captureLogs();

  beforeAll(async () => {
    [env, database] = await Promise.all([startDevServerEnv(), createPgliteDatabase()]);
    seeded = await seed(database.db);
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await bundleWorkflowsOnce(),
      // A small batch so the real run deletes in several statements.
      activities: createHousekeepingActivities({ db: database.db, registry: newRegistry(database.db), logger, httpTimeoutMs: 2000, batchSize: 4 }),
    });
    running = worker.run();
    server = await serve(createHousekeepingRouter({ client: env.client, taskQueue, retentionDays: RETENTION_DAYS, adminToken: ADMIN, runTimeoutMs: 60_000 }));
  });

  afterAll(async () => {
    await server?.close();
    if (worker) {
      worker.shutdown();
      await running;
    }
    await env?.teardown();
    await database?.drop();
  });

  const post = async (body: string | undefined, token: string | null = ADMIN) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${server.base}/api/admin/cleanup`, { method: 'POST', headers, ...(body !== undefined ? { body } : {}) });
    return { status: res.status, body: (await res.json()) as any };
  };

  it('rejects a wrong token (403, before the body) and a bad body (422)', async () => {
    assert.equal((await post('{"dryRun": true}', 'wrong')).status, 403);
    assert.equal((await post('not json', 'wrong')).status, 403);
    assert.equal((await post('{"dryRun": true}', null)).status, 401);
    for (const body of [undefined, '{}', '{"dryRun": "yes"}', '{"dryRun": 1}', 'not json', '[]']) {
      const res = await post(body);
      assert.equal(res.status, 422, `body ${body}`);
      assert.ok(Array.isArray(res.body.detail));
    }
    assert.equal((await fetch(`${server.base}/api/admin/orphan-snapshots`, { headers: { authorization: 'Bearer nope' } })).status, 403);
    // Nothing ran: every row is still there.
    assert.equal((await column(database.db, sql`select name from checkpoints`)).length, seeded.kept.length + seeded.purged.length);
  });

  it('a dry run counts exactly the rows outside the window and deletes nothing', async () => {
    const res = await post('{"dryRun": true}');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { dryRun: true, retentionDays: RETENTION_DAYS, ...expectedCounts } satisfies PurgeReport);
    assert.equal((await column(database.db, sql`select name from checkpoints`)).length, seeded.kept.length + seeded.purged.length);
    assert.equal((await column(database.db, sql`select key from alerts`)).length, 4);
  });

  it('a real run deletes exactly the old end-state rows and nothing active or recent', async () => {
    const res = await post('{"dryRun": false}');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { dryRun: false, retentionDays: RETENTION_DAYS, ...expectedCounts });
    await assertOnlyKeptRemain(database.db, seeded);
    // A second run finds nothing more.
    const again = await post('{"dryRun": false}');
    assert.deepEqual(again.body, { dryRun: false, retentionDays: RETENTION_DAYS, checkpoints: 0, checkpointTransitions: 0, alerts: 0, webhookInbox: 0, auditLog: 0 });
  });

  it('creates the two schedules once and updates them on a second call', async () => {
    const first = await ensureHousekeepingSchedules(env.client, { taskQueue, retentionDays: RETENTION_DAYS, namespace: 'default' });
    assert.deepEqual(first, [
      { scheduleId: RETENTION_SCHEDULE_ID, outcome: 'created' },
      { scheduleId: ORPHAN_AUDIT_SCHEDULE_ID, outcome: 'created' },
    ]);
    await env.client.schedule.getHandle(ORPHAN_AUDIT_SCHEDULE_ID).pause('operator pause survives updates');
    const second = await ensureHousekeepingSchedules(env.client, { taskQueue, retentionDays: 30, namespace: 'default' });
    assert.deepEqual(second.map((s) => s.outcome), ['updated', 'updated']);

    const ids: string[] = [];
    for await (const s of env.client.schedule.list()) ids.push(s.scheduleId);
    assert.deepEqual(ids.sort(), [ORPHAN_AUDIT_SCHEDULE_ID, RETENTION_SCHEDULE_ID]);

    const retention = await env.client.schedule.getHandle(RETENTION_SCHEDULE_ID).describe();
    assert.equal(retention.policies.overlap, ScheduleOverlapPolicy.SKIP);
    assert.equal(retention.action.type, 'startWorkflow');
    assert.equal(retention.action.workflowType, 'retentionWorkflow');
    assert.equal(retention.action.taskQueue, taskQueue);
    assert.deepEqual(retention.action.args, [{ retentionDays: 30, dryRun: false }]);
    assert.deepEqual(retention.spec.calendars?.map((c) => [c.hour, c.minute]), [[[{ start: 3, end: 3, step: 1 }], [{ start: 17, end: 17, step: 1 }]]]);
    const audit = await env.client.schedule.getHandle(ORPHAN_AUDIT_SCHEDULE_ID).describe();
    assert.equal(audit.policies.overlap, ScheduleOverlapPolicy.SKIP);
    assert.equal(audit.action.type === 'startWorkflow' && audit.action.workflowType, 'orphanSnapshotAuditWorkflow');
    assert.equal(audit.spec.intervals?.[0]?.every, 3_600_000);
    assert.equal(audit.state.paused, true);
  });

  it('a schedule-triggered run executes retentionWorkflow on the worker', async () => {
    const handle = env.client.schedule.getHandle(RETENTION_SCHEDULE_ID);
    await handle.trigger();
    const started = await eventually('a recent action of the retention schedule', async () => (await handle.describe()).info.recentActions[0], { timeoutMs: 20_000, intervalMs: 100 });
    const result = await env.client.workflow.getHandle(started.action.workflow.workflowId, started.action.workflow.firstExecutionRunId).result();
    assert.deepEqual(result, { dryRun: false, retentionDays: 30, checkpoints: 0, checkpointTransitions: 0, alerts: 0, webhookInbox: 0, auditLog: 0 });
  });
});

describe('batched purge on PostgreSQL', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createPostgresDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('deletes in batches of 2 and leaves active and recent rows', async () => {
    const seeded = await seed(database.db);
    const { logger } = captureLogs();
    const activities = createHousekeepingActivities({ db: database.db, registry: newRegistry(database.db), logger, httpTimeoutMs: 2000, batchSize: 2 });
    assert.deepEqual(await activities.purgeOldRecords({ retentionDays: RETENTION_DAYS, dryRun: true }), { dryRun: true, retentionDays: RETENTION_DAYS, ...expectedCounts });
    assert.deepEqual(await activities.purgeOldRecords({ retentionDays: RETENTION_DAYS, dryRun: false }), { dryRun: false, retentionDays: RETENTION_DAYS, ...expectedCounts });
    await assertOnlyKeptRemain(database.db, seeded);
    await assert.rejects(activities.purgeOldRecords({ retentionDays: 0, dryRun: false }), (err: any) => err.type === 'validation');
  });
});
