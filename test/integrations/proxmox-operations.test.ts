// The idempotent backend operations against the simulator: happy paths, faults and their error codes,
// and re-attaching to running tasks so a retried activity never repeats a destructive call.
import { afterAll, beforeAll, beforeEach, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { E2epoolError, isRetryable } from '../../src/domain/errors.js';
import { ProxmoxClient } from '../../src/integrations/proxmox/client.js';
import { ProxmoxTaskError, isSnapshotMissing, isSnapshotNameUsed } from '../../src/integrations/proxmox/errors.js';
import { ProxmoxOperations, type OperationContext } from '../../src/integrations/proxmox/operations.js';
import { startProxmoxSimulator, type ProxmoxSimulator } from '../../sim/proxmox/server.js';

const TOKEN_ID = 'e2epool@pve!ctl';
const SECRET = 'ops-test-secret';
const vm = { node: 'pve1', vmid: 101 };
const zfsVm = { node: 'pve2', vmid: 201 };

let sim: ProxmoxSimulator;
let client: ProxmoxClient;
let ops: ProxmoxOperations;

function ctx(extra: Partial<OperationContext> = {}): OperationContext & { beats: unknown[] } {
  const beats: unknown[] = [];
  return { since: new Date(), pollIntervalMs: 10, heartbeat: (d) => beats.push(d), beats, ...extra };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof E2epoolError, `expected E2epoolError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a failure');
}

beforeAll(async () => {
  sim = await startProxmoxSimulator({
    tokens: [{ tokenId: TOKEN_ID, secret: SECRET }],
    vms: [
      { node: 'pve1', vmid: 101, tags: ['e2epool'], pool: 'ci', disk: { marker: 'clean' } },
      { node: 'pve2', vmid: 201, linearChain: true },
    ],
  });
  client = new ProxmoxClient({ baseUrl: sim.url, tokenId: TOKEN_ID, tokenSecret: SECRET, timeoutMs: 1000 });
  ops = new ProxmoxOperations(client, { powerStateTimeoutMs: 2000 });
});

afterAll(() => sim.stop());
beforeEach(() => sim.reset());

describe('ensureSnapshot', () => {
  test('creates the snapshot, waits for the task and heartbeats its UPID', async () => {
    const c = ctx();
    const result = await ops.ensureSnapshot(vm, 'job-1-1700000000-aa', { vmstate: false }, c);
    assert.equal(result.outcome, 'created');
    assert.ok(c.beats.some((b) => (b as { upid?: string }).upid === result.upid));
    const snap = (await client.listSnapshots('pve1', 101)).find((s) => s.name === 'job-1-1700000000-aa');
    assert.ok(snap && snap.snapstate === undefined, 'snapshot exists and is complete');
    assert.equal(sim.callsTo('snapshot-create')[0]?.params.description, 'e2epool checkpoint job-1-1700000000-aa');
  });

  test('an existing snapshot is success and nothing is posted again', async () => {
    const c = ctx();
    await ops.ensureSnapshot(vm, 'job-2', {}, c);
    assert.equal((await ops.ensureSnapshot(vm, 'job-2', {}, c)).outcome, 'already_exists');
    assert.equal(sim.callsTo('snapshot-create').length, 1);
  });

  test('attaches to a snapshot task started since the first attempt instead of starting another', async () => {
    sim.inject({ type: 'slow', op: 'snapshot-create', durationMs: 200, times: 1 });
    const c = ctx();
    await client.createSnapshot('pve1', 101, 'job-3'); // the first attempt's POST, whose answer was lost
    const result = await ops.ensureSnapshot(vm, 'job-3', {}, c);
    assert.equal(result.outcome, 'attached');
    assert.equal(sim.callsTo('snapshot-create').length, 1);
    assert.equal((await client.listSnapshots('pve1', 101)).find((s) => s.name === 'job-3')?.snapstate, undefined);
  });

  test('a lost answer to the POST (response timeout) is re-attached on retry: one snapshot task', async () => {
    sim.inject({ type: 'timeout', op: 'snapshot-create', afterHandling: true, times: 1 });
    sim.inject({ type: 'slow', op: 'snapshot-create', durationMs: 300, times: 1 });
    const fastClient = new ProxmoxClient({ baseUrl: sim.url, tokenId: TOKEN_ID, tokenSecret: SECRET, timeoutMs: 100 });
    const fastOps = new ProxmoxOperations(fastClient);
    const c = ctx();
    assert.equal(await codeOf(fastOps.ensureSnapshot(vm, 'job-4', {}, c)), 'proxmox_unavailable');
    assert.equal((await fastOps.ensureSnapshot(vm, 'job-4', {}, c)).outcome, 'attached');
    assert.equal(sim.state.tasks.filter((t) => t.type === 'qmsnapshot').length, 1);
  });

  test('"snapshot name already used" from Proxmox is recognised', async () => {
    await ops.ensureSnapshot(vm, 'job-5', {}, ctx());
    const upid = await client.createSnapshot('pve1', 101, 'job-5');
    await sleep(30);
    const status = await client.taskStatus('pve1', upid);
    assert.equal(status.exitstatus, "snapshot name 'job-5' already used");
    assert.ok(isSnapshotNameUsed(new ProxmoxTaskError('proxmox_task_failed', upid, status.exitstatus!)));
  });

  test('a failed task is proxmox_task_failed with its exit status, and leaves no snapshot', async () => {
    sim.inject({ type: 'task-fail', op: 'snapshot-create', vmid: 101, exitstatus: "zfs error: out of space", times: 1 });
    const err = await ops.ensureSnapshot(vm, 'job-6', {}, ctx()).catch((e: unknown) => e);
    assert.ok(err instanceof ProxmoxTaskError);
    assert.equal(err.code, 'proxmox_task_failed');
    assert.equal(err.exitstatus, 'zfs error: out of space');
    assert.equal(isRetryable(err.code), false);
    assert.equal((await client.listSnapshots('pve1', 101)).some((s) => s.name === 'job-6'), false);
    assert.equal((await client.vmStatus('pve1', 101)).lock, undefined);
  });

  test('a stuck lock is proxmox_locked (retryable) until unlocked', async () => {
    sim.inject({ type: 'stuck-lock', vmid: 101, lock: 'snapshot' });
    const code = await codeOf(ops.ensureSnapshot(vm, 'job-7', {}, ctx()));
    assert.equal(code, 'proxmox_locked');
    assert.equal(isRetryable('proxmox_locked'), true);
    sim.state.setLock(101, undefined);
    assert.equal((await ops.ensureSnapshot(vm, 'job-7', {}, ctx())).outcome, 'created');
  });

  test('a 5xx on the POST is proxmox_unavailable and a retry creates the snapshot once', async () => {
    sim.inject({ type: 'http-error', op: 'snapshot-create', status: 500, message: 'got no worker', times: 1 });
    const c = ctx();
    assert.equal(await codeOf(ops.ensureSnapshot(vm, 'job-8', {}, c)), 'proxmox_unavailable');
    assert.equal((await ops.ensureSnapshot(vm, 'job-8', {}, c)).outcome, 'created');
    assert.equal(sim.state.tasks.filter((t) => t.type === 'qmsnapshot').length, 1);
  });
});

describe('stopVm / startVm', () => {
  test('stop then start, reporting power changes to the hook', async () => {
    const events: string[] = [];
    const off = sim.onVmPowerChange((vmid, status) => events.push(`${vmid}:${status}`));
    try {
      assert.equal((await ops.stopVm(vm, ctx())).outcome, 'done');
      assert.equal((await client.vmStatus('pve1', 101)).status, 'stopped');
      assert.equal((await ops.startVm(vm, ctx())).outcome, 'done');
      assert.equal((await client.vmStatus('pve1', 101)).status, 'running');
    } finally {
      off();
    }
    assert.deepEqual(events, ['101:stopped', '101:running']);
  });

  test('already stopped / already running are success without a POST', async () => {
    await ops.stopVm(vm, ctx());
    assert.equal((await ops.stopVm(vm, ctx())).outcome, 'already');
    assert.equal(sim.callsTo('stop').length, 1);
    await ops.startVm(vm, ctx());
    assert.equal((await ops.startVm(vm, ctx())).outcome, 'already');
    assert.equal(sim.callsTo('start').length, 1);
  });

  test('attaches to a running stop task', async () => {
    sim.inject({ type: 'slow', op: 'stop', durationMs: 150, times: 1 });
    const c = ctx();
    await client.stopVm('pve1', 101);
    assert.equal((await ops.stopVm(vm, c)).outcome, 'attached');
    assert.equal(sim.callsTo('stop').length, 1);
    assert.equal((await client.vmStatus('pve1', 101)).status, 'stopped');
  });

  test('a failed start task is proxmox_task_failed', async () => {
    await ops.stopVm(vm, ctx());
    sim.inject({ type: 'task-fail', op: 'start', exitstatus: 'start failed: QEMU exited with code 1' });
    assert.equal(await codeOf(ops.startVm(vm, ctx())), 'proxmox_task_failed');
  });
});

describe('rollbackToSnapshot', () => {
  test('a retried rollback re-attaches to the running task; exactly one rollback POST, also after it finished', async () => {
    await ops.ensureSnapshot(vm, 'job-r1', {}, ctx());
    await ops.stopVm(vm, ctx());
    sim.inject({ type: 'slow', op: 'snapshot-rollback', durationMs: 300, times: 1 });
    const c = ctx();
    const first = ops.rollbackToSnapshot(vm, 'job-r1', c);
    // The retry starts while the first attempt's task is still running.
    while (sim.callsTo('snapshot-rollback').length === 0) await sleep(5);
    await sleep(20);
    assert.equal((await client.vmStatus('pve1', 101)).lock, 'rollback');
    const retry = await ops.rollbackToSnapshot(vm, 'job-r1', c);
    assert.equal(retry.outcome, 'attached');
    const original = await first;
    assert.equal(original.outcome, 'rolled_back');
    assert.equal(retry.upid, original.upid);
    // And once more after it finished.
    const late = await ops.rollbackToSnapshot(vm, 'job-r1', c);
    assert.equal(late.outcome, 'already_done');
    assert.equal(late.upid, original.upid);
    assert.equal(sim.callsTo('snapshot-rollback').length, 1);
    assert.equal(sim.state.tasks.filter((t) => t.type === 'qmrollback').length, 1);
  });

  test('a rollback whose POST answer was lost is attached to, not repeated', async () => {
    await ops.ensureSnapshot(vm, 'job-r2', {}, ctx());
    sim.inject({ type: 'timeout', op: 'snapshot-rollback', afterHandling: true, times: 1 });
    sim.inject({ type: 'slow', op: 'snapshot-rollback', durationMs: 250, times: 1 });
    const fastOps = new ProxmoxOperations(new ProxmoxClient({ baseUrl: sim.url, tokenId: TOKEN_ID, tokenSecret: SECRET, timeoutMs: 100 }));
    const c = ctx();
    assert.equal(await codeOf(fastOps.rollbackToSnapshot(vm, 'job-r2', c)), 'proxmox_unavailable');
    assert.equal((await fastOps.rollbackToSnapshot(vm, 'job-r2', c)).outcome, 'attached');
    assert.equal(sim.state.tasks.filter((t) => t.type === 'qmrollback').length, 1);
  });

  test('a retry after a failed rollback task starts no second rollback and fails for good', async () => {
    await ops.ensureSnapshot(vm, 'job-r4', {}, ctx());
    sim.inject({ type: 'task-fail', op: 'snapshot-rollback', exitstatus: "can't lock file '/var/lock/qemu-server/lock-101.conf' - got timeout", times: 1 });
    const c = ctx();
    const first = await ops.rollbackToSnapshot(vm, 'job-r4', c).catch((e: unknown) => e);
    assert.ok(first instanceof E2epoolError);
    // The retry carries the task its first attempt waited for (the activity's last heartbeat).
    const previousUpid = (c.beats.filter((b) => (b as { upid?: string }).upid).at(-1) as { upid: string }).upid;
    const retry = await ops.rollbackToSnapshot(vm, 'job-r4', { ...c, previousUpid }).catch((e: unknown) => e);
    assert.ok(retry instanceof E2epoolError);
    assert.equal(retry.code, 'proxmox_task_failed');
    assert.equal(isRetryable(retry.code), false);
    assert.equal(sim.state.tasks.filter((t) => t.type === 'qmrollback').length, 1);
    // Another activity (an operator's retry) rolls back again.
    assert.equal((await ops.rollbackToSnapshot(vm, 'job-r4', ctx())).outcome, 'rolled_back');
  });

  test('a new activity (later since) rolls back again', async () => {
    await ops.ensureSnapshot(vm, 'job-r3', {}, ctx());
    await ops.rollbackToSnapshot(vm, 'job-r3', ctx());
    const noTolerance = new ProxmoxOperations(client, { clockSkewToleranceMs: 0 });
    assert.equal((await noTolerance.rollbackToSnapshot(vm, 'job-r3', ctx({ since: new Date(Date.now() + 1000) }))).outcome, 'rolled_back');
    assert.equal(sim.callsTo('snapshot-rollback').length, 2);
  });

  test('missing snapshot → proxmox_snapshot_missing; not most recent on a linear chain → proxmox_not_most_recent', async () => {
    assert.equal(await codeOf(ops.rollbackToSnapshot(vm, 'job-nope', ctx())), 'proxmox_snapshot_missing');
    await ops.ensureSnapshot(zfsVm, 'job-a', {}, ctx());
    await ops.ensureSnapshot(zfsVm, 'job-b', {}, ctx());
    const err = await ops.rollbackToSnapshot(zfsVm, 'job-a', ctx()).catch((e: unknown) => e);
    assert.ok(err instanceof ProxmoxTaskError);
    assert.equal(err.code, 'proxmox_not_most_recent');
    assert.equal(isRetryable(err.code), false);
    assert.equal((await ops.rollbackToSnapshot(zfsVm, 'job-b', ctx({ since: new Date(Date.now() + 6000) }))).outcome, 'rolled_back');
  });

  test('a 5xx on the rollback POST is retryable and the retry posts once more', async () => {
    await ops.ensureSnapshot(vm, 'job-r4', {}, ctx());
    sim.inject({ type: 'http-error', op: 'snapshot-rollback', times: 1 });
    const c = ctx();
    assert.equal(await codeOf(ops.rollbackToSnapshot(vm, 'job-r4', c)), 'proxmox_unavailable');
    assert.equal((await ops.rollbackToSnapshot(vm, 'job-r4', c)).outcome, 'rolled_back');
    assert.equal(sim.state.tasks.filter((t) => t.type === 'qmrollback').length, 1);
  });

  test('a hanging task status poll times out as proxmox_unavailable, and the retry attaches', async () => {
    await ops.ensureSnapshot(vm, 'job-r5', {}, ctx());
    sim.inject({ type: 'timeout', op: 'task-status', times: 1 });
    const fastOps = new ProxmoxOperations(new ProxmoxClient({ baseUrl: sim.url, tokenId: TOKEN_ID, tokenSecret: SECRET, timeoutMs: 100 }));
    const c = ctx();
    assert.equal(await codeOf(fastOps.rollbackToSnapshot(vm, 'job-r5', c)), 'proxmox_unavailable');
    assert.notEqual((await fastOps.rollbackToSnapshot(vm, 'job-r5', c)).outcome, 'rolled_back');
    assert.equal(sim.callsTo('snapshot-rollback').length, 1);
  });

  test('an abort signal stops the wait', async () => {
    await ops.ensureSnapshot(vm, 'job-r6', {}, ctx());
    sim.inject({ type: 'slow', op: 'snapshot-rollback', durationMs: 500, times: 1 });
    const controller = new AbortController();
    const pending = ops.rollbackToSnapshot(vm, 'job-r6', ctx({ signal: controller.signal }));
    await sleep(50);
    controller.abort();
    await assert.rejects(pending, (err: Error) => err.name === 'AbortError');
  });
});

describe('rollbackVm', () => {
  test('stop → rollback → start restores the disk captured by the snapshot', async () => {
    sim.state.setDisk(101, { marker: 'clean', files: ['a'] }, false);
    await ops.ensureSnapshot(vm, 'job-v1', {}, ctx());
    sim.state.setDisk(101, { marker: 'dirty', files: ['a', 'junk'] }, false);
    const events: string[] = [];
    const off = sim.onVmPowerChange((_vmid, status) => events.push(status));
    try {
      assert.equal((await ops.rollbackVm(vm, 'job-v1', ctx())).outcome, 'rolled_back');
    } finally {
      off();
    }
    assert.deepEqual(sim.state.vm(101).disk, { marker: 'clean', files: ['a'] });
    assert.equal((await client.vmStatus('pve1', 101)).status, 'running');
    assert.deepEqual(events, ['stopped', 'running']);
    const current = (await client.listSnapshots('pve1', 101)).find((s) => s.name === 'current');
    assert.equal(current?.parent, 'job-v1');
  });

  test('retried after it completed: no second stop, rollback or start', async () => {
    await ops.ensureSnapshot(vm, 'job-v2', {}, ctx());
    const c = ctx();
    await ops.rollbackVm(vm, 'job-v2', c);
    sim.state.setDisk(101, { marker: 'written after the reset' });
    await ops.rollbackVm(vm, 'job-v2', c);
    assert.equal(sim.callsTo('stop').length, 1);
    assert.equal(sim.callsTo('snapshot-rollback').length, 1);
    assert.equal(sim.callsTo('start').length, 1);
    assert.equal(sim.state.vm(101).disk.marker, 'written after the reset');
  });

  test('retried while the rollback runs: attaches, then starts once', async () => {
    await ops.ensureSnapshot(vm, 'job-v3', {}, ctx());
    sim.inject({ type: 'slow', op: 'snapshot-rollback', durationMs: 200, times: 1 });
    const c = ctx();
    const first = ops.rollbackVm(vm, 'job-v3', c).catch((e: unknown) => e);
    while (sim.callsTo('snapshot-rollback').length === 0) await sleep(5);
    const second = await ops.rollbackVm(vm, 'job-v3', c);
    assert.equal(second.outcome, 'attached');
    assert.equal(((await first) as { outcome?: string }).outcome, 'rolled_back');
    assert.equal(sim.callsTo('snapshot-rollback').length, 1);
    assert.equal(sim.callsTo('stop').length, 1);
    assert.equal((await client.vmStatus('pve1', 101)).status, 'running');
  });
});

describe('deleteSnapshot', () => {
  test('a compensation waits for the snapshot task the create started, then deletes what it wrote', async () => {
    sim.inject({ type: 'slow', op: 'snapshot-create', durationMs: 300, times: 1 });
    const since = new Date();
    await client.createSnapshot('pve1', 101, 'job-comp'); // the create gave up while this task ran
    const result = await ops.deleteSnapshot(vm, 'job-comp', ctx(), { snapshotTasksSince: since });
    assert.equal(result.outcome, 'deleted', 'the snapshot the task wrote is deleted, not missed');
    assert.equal((await client.listSnapshots('pve1', 101)).some((s) => s.name === 'job-comp'), false, 'no snapshot leaked');
  });

  test('deletes; again is success without a second DELETE; never-existing is success without any', async () => {
    await ops.ensureSnapshot(vm, 'job-d1', {}, ctx());
    assert.equal((await ops.deleteSnapshot(vm, 'job-d1', ctx())).outcome, 'deleted');
    assert.equal((await ops.deleteSnapshot(vm, 'job-d1', ctx())).outcome, 'already_gone');
    assert.equal((await ops.deleteSnapshot(vm, 'job-never', ctx())).outcome, 'already_gone');
    assert.equal(sim.callsTo('snapshot-delete').length, 1);
  });

  test('attaches to a running delete task', async () => {
    await ops.ensureSnapshot(vm, 'job-d2', {}, ctx());
    sim.inject({ type: 'slow', op: 'snapshot-delete', durationMs: 150, times: 1 });
    const c = ctx();
    await client.deleteSnapshot('pve1', 101, 'job-d2');
    assert.equal((await client.listSnapshots('pve1', 101)).find((s) => s.name === 'job-d2')?.snapstate, 'delete');
    assert.equal((await ops.deleteSnapshot(vm, 'job-d2', c)).outcome, 'attached');
    assert.equal(sim.callsTo('snapshot-delete').length, 1);
  });

  test('"does not exist" from Proxmox is recognised', async () => {
    const upid = await client.deleteSnapshot('pve1', 101, 'job-missing');
    await sleep(30);
    const status = await client.taskStatus('pve1', upid);
    assert.equal(status.exitstatus, "snapshot 'job-missing' does not exist");
    assert.ok(isSnapshotMissing(new ProxmoxTaskError('proxmox_snapshot_missing', upid, status.exitstatus!)));
  });

  test('an unrelated "does not exist" (storage) is a failure while the snapshot is still listed', async () => {
    await ops.ensureSnapshot(vm, 'job-d4', {}, ctx());
    sim.inject({ type: 'task-fail', op: 'snapshot-delete', exitstatus: "storage 'local-zfs' does not exist", times: 1 });
    assert.equal(await codeOf(ops.deleteSnapshot(vm, 'job-d4', ctx())), 'proxmox_task_failed');
    assert.ok((await client.listSnapshots('pve1', 101)).some((s) => s.name === 'job-d4'), 'the snapshot is still there');
    assert.equal(isSnapshotMissing(new ProxmoxTaskError('proxmox_task_failed', 'UPID:x', "storage 'local-zfs' does not exist")), false);
    assert.equal((await ops.deleteSnapshot(vm, 'job-d4', ctx())).outcome, 'deleted');
  });

  test('a failed delete task is proxmox_task_failed and keeps the snapshot', async () => {
    await ops.ensureSnapshot(vm, 'job-d3', {}, ctx());
    sim.inject({ type: 'task-fail', op: 'snapshot-delete', exitstatus: 'zfs destroy failed: dataset is busy', times: 1 });
    assert.equal(await codeOf(ops.deleteSnapshot(vm, 'job-d3', ctx())), 'proxmox_task_failed');
    assert.equal((await client.listSnapshots('pve1', 101)).find((s) => s.name === 'job-d3')?.snapstate, undefined);
  });
});

describe('assertVmMatches and listOurSnapshots', () => {
  test('passes for the same VM, tag and pool; config_changed otherwise', async () => {
    assert.deepEqual(await ops.assertVmMatches(vm, { vmid: 101, requiredTag: 'e2epool', requiredPool: 'ci' }), { name: 'runner-101', tags: ['e2epool'] });
    assert.equal(await codeOf(ops.assertVmMatches(vm, { vmid: 102 })), 'config_changed');
    assert.equal(await codeOf(ops.assertVmMatches(vm, { vmid: 101, requiredTag: 'other' })), 'config_changed');
    assert.equal(await codeOf(ops.assertVmMatches(vm, { vmid: 101, requiredPool: 'prod' })), 'config_changed');
    assert.equal(await codeOf(ops.assertVmMatches({ node: 'pve2', vmid: 101 }, { vmid: 101 })), 'config_changed');
  });

  test('lists only job- snapshots', async () => {
    await ops.ensureSnapshot(vm, 'job-o1', {}, ctx());
    await ops.ensureSnapshot(vm, 'manual-before-upgrade', {}, ctx());
    assert.deepEqual((await ops.listOurSnapshots(vm)).map((s) => s.name), ['job-o1']);
  });
});
