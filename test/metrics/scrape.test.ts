// GET /metrics on PGlite: gauges from the read model, histograms and counters fed once per ended
// checkpoint (no double count across scrapes, even concurrent ones), closed label sets only.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { createMetricsRouter } from '../../src/metrics/metrics.js';
import { createInstanceMetrics } from '../../src/metrics/instance-metrics.js';
import { E2epoolError } from '../../src/domain/errors.js';
import { VERSION } from '../../src/services/health.js';
import { raiseAlert, resolveAlert } from '../../src/store/alert-store.js';
import { writeOrphanAudit } from '../../src/store/settings-store.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { at, insertCheckpoint, insertRunner, insertSessions, serve, type TestServer } from '../helpers/observability-fixtures.js';

/** `name{a="x",b="y"}` → value, labels sorted as prom-client writes them. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

let database: TestDatabase;
let databaseDropped = false;
let server: TestServer;
const countSince = new Date(Date.now() - 3600_000);
const base = new Date(Date.now() - 1800_000);
const names: string[] = [];

async function scrape(url = server.base): Promise<{ text: string; m: Map<string, number> }> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  return { text, m: parse(text) };
}

beforeAll(async () => {
  database = await createPgliteDatabase();
  const db = database.db;
  for (const r of ['runner-alpha', 'runner-bravo', 'runner-charlie']) await insertRunner(db, r);
  await insertRunner(db, 'runner-delta', { drained: true });
  await insertRunner(db, 'runner-retired', { active: false });
  await insertSessions(db, 'instance-live', ['runner-alpha', 'runner-delta']);
  await insertSessions(db, 'instance-dead', ['runner-bravo'], new Date(Date.now() - 600_000));
  // Active: alpha created, bravo needs attention, charlie resetting (the queue).
  names.push(await insertCheckpoint(db, { runnerId: 'runner-alpha', state: 'created', holdsClaim: true, createdAt: at(base, 0), createdDoneAt: at(base, 3) }));
  names.push(await insertCheckpoint(db, { runnerId: 'runner-bravo', state: 'needs_attention', holdsClaim: true, createdAt: at(base, 0) }));
  names.push(await insertCheckpoint(db, { runnerId: 'runner-charlie', state: 'resetting', holdsClaim: true, createdAt: at(base, 0) }));
  // Ended after countSince.
  names.push(await insertCheckpoint(db, { runnerId: 'runner-alpha', state: 'deleted', createdAt: at(base, 10), createdDoneAt: at(base, 14), finalizeQueuedAt: at(base, 100), endedAt: at(base, 120), finalizeStatus: 'success', finalizeSource: 'hook' }));
  names.push(await insertCheckpoint(db, { runnerId: 'runner-alpha', state: 'reset', createdAt: at(base, 200), createdDoneAt: at(base, 212), finalizeQueuedAt: at(base, 300), resetStartedAt: at(base, 305), resetDoneAt: at(base, 350), readyAt: at(base, 365), endedAt: at(base, 367), finalizeStatus: 'failure', finalizeSource: 'webhook' }));
  names.push(await insertCheckpoint(db, { runnerId: 'runner-charlie', backend: 'bare_metal', state: 'reset', createdAt: at(base, 400), createdDoneAt: at(base, 400.5), finalizeQueuedAt: at(base, 500), resetStartedAt: at(base, 500), resetDoneAt: at(base, 700), readyAt: at(base, 703), endedAt: at(base, 704), finalizeStatus: 'canceled', finalizeSource: 'someones-ci-42' }));
  names.push(await insertCheckpoint(db, { runnerId: 'runner-charlie', backend: 'bare_metal', state: 'gc_reset', createdAt: at(base, 800), createdDoneAt: at(base, 801), endedAt: at(base, 900) }));
  // Ended before countSince: never counted.
  names.push(await insertCheckpoint(db, { runnerId: 'runner-alpha', state: 'deleted', createdAt: new Date(Date.now() - 7200_000), createdDoneAt: new Date(Date.now() - 7199_000), endedAt: new Date(Date.now() - 7100_000), finalizeStatus: 'success', finalizeSource: 'hook' }));
  server = await serve(createMetricsRouter({ db, countSince, settleSeconds: 0, processMetrics: false, cacheMs: 0 }));
});
afterAll(async () => {
  await server?.close();
  if (!databaseDropped) await database?.drop();
});

describe('/metrics', { timeout: 60_000 }, () => {
  it('gauges read from the database', async () => {
    const { m } = await scrape();
    // One state per runner: bravo needs attention (and is offline), delta is drained (and online),
    // charlie has no live session (and holds a claim), alpha holds a claim; the retired one is out.
    const gauges = Object.fromEntries(['needs_attention', 'drained', 'offline', 'busy', 'idle'].map((s) => [s, m.get(`e2epool_runners{state="${s}"}`)]));
    assert.deepEqual(gauges, { needs_attention: 1, drained: 1, offline: 1, busy: 1, idle: 0 });
    assert.equal(m.has('e2epool_runners{state="online"}'), false, 'no overlapping state');
    assert.equal(m.get('e2epool_active_checkpoints'), 3);
    assert.equal(m.get('e2epool_needs_attention'), 1);
    assert.equal(m.get('e2epool_agent_sessions'), 2);
    assert.equal(m.get('e2epool_queue_depth'), 1);
    assert.equal(m.get('e2epool_database_up'), 1);
  });

  it('counters and histograms of checkpoints ended since the start', async () => {
    const { m } = await scrape();
    assert.equal(m.get('e2epool_checkpoints_total{backend="proxmox",outcome="success"}'), 1);
    assert.equal(m.get('e2epool_checkpoints_total{backend="proxmox",outcome="failure"}'), 1);
    assert.equal(m.get('e2epool_checkpoints_total{backend="bare_metal",outcome="canceled"}'), 1);
    assert.equal(m.get('e2epool_checkpoints_total{backend="bare_metal",outcome="gc_reset"}'), 1);
    assert.equal(m.get('e2epool_checkpoints_total{backend="proxmox",outcome="create_failed"}'), 0);
    assert.equal(m.get('e2epool_finalize_total{source="hook"}'), 1);
    assert.equal(m.get('e2epool_finalize_total{source="webhook"}'), 1);
    assert.equal(m.get('e2epool_finalize_total{source="other"}'), 1);
    assert.equal(m.get('e2epool_finalize_total{source="poller"}'), 0);
    assert.equal(m.get('e2epool_create_duration_seconds_count{backend="proxmox"}'), 2);
    assert.equal(m.get('e2epool_create_duration_seconds_sum{backend="proxmox"}'), 16);
    assert.equal(m.get('e2epool_create_duration_seconds_bucket{le="5",backend="proxmox"}'), 1);
    assert.equal(m.get('e2epool_create_duration_seconds_bucket{le="10",backend="proxmox"}'), 1);
    assert.equal(m.get('e2epool_create_duration_seconds_bucket{le="20",backend="proxmox"}'), 2);
    assert.equal(m.get('e2epool_create_duration_seconds_count{backend="bare_metal"}'), 2);
    assert.equal(m.get('e2epool_create_duration_seconds_sum{backend="bare_metal"}'), 1.5);
    assert.equal(m.get('e2epool_reset_duration_seconds_sum{backend="proxmox"}'), 45);
    assert.equal(m.get('e2epool_reset_duration_seconds_sum{backend="bare_metal"}'), 200);
    assert.equal(m.get('e2epool_readiness_duration_seconds_sum{backend="proxmox"}'), 15);
    assert.equal(m.get('e2epool_readiness_duration_seconds_bucket{le="5",backend="bare_metal"}'), 1);
    assert.equal(m.get('e2epool_turnaround_seconds_count{backend="proxmox"}'), 2);
    assert.equal(m.get('e2epool_turnaround_seconds_sum{backend="proxmox"}'), 20 + 67);
    assert.equal(m.get('e2epool_turnaround_seconds_sum{backend="bare_metal"}'), 204);
  });

  it('counts a new end once, also with concurrent scrapes', async () => {
    const before = (await scrape()).m.get('e2epool_checkpoints_total{backend="proxmox",outcome="success"}');
    const t = new Date(Date.now() - 5000);
    names.push(await insertCheckpoint(database.db, { runnerId: 'runner-bravo', state: 'deleted', createdAt: t, createdDoneAt: at(t, 1), finalizeQueuedAt: at(t, 2), endedAt: at(t, 3), finalizeStatus: 'success', finalizeSource: 'agent' }));
    const scrapes = await Promise.all([scrape(), scrape(), scrape()]);
    for (const { m } of scrapes) assert.ok([before, before! + 1].includes(m.get('e2epool_checkpoints_total{backend="proxmox",outcome="success"}')));
    const { m } = await scrape();
    assert.equal(m.get('e2epool_checkpoints_total{backend="proxmox",outcome="success"}'), before! + 1);
    assert.equal(m.get('e2epool_finalize_total{source="agent"}'), 1);
    assert.equal(m.get('e2epool_create_duration_seconds_count{backend="proxmox"}'), 3);
  });

  it('keeps labels low-cardinality: no runner or checkpoint names', async () => {
    const { text } = await scrape();
    for (const n of [...names, 'runner-alpha', 'runner-bravo', 'runner-charlie', 'runner-delta', 'someones-ci-42', 'instance-live']) {
      assert.equal(text.includes(n), false, n);
    }
    const allowed: Record<string, RegExp> = {
      backend: /^(proxmox|bare_metal|other)$/,
      outcome: /^(success|failure|canceled|gc_reset|create_failed|released)$/,
      source: /^(hook|agent|webhook|poller|ttl|cancel|operator|other)$/,
      state: /^(offline|busy|idle|drained|needs_attention)$/,
      severity: /^(critical|warning|info)$/,
      version: /^\d+\.\d+\.\d+/,
      node: /^v\d+\./,
      le: /^([\d.]+|\+Inf)$/,
    };
    for (const line of text.split('\n').filter((l) => l.startsWith('e2epool_'))) {
      for (const [, label, value] of line.matchAll(/(\w+)="([^"]*)"/g)) {
        assert.ok(allowed[label!], `unexpected label ${label} in ${line}`);
        assert.match(value!, allowed[label!]!, line);
      }
    }
  });

  it('alerts by severity, webhook inbox, maintenance, orphan audit and build info', async () => {
    const db = database.db;
    let { m } = await scrape();
    assert.deepEqual(['critical', 'warning', 'info'].map((s) => m.get(`e2epool_alerts_open{severity="${s}"}`)), [0, 0, 0]);
    assert.equal(m.get('e2epool_maintenance'), 0);
    assert.equal(m.get('e2epool_orphan_snapshots'), undefined, 'unknown until an audit ran');
    assert.equal(m.get(`e2epool_build_info{version="${VERSION}",node="${process.version}"}`), 1);
    await raiseAlert(db, { key: 'metrics-test:a', severity: 'critical', message: 'a' });
    await raiseAlert(db, { key: 'metrics-test:b', severity: 'warning', message: 'b' });
    await raiseAlert(db, { key: 'metrics-test:c', severity: 'warning', message: 'c' });
    await resolveAlert(db, 'metrics-test:c');
    await db.execute(sql`insert into webhook_inbox (event_id, provider, payload) values ('metrics-1', 'gitlab', '{}'), ('metrics-2', 'gitlab', '{}')`);
    await db.execute(sql`insert into webhook_inbox (event_id, provider, payload, outcome, attempts) values ('metrics-3', 'gitlab', '{}', 'gave_up', 20)`);
    await db.execute(sql`insert into webhook_inbox (event_id, provider, payload, outcome, processed_at) values ('metrics-4', 'gitlab', '{}', 'signaled', now())`);
    await db.execute(sql`insert into controller_settings (key, value) values ('maintenance', '{"enabled": true, "message": "upgrade"}') on conflict (key) do update set value = excluded.value`);
    await writeOrphanAudit(db, { orphans: 3, unchecked: 1 });
    ({ m } = await scrape());
    assert.deepEqual(['critical', 'warning', 'info'].map((s) => m.get(`e2epool_alerts_open{severity="${s}"}`)), [1, 1, 0]);
    assert.equal(m.get('e2epool_webhook_inbox_pending'), 2);
    assert.equal(m.get('e2epool_webhook_inbox_given_up'), 1);
    assert.equal(m.get('e2epool_maintenance'), 1);
    assert.equal(m.get('e2epool_orphan_snapshots'), 3);
    await db.execute(sql`update controller_settings set value = '{"enabled": false}' where key = 'maintenance'`);
    await resolveAlert(db, 'metrics-test:a');
    await resolveAlert(db, 'metrics-test:b');
  });

  it("appends this instance's figures and the Temporal probe", async () => {
    const instance = createInstanceMetrics();
    let reachable = true;
    const s = await serve(createMetricsRouter({ db: database.db, processMetrics: false, cacheMs: 0, instance, temporalReachable: async () => reachable }));
    try {
      instance.countCreateRejection(new E2epoolError('maintenance', 'upgrade'));
      instance.countCreateRejection(new E2epoolError('maintenance', 'upgrade'));
      instance.countCreateRejection(new Error('not ours'));
      let { m } = await scrape(s.base);
      assert.equal(m.get('e2epool_create_rejections_total{reason="maintenance"}'), 2);
      assert.equal(m.get('e2epool_create_rejections_total{reason="internal"}'), 1);
      assert.equal(m.get('e2epool_create_rejections_total{reason="conflict"}'), 0, 'known reasons start at zero');
      assert.equal(m.get('e2epool_temporal_up'), 1);
      reachable = false;
      ({ m } = await scrape(s.base));
      assert.equal(m.get('e2epool_temporal_up'), 0);
    } finally {
      await s.close();
    }
  });

  it('waits settleSeconds before counting an end', async () => {
    const settling = await serve(createMetricsRouter({ db: database.db, countSince, settleSeconds: 3600, processMetrics: false, cacheMs: 0 }));
    try {
      const { m } = await scrape(settling.base);
      assert.equal(m.get('e2epool_checkpoints_total{backend="proxmox",outcome="success"}'), 0);
      assert.equal(m.get('e2epool_create_duration_seconds_count{backend="proxmox"}'), undefined);
      assert.equal(m.get('e2epool_active_checkpoints'), 3, 'gauges do not wait');
    } finally {
      await settling.close();
    }
  });

  it('matches the path exactly (no /METRICS or /metrics/) and, with a scrape token, answers only with it', async () => {
    for (const variant of ['/METRICS', '/Metrics', '/metrics/']) assert.equal((await fetch(`${server.base}${variant}`)).status, 404, variant);
    const guarded = await serve(createMetricsRouter({ db: database.db, processMetrics: false, scrapeToken: 'scrape-token-for-the-metrics-test' }));
    try {
      assert.equal((await fetch(`${guarded.base}/metrics`)).status, 401);
      assert.equal((await fetch(`${guarded.base}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
      assert.equal((await fetch(`${guarded.base}/metrics`, { headers: { authorization: 'Bearer scrape-token-for-the-metrics-test' } })).status, 200);
    } finally {
      await guarded.close();
    }
  });

  it('reports the database down and leaves out its gauges (runs last: closes the database)', async () => {
    const s = await serve(createMetricsRouter({ db: database.db, processMetrics: true, cacheMs: 0 }));
    try {
      assert.equal((await scrape(s.base)).m.get('e2epool_database_up'), 1);
      await database.drop();
      databaseDropped = true;
      const { m, text } = await scrape(s.base);
      assert.equal(m.get('e2epool_database_up'), 0);
      assert.equal(m.get('e2epool_queue_depth'), undefined);
      assert.equal(m.get('e2epool_active_checkpoints'), undefined);
      assert.equal(m.has('e2epool_runners{state="offline"}'), false);
      assert.equal(m.get('e2epool_maintenance'), undefined);
      assert.equal(m.get('e2epool_checkpoints_total{backend="proxmox",outcome="success"}'), 0, 'counters stay');
      assert.match(text, /process_cpu_user_seconds_total/);
    } finally {
      await s.close();
    }
  });
});
