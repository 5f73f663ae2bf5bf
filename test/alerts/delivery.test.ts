// Alerts end to end on PGlite with a real webhook receiver: conditions raise one delivery, the same
// condition again sends nothing, clearing sends the resolve message; workflow alerts through the
// onAlert hook; retries and logging when the receiver fails; no secret in any body or log line.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, beforeEach, describe, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { alertBody, createAlertDelivery } from '../../src/alerts/delivery.js';
import { createAlertMonitor, type AlertThresholds } from '../../src/alerts/conditions.js';
import { raiseAlert, resolveAlert } from '../../src/store/alert-store.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { insertCheckpoint, insertRunner, insertSessions, startReceiver, type Receiver } from '../helpers/observability-fixtures.js';
import { captureLogs } from '../helpers/log-capture.js';

const SECRET_PATH = '/services/T000/B000/hook-secret-XYZ123';
const THRESHOLDS: AlertThresholds = {
  queueWarning: 2, queueCritical: 4, queueMinutes: 0, failureRateWarning: 0.1, failureRateCritical: 0.25,
  failureRateMinSamples: 5, checkpointTtlSeconds: 600, ttlGraceSeconds: 60, offlineGraceSeconds: 0,
};

let database: TestDatabase;
let receiver: Receiver;
let databaseDropped = false;

function setup(opts: { thresholds?: Partial<AlertThresholds>; format?: 'slack' | 'generic'; minIntervalSeconds?: number } = {}) {
  const log = captureLogs();
  const delivery = createAlertDelivery({ webhookUrls: [receiver.url + SECRET_PATH], format: opts.format ?? 'generic', logger: log.logger, minIntervalSeconds: opts.minIntervalSeconds ?? 0, backoffMs: 10, timeoutMs: 2000 });
  const monitor = createAlertMonitor({ db: database.db, delivery, thresholds: { ...THRESHOLDS, ...opts.thresholds }, logger: log.logger, intervalSeconds: 1 });
  return { monitor, delivery, records: log.records };
}

async function check(monitor: ReturnType<typeof setup>['monitor']) {
  const result = await monitor.checkOnce();
  await monitor.flush();
  return result;
}

const sent = () => receiver.bodies.map((b) => `${b.body.status}:${b.body.key}`);

beforeAll(async () => {
  [database, receiver] = await Promise.all([createPgliteDatabase(), startReceiver()]);
});
afterAll(async () => {
  await receiver?.close();
  if (!databaseDropped) await database?.drop();
});
beforeEach(async () => {
  receiver.bodies.length = 0;
  receiver.failWith.length = 0;
  for (const table of ['alerts', 'checkpoint_transitions', 'checkpoints', 'agent_presence', 'controller_instances', 'runners']) {
    await database.db.execute(sql.raw(`delete from ${table}`));
  }
});

describe('alerts', { timeout: 60_000 }, () => {
  it('runner offline: one delivery, none while it lasts, a resolve message when it is back', async () => {
    const { monitor } = setup();
    await insertRunner(database.db, 'r-one');
    await insertRunner(database.db, 'r-two');
    await insertRunner(database.db, 'r-three');
    await insertSessions(database.db, 'inst-a', ['r-one', 'r-two']);
    const first = await check(monitor);
    assert.deepEqual(first.raised, ['runner_offline:r-three']);
    assert.deepEqual(sent(), ['raised:runner_offline:r-three']);
    assert.equal(receiver.bodies[0]!.body.runnerId, 'r-three');
    assert.equal(receiver.bodies[0]!.body.severity, 'warning');

    assert.deepEqual((await check(monitor)).raised, []);
    assert.equal(receiver.bodies.length, 1, 'same condition: no second delivery');

    await database.db.execute(sql`insert into agent_presence (runner_id, instance_id, session_epoch) values ('r-three', 'inst-a', 99)`);
    const cleared = await check(monitor);
    assert.deepEqual(cleared.resolved, ['runner_offline:r-three']);
    assert.deepEqual(sent(), ['raised:runner_offline:r-three', 'resolved:runner_offline:r-three']);
    assert.equal(receiver.bodies[1]!.body.message, 'Runner r-three is online again');
    await check(monitor);
    assert.equal(receiver.bodies.length, 2, 'a resolve notice goes out once');
  });

  it('more than half offline is critical; runners rebooting for their reset do not count', async () => {
    const { monitor } = setup();
    for (const r of ['m1', 'm2', 'm3']) await insertRunner(database.db, r);
    await insertSessions(database.db, 'inst-b', ['m1']);
    await insertCheckpoint(database.db, { runnerId: 'm2', state: 'resetting', holdsClaim: true, createdAt: new Date() });
    assert.deepEqual((await check(monitor)).active, ['runner_offline:m3']);
    await database.db.execute(sql`update checkpoints set state = 'reset', holds_claim = false`);
    const result = await check(monitor);
    assert.deepEqual(result.active, ['runner_offline:m2', 'runner_offline:m3', 'runners_offline_majority']);
    const majority = receiver.bodies.find((b) => b.body.key === 'runners_offline_majority')!.body;
    assert.deepEqual([majority.severity, majority.message], ['critical', '2 of 3 runners are offline']);
  });

  it('queue depth over warning and critical thresholds, only after the configured time', async () => {
    const waiting = setup({ thresholds: { queueMinutes: 10 } });
    const now = setup();
    await insertRunner(database.db, 'q');
    await insertSessions(database.db, 'inst-c', ['q']);
    for (let i = 0; i < 3; i++) await insertCheckpoint(database.db, { runnerId: `q${i}`, state: 'finalize_queued', createdAt: new Date() });
    assert.deepEqual((await check(waiting.monitor)).active, [], 'not yet 10 minutes');
    assert.deepEqual((await check(now.monitor)).active, ['queue_depth:warning']);
    for (let i = 3; i < 5; i++) await insertCheckpoint(database.db, { runnerId: `q${i}`, state: 'resetting', createdAt: new Date() });
    assert.deepEqual((await check(now.monitor)).raised, ['queue_depth:critical']);
    await database.db.execute(sql`update checkpoints set state = 'reset'`);
    assert.deepEqual((await check(now.monitor)).resolved.sort(), ['queue_depth:critical', 'queue_depth:warning']);
    assert.equal(receiver.bodies.at(-1)!.body.message, 'Queue depth is back under the threshold');
  });

  it('failure rate of the last hour over 10 % and 25 %', async () => {
    const { monitor } = setup();
    const ended = new Date(Date.now() - 600_000);
    const add = (status: 'success' | 'failure', state = 'reset') =>
      insertCheckpoint(database.db, { runnerId: 'f', state, createdAt: new Date(ended.getTime() - 60_000), createdDoneAt: ended, endedAt: ended, finalizeStatus: status });
    for (let i = 0; i < 8; i++) await add('success');
    await add('failure');
    assert.deepEqual((await check(monitor)).active, ['failure_rate:warning'], '1 of 9');
    assert.match(receiver.bodies[0]!.body.message, /^Failure rate 11.1 % \(1 of 9\)/);
    await add('failure');
    await insertCheckpoint(database.db, { runnerId: 'f', state: 'create_failed', createdAt: ended, endedAt: ended });
    assert.deepEqual((await check(monitor)).active, ['failure_rate:critical', 'failure_rate:warning'], '3 of 11');
    // An hour later none of them counts.
    await database.db.execute(sql`update checkpoint_transitions set at = at - interval '2 hours'`);
    assert.deepEqual((await check(monitor)).resolved.sort(), ['failure_rate:critical', 'failure_rate:warning']);
  });

  it('a created checkpoint past its TTL (and extensions) still active', async () => {
    const { monitor } = setup();
    const old = new Date(Date.now() - 1000_000);
    await insertCheckpoint(database.db, { name: 'job-1-overdue', runnerId: 'o', state: 'created', holdsClaim: true, createdAt: old, createdDoneAt: old });
    await insertCheckpoint(database.db, { name: 'job-2-extended', runnerId: 'p', state: 'created', holdsClaim: true, createdAt: old, createdDoneAt: old, ttlExtensions: 1 });
    assert.deepEqual((await check(monitor)).active, ['checkpoint_overdue:job-1-overdue']);
    assert.equal(receiver.bodies[0]!.body.checkpointName, 'job-1-overdue');
    await database.db.execute(sql`update checkpoints set state = 'finalize_queued' where name = 'job-1-overdue'`);
    assert.deepEqual((await check(monitor)).resolved, ['checkpoint_overdue:job-1-overdue']);
  });

  it('workflow alerts: onAlert delivers; their resolve gets a notice from the monitor', async () => {
    const { monitor } = setup({ format: 'slack' });
    const alert = { key: 'needs_attention:job-9', severity: 'critical' as const, message: 'Reset failed: authorization: Bearer abcdefghijklmnop', runnerId: 'w', checkpointName: 'job-9' };
    assert.equal((await raiseAlert(database.db, alert)).raised, true);
    monitor.onAlert(alert);
    await monitor.flush();
    assert.equal(receiver.bodies.length, 1);
    assert.deepEqual(Object.keys(receiver.bodies[0]!.body), ['text']);
    assert.equal(receiver.bodies[0]!.body.text, '[e2epool CRITICAL] Reset failed: authorization: *** (runner w, checkpoint job-9) [needs_attention:job-9]');
    await check(monitor);
    assert.equal(receiver.bodies.length, 1, 'the monitor leaves open workflow alerts alone');
    await resolveAlert(database.db, alert.key);
    await check(monitor);
    assert.equal(receiver.bodies.length, 2);
    assert.match(receiver.bodies[1]!.body.text, /^\[e2epool RESOLVED\] Resolved: Reset failed/);
  });

  it('retries a failing receiver with backoff, then logs; never throws; no secret in bodies or logs', async () => {
    const { delivery, records } = setup();
    receiver.failWith.push(500, 503);
    await delivery.deliver({ key: 'k1', severity: 'warning', message: 'token=supersecretvalue and glpat-abcdefghijklmnopqrst' });
    assert.equal(receiver.bodies.length, 3, 'two failures, then delivered');
    assert.ok(records().some((l) => l.msg === 'alert delivered' && l.attempt === 3));
    receiver.failWith.push(500, 500, 500);
    await delivery.deliver({ key: 'k2', severity: 'warning', message: 'x' });
    assert.equal(receiver.bodies.length, 6);
    const failed = records().find((l) => l.msg === 'alert delivery failed');
    assert.ok(failed, 'a delivery failure is logged');
    assert.deepEqual([failed.alert, failed.attempts, failed.problem], ['k2', 3, 'HTTP 500']);
    receiver.failWith.push(400);
    await delivery.deliver({ key: 'k3', severity: 'warning', message: 'x' });
    assert.equal(receiver.bodies.length, 7, 'a client error is not retried');
    const unreachable = createAlertDelivery({ webhookUrls: ['http://127.0.0.1:1/hook-secret-XYZ123'], format: 'slack', logger: captureLogs().logger, minIntervalSeconds: 0, backoffMs: 1 });
    await unreachable.deliver({ key: 'k4', severity: 'critical', message: 'x' });
    assert.ok(receiver.bodies.every((b) => b.path === SECRET_PATH), 'posted to the configured URL');
    const everything = receiver.bodies.map((b) => b.raw).join('') + JSON.stringify(records());
    for (const secret of ['supersecretvalue', 'glpat-abcdefghijklmnopqrst', 'hook-secret-XYZ123']) assert.equal(everything.includes(secret), false, secret);
  });

  it('rate-limits per key', async () => {
    const { delivery } = setup({ minIntervalSeconds: 60 });
    await delivery.deliver({ key: 'same', severity: 'warning', message: 'a' });
    await delivery.deliver({ key: 'same', severity: 'warning', message: 'a' });
    await delivery.deliver({ key: 'other', severity: 'warning', message: 'b' });
    await delivery.deliverResolved({ key: 'same', severity: 'warning', message: 'done' });
    assert.deepEqual(sent(), ['raised:same', 'raised:other', 'resolved:same']);
    assert.deepEqual(alertBody({ key: 'k', severity: 'info', message: 'm' }, 'resolved', 'generic', new Date(0)), {
      source: 'e2epool', status: 'resolved', key: 'k', severity: 'info', message: 'm', runnerId: null, checkpointName: null, at: '1970-01-01T00:00:00.000Z',
    });
  });

  it('database unreachable: delivered once by the instance itself (runs last)', async () => {
    const { monitor } = setup();
    await database.drop();
    databaseDropped = true;
    const down = await check(monitor);
    assert.deepEqual([down.databaseReachable, down.raised], [false, ['database_unreachable']]);
    assert.deepEqual((await check(monitor)).raised, [], 'once');
    assert.deepEqual(sent(), ['raised:database_unreachable']);
  });
});
