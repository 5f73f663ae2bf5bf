// GET /api/stats/summary on PGlite and PostgreSQL: rows with known timestamps, exact counts,
// percentile_cont percentiles, success rates, finalize sources, per day and per runner; days and
// admin token validation.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createStatsRouter } from '../../src/api/routes/stats.js';
import { databaseKinds, type TestDatabase } from '../helpers/databases.js';
import { at, insertCheckpoint, serve, type TestServer } from '../helpers/observability-fixtures.js';

const ADMIN = 'stats-admin-token';
const now = new Date();
const hoursAgo = (h: number) => new Date(now.getTime() - h * 3600_000);
const dayOf = (d: Date) => d.toISOString().slice(0, 10);

// created_at of each row; its UTC day is the day it counts on.
const t1 = hoursAgo(2);
const t2 = hoursAgo(26);
const t3 = hoursAgo(72);
const t4 = hoursAgo(2.5);
const t5 = hoursAgo(27);
const t6 = hoursAgo(3);
const t7 = hoursAgo(24 * 9);

async function seed(db: TestDatabase['db']): Promise<void> {
  // 1: s1 success through cleanup: create 2 s, turnaround 30 s.
  await insertCheckpoint(db, { runnerId: 's1', state: 'deleted', createdAt: t1, createdDoneAt: at(t1, 2), finalizeQueuedAt: at(t1, 600), endedAt: at(t1, 630), finalizeStatus: 'success', finalizeSource: 'hook' });
  // 2: s1 failure: create 4, reset 60, readiness 20, turnaround 10+60+20+5 = 95.
  await insertCheckpoint(db, { runnerId: 's1', state: 'reset', createdAt: t2, createdDoneAt: at(t2, 4), finalizeQueuedAt: at(t2, 300), resetStartedAt: at(t2, 310), resetDoneAt: at(t2, 370), readyAt: at(t2, 390), endedAt: at(t2, 395), finalizeStatus: 'failure', finalizeSource: 'webhook' });
  // 3: s2 canceled: create 6, reset 100, readiness 40, turnaround 10+100+40+5 = 155.
  await insertCheckpoint(db, { runnerId: 's2', backend: 'bare_metal', state: 'reset', createdAt: t3, createdDoneAt: at(t3, 6), finalizeQueuedAt: at(t3, 100), resetStartedAt: at(t3, 110), resetDoneAt: at(t3, 210), readyAt: at(t3, 250), endedAt: at(t3, 255), finalizeStatus: 'canceled', finalizeSource: 'poller' });
  // 4: s2 create failed: no create duration.
  await insertCheckpoint(db, { runnerId: 's2', state: 'create_failed', createdAt: t4, endedAt: at(t4, 30) });
  // 5: s2 gc reset after the TTL: create 10, turnaround 50.
  await insertCheckpoint(db, { runnerId: 's2', state: 'gc_reset', createdAt: t5, createdDoneAt: at(t5, 10), finalizeQueuedAt: at(t5, 1800), endedAt: at(t5, 1850), finalizeSource: 'ttl' });
  // 6: s1 success from a caller's own source (counted as other): create 10, turnaround 12.
  await insertCheckpoint(db, { runnerId: 's1', state: 'reset', createdAt: t6, createdDoneAt: at(t6, 10), finalizeQueuedAt: at(t6, 100), endedAt: at(t6, 112), finalizeStatus: 'success', finalizeSource: 'my-ci' });
  // 7: nine days ago: outside days=7.
  await insertCheckpoint(db, { runnerId: 's3', state: 'deleted', createdAt: t7, createdDoneAt: at(t7, 1), finalizeQueuedAt: at(t7, 60), endedAt: at(t7, 61), finalizeStatus: 'success', finalizeSource: 'hook' });
}

async function get(base: string, path: string, token: string | null = ADMIN): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

for (const { kind, create } of databaseKinds) {
  describe(`stats summary on ${kind}`, { timeout: 60_000 }, () => {
    let database: TestDatabase;
    let server: TestServer;
    beforeAll(async () => {
      database = await create();
      await seed(database.db);
      server = await serve(createStatsRouter({ db: database.db, adminToken: ADMIN }));
    });
    afterAll(async () => {
      await server?.close();
      await database?.drop();
    });

    it('totals, percentiles and sources over 7 days', async () => {
      const { status, body } = await get(server.base, '/api/stats/summary?days=7');
      assert.equal(status, 200);
      assert.equal(body.days, 7);
      assert.equal(body.daily.length, 7);
      assert.equal(body.daily.at(-1).date, dayOf(now));
      const t = body.total;
      assert.deepEqual(
        { created: t.created, succeeded: t.succeeded, failed: t.failed, canceled: t.canceled, gcReset: t.gcReset, successRate: t.successRate },
        { created: 5, succeeded: 2, failed: 2, canceled: 1, gcReset: 1, successRate: 0.5 },
      );
      assert.deepEqual(t.durations, {
        create: { count: 5, p50: 6, p95: 10 },
        reset: { count: 2, p50: 80, p95: 98 },
        readiness: { count: 2, p50: 30, p95: 39 },
        turnaround: { count: 5, p50: 50, p95: 143 },
      });
      assert.deepEqual(t.finalizeSources, { hook: 1, agent: 0, webhook: 1, poller: 1, ttl: 1, cancel: 0, operator: 0, other: 1 });
    });

    it('per runner and per day', async () => {
      const { body } = await get(server.base, '/api/stats/summary');
      assert.equal(body.days, 7, 'default days');
      const runners = Object.fromEntries(body.runners.map((r: any) => [r.runnerId, r]));
      assert.deepEqual(Object.keys(runners), ['s1', 's2'], 's3 only had a checkpoint 9 days ago');
      assert.deepEqual([runners.s1.created, runners.s1.succeeded, runners.s1.failed, runners.s1.successRate], [3, 2, 1, 0.667]);
      assert.deepEqual([runners.s2.created, runners.s2.failed, runners.s2.canceled, runners.s2.gcReset, runners.s2.successRate], [2, 1, 1, 1, 0]);
      assert.deepEqual(runners.s1.durations.create, { count: 3, p50: 4, p95: 9.4 });
      assert.deepEqual(runners.s2.finalizeSources, { hook: 0, agent: 0, webhook: 0, poller: 1, ttl: 1, cancel: 0, operator: 0, other: 0 });

      // Expected per-day counts follow each row's UTC creation day, whatever the time of the run.
      const expected = new Map<string, number>();
      for (const d of [t1, t2, t4, t5, t6, t3]) expected.set(dayOf(d), (expected.get(dayOf(d)) ?? 0) + 1);
      for (const day of body.daily) {
        const rows = day.created + (day.date === dayOf(t4) ? 1 : 0); // row 4 never reached created
        assert.equal(rows, expected.get(day.date) ?? 0, day.date);
      }
      const day3 = body.daily.find((d: any) => d.date === dayOf(t3));
      assert.deepEqual([day3.canceled, day3.successRate, day3.durations.reset.p50, day3.finalizeSources.poller], [1, null, 100, 1]);
    });

    it('days=1 covers today only', async () => {
      const { body } = await get(server.base, '/api/stats/summary?days=1');
      assert.equal(body.daily.length, 1);
      const today = [t1, t2, t3, t4, t5, t6].filter((d) => dayOf(d) === dayOf(now));
      assert.equal(body.total.created + (dayOf(t4) === dayOf(now) ? 1 : 0), today.length);
    });

    it('validates days and the admin token', async () => {
      for (const days of ['0', '91', 'abc', '7.5', '', '-1']) {
        const res = await get(server.base, `/api/stats/summary?days=${days}`);
        assert.equal(res.status, 422, `days=${days}`);
        assert.deepEqual(res.body.detail[0].loc, ['query', 'days']);
      }
      assert.equal((await get(server.base, '/api/stats/summary?days=90')).status, 200);
      assert.equal((await get(server.base, '/api/stats/summary', null)).status, 401);
      const wrong = await get(server.base, '/api/stats/summary', 'nope');
      assert.equal(wrong.status, 403);
      assert.equal(JSON.stringify(wrong.body).includes(ADMIN), false);
    });
  });
}
