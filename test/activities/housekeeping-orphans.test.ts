// The orphan snapshot audit end to end: Temporal dev server, a real worker with the housekeeping
// activities, PGlite, the Proxmox simulator holding snapshots that are ours (active, ended, without a
// row) and not ours, and GET /api/admin/orphan-snapshots over real HTTP. Checks the report, that
// nothing is deleted, the runner that cannot be listed (error code only), and the alert's raise,
// keep and resolve.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createHousekeepingActivities, ORPHAN_SNAPSHOTS_ALERT_KEY } from '../../activities/housekeeping.js';
import { createHousekeepingRouter } from '../../src/api/routes/housekeeping.js';
import type { RunnerRegistry } from '../../src/inventory/registry.js';
import { defaultSimToken, startProxmoxSimulator, type ProxmoxSimulator } from '../../sim/proxmox/index.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { bundleWorkflowsOnce, startDevServerEnv } from '../helpers/temporal.js';
import { createProxmoxRunner, newRegistry } from '../helpers/activities-harness.js';
import { insertCheckpoint, serve, type TestServer } from '../helpers/observability-fixtures.js';
import { captureLogs } from '../helpers/log-capture.js';

const ADMIN = 'orphan-admin-token';
const WRONG_SECRET = 'not-the-proxmox-secret-123';

let snapSeq = 1000;
function putSnapshot(sim: ProxmoxSimulator, vmid: number, name: string): void {
  sim.state.vm(vmid).snapshots.set(name, { name, description: '', vmstate: false, disk: {}, seq: ++snapSeq });
}
const snapshotNames = (sim: ProxmoxSimulator, vmid: number) => [...sim.state.vm(vmid).snapshots.keys()].sort();

describe('orphan snapshot audit', { timeout: 120_000 }, () => {
  let env: TestWorkflowEnvironment;
  let database: TestDatabase;
  let sim: ProxmoxSimulator;
  let registry: RunnerRegistry;
  let worker: Worker;
  let running: Promise<void>;
  let server: TestServer;
  const taskQueue = `orphans-${randomBytes(4).toString('hex')}`;
  const { logger, records } = captureLogs();

  beforeAll(async () => {
    [env, database, sim] = await Promise.all([
      startDevServerEnv(),
      createPgliteDatabase(),
      startProxmoxSimulator({ vms: [{ node: 'pve1', vmid: 101, tags: ['e2epool'] }, { node: 'pve1', vmid: 102, tags: ['e2epool'] }] }),
    ]);
    registry = newRegistry(database.db);
    await createProxmoxRunner(registry, sim, { runner_id: 'r101' });
    await createProxmoxRunner(registry, sim, { runner_id: 'r102', proxmox_vmid: 102 });
    // Same VM, wrong token: cannot be listed.
    await createProxmoxRunner(registry, sim, { runner_id: 'r-bad', proxmox_token_value: WRONG_SECRET });
    // Ignored: bare metal, and an inactive Proxmox runner whose VM holds a stray snapshot.
    await registry.createRunner({ runner_id: 'metal', backend: 'bare_metal', reset_cmd: '/opt/reset' });
    await createProxmoxRunner(registry, sim, { runner_id: 'r-gone', proxmox_vmid: 102 });
    await registry.deactivateRunner('r-gone');

    const old = new Date(Date.now() - 3600_000);
    await insertCheckpoint(database.db, { name: 'job-1-active', runnerId: 'r101', state: 'created', createdAt: old, holdsClaim: true });
    await insertCheckpoint(database.db, { name: 'job-2-ended', runnerId: 'r101', state: 'deleted', createdAt: old, endedAt: old });
    await insertCheckpoint(database.db, { name: 'job-4-attention', runnerId: 'r102', state: 'needs_attention', createdAt: old, holdsClaim: true });
    await insertCheckpoint(database.db, { name: 'job-6-releasing', runnerId: 'r102', state: 'releasing_claim', createdAt: old });
    for (const name of ['job-1-active', 'job-2-ended', 'job-3-norow', 'before-upgrade', 'jobless']) putSnapshot(sim, 101, name);
    for (const name of ['job-4-attention', 'job-5-stray', 'job-6-releasing']) putSnapshot(sim, 102, name);

    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await bundleWorkflowsOnce(),
      activities: createHousekeepingActivities({ db: database.db, registry, logger, httpTimeoutMs: 2000 }),
    });
    running = worker.run();
    server = await serve(createHousekeepingRouter({ client: env.client, taskQueue, retentionDays: 90, adminToken: ADMIN, runTimeoutMs: 60_000 }));
  });

  afterAll(async () => {
    await server?.close();
    if (worker) {
      worker.shutdown();
      await running;
    }
    await Promise.all([env?.teardown(), sim?.stop()]);
    await database?.drop();
  });

  const audit = async () => {
    const res = await fetch(`${server.base}/api/admin/orphan-snapshots`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const text = await res.text();
    assert.ok(!text.includes(WRONG_SECRET) && !text.includes(defaultSimToken.secret), 'no secret in the report');
    return { status: res.status, body: JSON.parse(text) };
  };
  const openAlert = async () => {
    const result: any = await database.db.execute(sql`select message from alerts where key = ${ORPHAN_SNAPSHOTS_ALERT_KEY} and resolved_at is null`);
    return result.rows as Array<{ message: string }>;
  };

  it('reports ours without an active checkpoint, deletes nothing, and raises one alert', async () => {
    const before101 = snapshotNames(sim, 101);
    const before102 = snapshotNames(sim, 102);
    const { status, body } = await audit();
    assert.equal(status, 200);
    assert.deepEqual(body, {
      orphans: [
        { runnerId: 'r101', vmid: 101, snapshot: 'job-2-ended' },
        { runnerId: 'r101', vmid: 101, snapshot: 'job-3-norow' },
        { runnerId: 'r102', vmid: 102, snapshot: 'job-5-stray' },
      ],
      checkedRunners: 2,
      unchecked: [{ runnerId: 'r-bad', code: 'proxmox_auth' }],
      alert: 'raised',
    });
    assert.deepEqual(snapshotNames(sim, 101), before101);
    assert.deepEqual(snapshotNames(sim, 102), before102);
    assert.equal(sim.callsTo('snapshot-delete').length, 0);
    const alerts = await openAlert();
    assert.equal(alerts.length, 1);
    for (const o of ['r101/101/job-2-ended', 'r101/101/job-3-norow', 'r102/102/job-5-stray']) assert.match(alerts[0]!.message, new RegExp(o));
    assert.ok(!records().some((l) => JSON.stringify(l).includes(WRONG_SECRET)), 'no secret in the logs');
  });

  it('a second run keeps the one open alert', async () => {
    const { body } = await audit();
    assert.equal(body.alert, 'already_open');
    assert.equal(body.orphans.length, 3);
    assert.equal((await openAlert()).length, 1);
  });

  it('with the orphans gone but a runner unchecked, the alert stays open', async () => {
    for (const [vmid, name] of [[101, 'job-2-ended'], [101, 'job-3-norow'], [102, 'job-5-stray']] as const) sim.state.vm(vmid).snapshots.delete(name);
    const { body } = await audit();
    assert.deepEqual(body.orphans, []);
    assert.equal(body.alert, 'unchanged');
    assert.equal((await openAlert()).length, 1);
  });

  it('every runner checked and none found resolves the alert', async () => {
    await registry.deactivateRunner('r-bad');
    const first = await audit();
    assert.deepEqual(first.body, { orphans: [], checkedRunners: 2, unchecked: [], alert: 'resolved' });
    assert.equal((await openAlert()).length, 0);
    assert.equal((await audit()).body.alert, 'none');
  });

  it('a snapshot appearing again raises a new alert', async () => {
    putSnapshot(sim, 102, 'job-7-late');
    const { body } = await audit();
    assert.deepEqual(body.orphans, [{ runnerId: 'r102', vmid: 102, snapshot: 'job-7-late' }]);
    assert.equal(body.alert, 'raised');
    const result: any = await database.db.execute(sql`select count(*)::int as n from alerts where key = ${ORPHAN_SNAPSHOTS_ALERT_KEY}`);
    assert.equal(result.rows[0].n, 2);
  });
});
