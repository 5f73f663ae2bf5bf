// Backend activities for real: runners from the registry (PGlite), the Proxmox simulator over HTTP and
// HTTPS, failures mapped to Temporal failures, retries that re-attach, and per-node caps held in
// PostgreSQL across two instances.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, beforeEach, describe, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import { createBackendActivities, proxmoxBaseUrl, type BackendDeps } from '../../activities/backend.js';
import { withFailureMapping } from '../../activities/failure-mapping.js';
import type { BackendActivities } from '../../activities/types.js';
import { nodeLeases } from '../../db/schema.js';
import { E2epoolError } from '../../src/domain/errors.js';
import type { RunnerRegistry } from '../../src/inventory/registry.js';
import { startProxmoxSimulator, type ProxmoxSimulator } from '../../sim/proxmox/index.js';
import { createPgliteDatabase, createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { createProxmoxRunner, failureOf, newRegistry, runActivity } from '../helpers/activities-harness.js';
import { eventually } from '../helpers/eventually.js';
import { captureLogs } from '../helpers/log-capture.js';

let sim: ProxmoxSimulator;
let database: TestDatabase;
let registry: RunnerRegistry;
const log = captureLogs();

function backend(overrides: Partial<BackendDeps> = {}): BackendActivities {
  return withFailureMapping(
    createBackendActivities({
      registry,
      db: database.db,
      logger: log.logger,
      httpTimeoutMs: 2000,
      instanceId: 'inst-a',
      tuning: { pollIntervalMs: 10, powerStateTimeoutMs: 2000, leaseRetryMs: 20 },
      ...overrides,
    }) as any,
  ) as unknown as BackendActivities;
}

const ref = (runnerId: string, name = 'job-1-1700000000-abcd0001') => ({ name, runnerId });

beforeAll(async () => {
  sim = await startProxmoxSimulator({
    https: true,
    vms: [
      { node: 'pve1', vmid: 101, tags: ['e2epool'], pool: 'ci', disk: { marker: 'clean' } },
      { node: 'pve1', vmid: 102 },
    ],
  });
  database = await createPgliteDatabase();
  registry = newRegistry(database.db);
  await createProxmoxRunner(registry, sim, { runner_id: 'pve-r1', proxmox_required_tag: 'e2epool', proxmox_pool: 'ci' });
  await createProxmoxRunner(registry, sim, { runner_id: 'pve-ram', proxmox_vmid: 102, snapshot_vmstate: true });
  await registry.createRunner({ runner_id: 'metal-1', backend: 'bare_metal', reset_cmd: '/usr/local/bin/reset' });
});

afterAll(async () => {
  await sim?.stop();
  await database?.drop();
});

beforeEach(() => sim.reset());

describe('Proxmox runner from the registry', () => {
  it('snapshots (disk only), stops, rolls back, starts and deletes against the simulator', async () => {
    const acts = backend();
    const r = ref('pve-r1');
    const snap = runActivity(acts.takeSnapshot, [r]);
    assert.deepEqual(await snap.result, { vmid: 101 });
    assert.ok(snap.heartbeats.some((b) => typeof (b as { upid?: string }).upid === 'string'), 'the snapshot wait heartbeats the UPID');
    const create = sim.callsTo('snapshot-create', 101);
    assert.equal(create.length, 1);
    assert.equal(create[0]!.params.snapname, r.name);
    assert.equal(create[0]!.params.vmstate, '0', 'disk-only unless the runner asks for RAM');

    sim.state.setDisk(101, { marker: 'dirty' });
    await runActivity(acts.assertVmUnchanged, [{ ...r, vmid: 101 }]).result;
    await runActivity(acts.stopVm, [r]).result;
    assert.equal(sim.state.vms.get(101)!.status, 'stopped');
    await runActivity(acts.rollbackVm, [r]).result;
    assert.equal(sim.state.vms.get(101)!.disk.marker, 'clean', 'the disk is back to the snapshot');
    assert.equal(sim.state.vms.get(101)!.status, 'stopped', 'rollback only: start is its own activity');
    await runActivity(acts.startVm, [r]).result;
    assert.equal(sim.state.vms.get(101)!.status, 'running');
    await runActivity(acts.deleteSnapshot, [r]).result;
    assert.equal(sim.state.vms.get(101)!.snapshots.has(r.name), false);
    // Idempotent: again is fine and posts nothing.
    await runActivity(acts.deleteSnapshot, [r]).result;
    await runActivity(acts.takeSnapshot, [ref('pve-r1', 'job-2-1700000000-abcd0002')]).result;
    await runActivity(acts.takeSnapshot, [ref('pve-r1', 'job-2-1700000000-abcd0002')]).result;
    assert.equal(sim.callsTo('snapshot-delete', 101).length, 1);
    assert.equal(sim.callsTo('snapshot-create', 101).length, 2);
    assert.deepEqual(await database.db.select().from(nodeLeases), [], 'every node lease was released');
  });

  it('a runner with snapshot_vmstate takes RAM snapshots', async () => {
    await runActivity(backend().takeSnapshot, [ref('pve-ram')]).result;
    assert.equal(sim.callsTo('snapshot-create', 102)[0]!.params.vmstate, '1');
  });

  it('a retried rollback (same first-scheduled time) re-attaches to the running task: one rollback POST', async () => {
    const r = ref('pve-r1', 'job-3-1700000000-abcd0003');
    await runActivity(backend().takeSnapshot, [r]).result;
    sim.state.setDisk(101, { marker: 'dirty' });
    // The first attempt's POST is carried out but its answer is lost; the task runs on.
    sim.inject({ type: 'timeout', op: 'snapshot-rollback', afterHandling: true, times: 1 });
    sim.inject({ type: 'slow', op: 'snapshot-rollback', durationMs: 600, times: 1 });
    const acts = backend({ httpTimeoutMs: 150 });
    const scheduledTimestampMs = Date.now();
    const first = await failureOf(runActivity(acts.rollbackVm, [r], { scheduledTimestampMs, attempt: 1 }).result);
    assert.equal(first.type, 'proxmox_unavailable');
    assert.equal(first.nonRetryable, false, 'Temporal retries it');
    assert.equal(sim.state.vms.get(101)!.lock, 'rollback', 'the first attempt left a rollback running');
    const retry = runActivity(acts.rollbackVm, [r], { scheduledTimestampMs, attempt: 2, currentAttemptScheduledTimestampMs: Date.now() });
    await retry.result;
    assert.equal(sim.callsTo('snapshot-rollback').length, 1, 'exactly one rollback POST');
    assert.equal(sim.state.tasks.filter((t) => t.type === 'qmrollback').length, 1);
    assert.equal(sim.state.vms.get(101)!.disk.marker, 'clean');
    assert.ok(retry.heartbeats.some((b) => (b as { op?: string }).op === 'rollback'), 'the retry heartbeats while it waits for the task');
    // A third attempt after the task finished does not roll back again either.
    await runActivity(acts.rollbackVm, [r], { scheduledTimestampMs, attempt: 3 }).result;
    assert.equal(sim.callsTo('snapshot-rollback').length, 1);
  });

  it('each simulator fault gives its code and retryability', async () => {
    const acts = backend({ httpTimeoutMs: 200 });
    const r = ref('pve-r1', 'job-4-1700000000-abcd0004');
    const cases: Array<{ fault: Parameters<ProxmoxSimulator['inject']>[0]; step: keyof BackendActivities; type: string; retryable: boolean }> = [
      { fault: { type: 'http-error', op: 'snapshot-create', status: 500, message: 'internal error', times: 1 }, step: 'takeSnapshot', type: 'proxmox_unavailable', retryable: true },
      { fault: { type: 'http-error', op: 'snapshot-list', status: 403, message: 'Permission check failed (/vms/101, VM.Audit)', times: 1 }, step: 'takeSnapshot', type: 'proxmox_auth', retryable: false },
      { fault: { type: 'http-error', op: 'stop', status: 400, message: 'invalid parameter', times: 1 }, step: 'stopVm', type: 'proxmox_bad_request', retryable: false },
      { fault: { type: 'timeout', op: 'task-list', times: 1 }, step: 'startVm', type: 'proxmox_unavailable', retryable: true },
      { fault: { type: 'task-fail', op: 'snapshot-create', exitstatus: 'zfs error: out of space', times: 1 }, step: 'takeSnapshot', type: 'proxmox_task_failed', retryable: false },
      { fault: { type: 'task-fail', op: 'snapshot-create', exitstatus: "VM 101 is locked (backup)", times: 1 }, step: 'takeSnapshot', type: 'proxmox_locked', retryable: true },
      { fault: { type: 'stuck-lock', vmid: 101, lock: 'backup' }, step: 'takeSnapshot', type: 'proxmox_locked', retryable: true },
    ];
    for (const c of cases) {
      sim.reset();
      sim.inject(c.fault);
      const failure = await failureOf(runActivity(acts[c.step] as (x: unknown) => Promise<unknown>, [r]).result);
      assert.equal(failure.type, c.type, `${c.fault.type} ${'op' in c.fault ? c.fault.op : ''}: ${failure.message}`);
      assert.equal(failure.nonRetryable, !c.retryable, `${c.type} retryable=${c.retryable}`);
      assert.ok(!failure.message.includes('sim-secret'), 'the token secret never appears in a failure');
    }
    // A slow task is no failure: the activity waits, heartbeating.
    sim.reset();
    sim.inject({ type: 'slow', op: 'snapshot-create', durationMs: 200, times: 1 });
    const slow = runActivity(acts.takeSnapshot, [r]);
    assert.deepEqual(await slow.result, { vmid: 101 });
    assert.ok(slow.heartbeats.length >= 3, `heartbeats while waiting: ${slow.heartbeats.length}`);
    assert.deepEqual(await database.db.select().from(nodeLeases), [], 'failed attempts released their node leases too');
  });

  it('assertVmUnchanged: another VM id, a missing tag or another pool is config_changed (not retried)', async () => {
    const acts = backend();
    const r = ref('pve-r1');
    let f = await failureOf(runActivity(acts.assertVmUnchanged, [{ ...r, vmid: 999 }]).result);
    assert.equal(f.type, 'config_changed');
    assert.equal(f.nonRetryable, true);
    sim.state.vms.get(101)!.tags = ['other'];
    f = await failureOf(runActivity(acts.assertVmUnchanged, [{ ...r, vmid: 101 }]).result);
    assert.equal(f.type, 'config_changed');
    assert.match(f.message, /tag e2epool/);
    sim.reset();
    sim.state.vms.get(101)!.pool = 'elsewhere';
    f = await failureOf(runActivity(acts.assertVmUnchanged, [{ ...r, vmid: 101 }]).result);
    assert.equal(f.type, 'config_changed');
    assert.match(f.message, /pool ci/);
  });
});

describe('bare metal and unknown runners', () => {
  it('bare metal: no snapshot (vmid null), nothing to delete, VM steps are bad_request', async () => {
    const acts = backend();
    const r = ref('metal-1');
    assert.deepEqual(await runActivity(acts.takeSnapshot, [r]).result, { vmid: null });
    await runActivity(acts.deleteSnapshot, [r]).result;
    for (const step of ['stopVm', 'rollbackVm', 'startVm'] as const) {
      const f = await failureOf(runActivity(acts[step], [r]).result);
      assert.equal(f.type, 'bad_request', step);
      assert.equal(f.nonRetryable, true);
    }
    assert.equal(sim.calls.length, 0, 'Proxmox was never called');
  });

  it('an unknown or deactivated runner is runner_not_found, not retried', async () => {
    const acts = backend();
    let f = await failureOf(runActivity(acts.takeSnapshot, [ref('nobody')]).result);
    assert.equal(f.type, 'runner_not_found');
    assert.equal(f.nonRetryable, true);
    await registry.createRunner({ runner_id: 'metal-gone', backend: 'bare_metal', reset_cmd: 'x' });
    await registry.deactivateRunner('metal-gone');
    f = await failureOf(runActivity(acts.deleteSnapshot, [ref('metal-gone')]).result);
    assert.equal(f.type, 'runner_not_found');
  });
});

describe('connection settings', () => {
  it('proxmox_host accepts host, host:port and full URLs', () => {
    assert.equal(proxmoxBaseUrl('pve.example.org'), 'https://pve.example.org:8006');
    assert.equal(proxmoxBaseUrl('pve.example.org:8443'), 'https://pve.example.org:8443');
    assert.equal(proxmoxBaseUrl('10.0.0.5'), 'https://10.0.0.5:8006');
    assert.equal(proxmoxBaseUrl('https://pve.example.org:8006/'), 'https://pve.example.org:8006');
    assert.equal(proxmoxBaseUrl('https://pve.example.org/api2/json'), 'https://pve.example.org');
    assert.equal(proxmoxBaseUrl('http://127.0.0.1:1234'), 'http://127.0.0.1:1234');
    for (const bad of ['', 'ftp://pve', 'https://user:pw@pve', 'https://pve/?x=1', 'pve:notaport']) {
      assert.throws(() => proxmoxBaseUrl(bad), (e: unknown) => e instanceof E2epoolError && e.code === 'validation', bad);
    }
  });

  it('TLS per runner: a pinned fingerprint works, verification off works with a warning, an untrusted certificate is proxmox_auth', async () => {
    const port = new URL(sim.httpsUrl!).port;
    await createProxmoxRunner(registry, sim, { runner_id: 'pve-pinned', proxmox_host: `127.0.0.1:${port}`, proxmox_fingerprint: sim.fingerprint });
    await createProxmoxRunner(registry, sim, { runner_id: 'pve-insecure', proxmox_host: sim.httpsUrl, proxmox_verify_tls: false });
    await createProxmoxRunner(registry, sim, { runner_id: 'pve-verified', proxmox_host: sim.httpsUrl });
    const acts = backend();
    assert.deepEqual(await runActivity(acts.takeSnapshot, [ref('pve-pinned', 'job-5-1700000000-abcd0005')]).result, { vmid: 101 });
    assert.deepEqual(await runActivity(acts.takeSnapshot, [ref('pve-insecure', 'job-6-1700000000-abcd0006')]).result, { vmid: 101 });
    assert.ok(log.lines.some((l) => l.includes('TLS verification is disabled')), 'insecure TLS is warned about');
    const f = await failureOf(runActivity(acts.takeSnapshot, [ref('pve-verified', 'job-7-1700000000-abcd0007')]).result);
    assert.equal(f.type, 'proxmox_auth');
    assert.ok(!log.lines.some((l) => l.includes('sim-secret')), 'the Proxmox secret is never logged');
  });
});

describe('per-node caps across instances (PostgreSQL)', () => {
  let pg: TestDatabase;
  let pgRegistry: RunnerRegistry;
  let capSim: ProxmoxSimulator;

  beforeAll(async () => {
    pg = await createPostgresDatabase();
    pgRegistry = newRegistry(pg.db);
    capSim = await startProxmoxSimulator({
      vms: [101, 102, 103, 104, 105].map((vmid) => ({ node: 'pve1', vmid })).concat([{ node: 'pve2', vmid: 201 }]),
    });
    for (const vmid of [101, 102, 103, 104, 105]) await createProxmoxRunner(pgRegistry, capSim, { runner_id: `cap-${vmid}`, proxmox_vmid: vmid });
    await createProxmoxRunner(pgRegistry, capSim, { runner_id: 'cap-201', proxmox_node: 'pve2', proxmox_vmid: 201 });
  });
  afterAll(async () => {
    await capSim?.stop();
    await pg?.drop();
  });

  function instance(instanceId: string, nodeCap: number): BackendActivities {
    return withFailureMapping(
      createBackendActivities({
        registry: pgRegistry,
        db: pg.db,
        logger: log.logger,
        httpTimeoutMs: 2000,
        instanceId,
        nodeCap,
        tuning: { pollIntervalMs: 10, leaseRetryMs: 15, leaseTtlSeconds: 30 },
      }) as any,
    ) as unknown as BackendActivities;
  }

  it('at most nodeCap operations run per node, whichever instance runs them; other nodes are not held up', async () => {
    capSim.reset();
    const a = instance('inst-a', 2);
    const b = instance('inst-b', 2);
    capSim.state.durations.qmsnapshot = 250;
    let maxPve1 = 0;
    let maxPve2 = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const running = capSim.state.tasks.filter((t) => t.status === 'running');
        maxPve1 = Math.max(maxPve1, running.filter((t) => t.node === 'pve1').length);
        maxPve2 = Math.max(maxPve2, running.filter((t) => t.node === 'pve2').length);
        await sleep(3);
      }
    })();
    const runs = [
      runActivity(a.takeSnapshot, [ref('cap-101', 'job-11-1700000000-cafe0001')]),
      runActivity(b.takeSnapshot, [ref('cap-102', 'job-12-1700000000-cafe0002')]),
      runActivity(a.takeSnapshot, [ref('cap-103', 'job-13-1700000000-cafe0003')]),
      runActivity(b.takeSnapshot, [ref('cap-104', 'job-14-1700000000-cafe0004')]),
      runActivity(a.takeSnapshot, [ref('cap-105', 'job-15-1700000000-cafe0005')]),
      runActivity(b.takeSnapshot, [ref('cap-201', 'job-16-1700000000-cafe0006')]),
    ];
    await Promise.all(runs.map((r) => r.result));
    sampling = false;
    await sampler;
    assert.equal(maxPve1, 2, 'two snapshot tasks at most on pve1, and the cap was reached');
    assert.equal(maxPve2, 1);
    assert.equal(capSim.state.tasks.filter((t) => t.type === 'qmsnapshot').length, 6);
    assert.ok(runs.some((r) => r.heartbeats.some((h) => (h as { waitingForNodeSlot?: string }).waitingForNodeSlot === 'pve1')), 'a waiting activity heartbeats');
    assert.deepEqual(await pg.db.select().from(nodeLeases), []);
  });

  it('a live lease of a crashed instance blocks until it expires; an expired one never blocks', async () => {
    capSim.reset();
    const a = instance('inst-a', 1);
    const nodeKey = `${capSim.url}|pve1`;
    await pg.db.insert(nodeLeases).values({ nodeKey, holder: 'dead-instance:old', expiresAt: sql`now() - interval '1 second'` });
    await runActivity(a.takeSnapshot, [ref('cap-101', 'job-21-1700000000-cafe0011')]).result;
    assert.equal((await pg.db.select().from(nodeLeases)).length, 0, 'the expired lease was cleared');

    await pg.db.insert(nodeLeases).values({ nodeKey, holder: 'dead-instance:live', expiresAt: sql`now() + interval '400 milliseconds'` });
    const started = Date.now();
    const blocked = runActivity(a.takeSnapshot, [ref('cap-102', 'job-22-1700000000-cafe0012')]);
    await eventually('a heartbeat of the blocked takeSnapshot', () => blocked.heartbeats.length > 0, { timeoutMs: 2000, intervalMs: 5 });
    assert.equal(capSim.callsTo('snapshot-create', 102).length, 0, 'nothing posted while the node is full');
    await blocked.result;
    assert.ok(Date.now() - started >= 300, 'waited for the lease to expire');
  });

  it('holds the cap when the lease outlives its TTL (renewed while held)', async () => {
    capSim.reset();
    const slowHolder = withFailureMapping(
      createBackendActivities({ registry: pgRegistry, db: pg.db, logger: log.logger, httpTimeoutMs: 2000, instanceId: 'inst-a', nodeCap: 1, tuning: { pollIntervalMs: 10, leaseRetryMs: 15, leaseTtlSeconds: 0.3 } }) as any,
    ) as unknown as BackendActivities;
    const other = instance('inst-b', 1);
    capSim.inject({ type: 'slow', op: 'snapshot-create', vmid: 103, durationMs: 900, times: 1 });
    const first = runActivity(slowHolder.takeSnapshot, [ref('cap-103', 'job-31-1700000000-cafe0021')]);
    await eventually('the snapshot-create call for VM 103', () => capSim.callsTo('snapshot-create', 103).length === 1, { timeoutMs: 5000, intervalMs: 5 });
    const second = runActivity(other.takeSnapshot, [ref('cap-104', 'job-32-1700000000-cafe0022')]);
    await sleep(600); // two lease lifetimes
    assert.equal(capSim.callsTo('snapshot-create', 104).length, 0, 'the renewed lease still blocks the other instance');
    await first.result;
    await second.result;
    assert.equal(capSim.callsTo('snapshot-create', 104).length, 1);
  });
});
