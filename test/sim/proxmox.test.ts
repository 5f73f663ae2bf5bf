// The Proxmox simulator's own behaviour: snapshot states and locks while tasks run, rollback rules,
// profiles, the /_sim admin API, call records and the `e2epool sim proxmox` command.
import { afterAll, beforeAll, beforeEach, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProxmoxClient } from '../../src/integrations/proxmox/client.js';
import { parseUpid } from '../../src/integrations/proxmox/upid.js';
import { startProxmoxSimulator, type ProxmoxSimulator } from '../../sim/proxmox/server.js';
import { resolveDurations } from '../../sim/proxmox/profiles.js';
import { parseProxmoxSimulatorArgs } from '../../sim/proxmox/cli.js';

const TOKEN_ID = 'e2epool@pve!ctl';
const SECRET = 'sim-test-secret';

let sim: ProxmoxSimulator;
let pve: ProxmoxClient;

async function waitTask(upid: string): Promise<{ exitstatus?: string }> {
  for (;;) {
    const status = await pve.taskStatus(parseUpid(upid).node, upid);
    if (status.status === 'stopped') return status;
    await sleep(5);
  }
}

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; statusText: string; json: any }> {
  const res = await fetch(`${sim.url}/_sim/${path}`, { method, ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });
  return { status: res.status, statusText: res.statusText, json: await res.json() };
}

beforeAll(async () => {
  sim = await startProxmoxSimulator({
    tokens: [{ tokenId: TOKEN_ID, secret: SECRET }, { tokenId: 'other@pve!t', secret: 'other-secret', vms: [102], privileges: ['VM.Audit', 'VM.PowerMgmt'] }],
    durations: { qmsnapshot: 60, qmdelsnapshot: 60, qmrollback: 60, qmstop: 10, qmstart: 10 },
    vms: [
      { node: 'pve1', vmid: 101, disk: { marker: 'base' } },
      { node: 'pve1', vmid: 102 },
      { node: 'pve1', vmid: 103, rollbackWhileRunning: 'error' },
    ],
  });
  pve = new ProxmoxClient({ baseUrl: sim.url, tokenId: TOKEN_ID, tokenSecret: SECRET, timeoutMs: 1000 });
});

afterAll(() => sim.stop());
beforeEach(() => sim.reset());

describe('snapshots, locks and the current entry', () => {
  test('a snapshot in progress is listed as prepare and locks the VM; others then fail as locked', async () => {
    const upid = await pve.createSnapshot('pve1', 101, 'job-a');
    const list = await pve.listSnapshots('pve1', 101);
    assert.equal(list.find((s) => s.name === 'job-a')?.snapstate, 'prepare');
    assert.equal((await pve.vmStatus('pve1', 101)).lock, 'snapshot');
    await assert.rejects(pve.stopVm('pve1', 101), { code: 'proxmox_locked', reason: 'VM 101 is locked (snapshot)' });
    assert.equal((await waitTask(upid)).exitstatus, 'OK');
    const done = await pve.listSnapshots('pve1', 101);
    assert.equal(done.find((s) => s.name === 'job-a')?.snapstate, undefined);
    assert.equal(typeof done.find((s) => s.name === 'job-a')?.snaptime, 'number');
    assert.deepEqual(done.at(-1), { ...done.at(-1), name: 'current', description: 'You are here!', running: 1, parent: 'job-a' });
    assert.equal((await pve.vmStatus('pve1', 101)).lock, undefined);
  });

  test('parents chain and are relinked when a snapshot is deleted (state delete while it runs)', async () => {
    await waitTask(await pve.createSnapshot('pve1', 101, 'job-a'));
    await waitTask(await pve.createSnapshot('pve1', 101, 'job-b'));
    assert.equal((await pve.listSnapshots('pve1', 101)).find((s) => s.name === 'job-b')?.parent, 'job-a');
    const upid = await pve.deleteSnapshot('pve1', 101, 'job-a');
    assert.equal((await pve.listSnapshots('pve1', 101)).find((s) => s.name === 'job-a')?.snapstate, 'delete');
    assert.equal((await pve.vmStatus('pve1', 101)).lock, 'snapshot-delete');
    await waitTask(upid);
    const list = await pve.listSnapshots('pve1', 101);
    assert.deepEqual(list.map((s) => [s.name, s.parent]), [['job-b', undefined], ['current', 'job-b']]);
  });

  test('a duplicate name fails the task with "already used"; deleting a missing one with "does not exist"', async () => {
    await waitTask(await pve.createSnapshot('pve1', 101, 'job-a'));
    assert.equal((await waitTask(await pve.createSnapshot('pve1', 101, 'job-a'))).exitstatus, "snapshot name 'job-a' already used");
    assert.equal((await waitTask(await pve.deleteSnapshot('pve1', 101, 'job-x'))).exitstatus, "snapshot 'job-x' does not exist");
    const log = await pve.taskLog('pve1', await pve.deleteSnapshot('pve1', 101, 'job-y'));
    assert.ok(Array.isArray(log));
  });
});

describe('rollback', () => {
  test('a running VM is stopped by the rollback (qemu-server behaviour), locked, and left stopped', async () => {
    await waitTask(await pve.createSnapshot('pve1', 101, 'job-a'));
    sim.state.setDisk(101, { marker: 'dirty' });
    const upid = await pve.rollbackSnapshot('pve1', 101, 'job-a');
    const during = await pve.vmStatus('pve1', 101);
    assert.equal(during.status, 'stopped');
    assert.equal(during.lock, 'rollback');
    assert.equal(sim.state.vm(101).disk.marker, 'dirty', 'the disk changes when the task ends');
    assert.equal((await waitTask(upid)).exitstatus, 'OK');
    assert.equal(sim.state.vm(101).disk.marker, 'base');
    assert.equal((await pve.vmStatus('pve1', 101)).status, 'stopped');
  });

  test('start=1 starts the VM after the rollback', async () => {
    await waitTask(await pve.createSnapshot('pve1', 101, 'job-a'));
    await waitTask(await pve.rollbackSnapshot('pve1', 101, 'job-a', { start: true }));
    assert.equal((await pve.vmStatus('pve1', 101)).status, 'running');
    assert.equal(sim.callsTo('snapshot-rollback')[0]?.params.start, '1');
  });

  test('a RAM snapshot (vmstate) starts the VM after rollback', async () => {
    await waitTask(await pve.createSnapshot('pve1', 101, 'job-ram', { vmstate: true }));
    assert.equal((await pve.listSnapshots('pve1', 101)).find((s) => s.name === 'job-ram')?.vmstate, 1);
    await waitTask(await pve.rollbackSnapshot('pve1', 101, 'job-ram'));
    assert.equal((await pve.vmStatus('pve1', 101)).status, 'running');
  });

  test('rollbackWhileRunning: error fails the task on a running VM', async () => {
    await waitTask(await pve.createSnapshot('pve1', 103, 'job-a'));
    assert.equal((await waitTask(await pve.rollbackSnapshot('pve1', 103, 'job-a'))).exitstatus, 'VM 103 is running');
  });
});

describe('tasks, tokens and durations', () => {
  test('task list honours since, typefilter, source and the token', async () => {
    const upid = await pve.createSnapshot('pve1', 101, 'job-a');
    const other = new ProxmoxClient({ baseUrl: sim.url, tokenId: 'other@pve!t', tokenSecret: 'other-secret' });
    assert.deepEqual((await other.listTasks('pve1', { source: 'all' })).map((t) => t.upid), [], 'no view of VM 101 tasks');
    await assert.rejects(other.taskStatus('pve1', upid), { code: 'proxmox_auth', status: 403 });
    assert.deepEqual((await pve.listTasks('pve1', { source: 'active' })).map((t) => t.upid), [upid]);
    await waitTask(upid);
    const entry = (await pve.listTasks('pve1', { source: 'archive', typefilter: 'qmsnapshot' }))[0];
    assert.equal(entry?.status, 'OK');
    assert.equal(typeof entry?.endtime, 'number');
  });

  test('profiles and per-operation overrides set task durations', async () => {
    assert.deepEqual(resolveDurations('realistic'), { qmsnapshot: 3000, qmrollback: 5000, qmdelsnapshot: 2000, qmstop: 2000, qmstart: 3000 });
    assert.ok(Object.values(resolveDurations('fast')).every((ms) => ms < 100));
    assert.equal(resolveDurations('realistic', { qmstop: 5 }).qmstop, 5);
    const started = Date.now();
    await waitTask(await pve.stopVm('pve1', 102));
    assert.ok(Date.now() - started < 200);
    sim.inject({ type: 'slow', op: 'start', vmid: 102, durationMs: 150, times: 1 });
    const upid = await pve.startVm('pve1', 102);
    await sleep(60);
    assert.equal((await pve.taskStatus('pve1', upid)).status, 'running');
    await waitTask(upid);
    assert.ok(Date.now() - started >= 150);
  });
});

describe('admin API (/_sim)', () => {
  test('faults over HTTP: add, list, hit, clear; bad faults are 400', async () => {
    assert.equal((await admin('POST', 'faults', { type: 'http-error', op: 'status', vmid: 101, status: 502, message: 'bad gateway', times: 1 })).status, 200);
    assert.equal((await admin('GET', 'faults')).json.data.length, 1);
    await assert.rejects(pve.vmStatus('pve1', 101), { code: 'proxmox_unavailable', status: 502, reason: 'bad gateway' });
    assert.equal((await admin('GET', 'faults')).json.data.length, 0, 'used up');
    await admin('POST', 'faults', { type: 'task-fail', op: 'stop', exitstatus: 'boom' });
    await admin('DELETE', 'faults');
    assert.equal((await waitTask(await pve.stopVm('pve1', 101))).exitstatus, 'OK');
    const bad = await admin('POST', 'faults', { type: 'http-error', op: 'reboot' });
    assert.equal(bad.status, 400);
    assert.match(bad.statusText, /op must be/);
    assert.equal((await admin('POST', 'faults', { type: 'stuck-lock', vmid: 999, lock: 'backup' })).status, 404);
  });

  test('VM state: disk writes, lock, unlock, power; reset restores the configured VMs', async () => {
    const events: string[] = [];
    const off = sim.onVmPowerChange((vmid, status) => events.push(`${vmid}:${status}`));
    try {
      assert.deepEqual((await admin('POST', 'vms/101/disk', { dirty: true })).json.data, { marker: 'base', dirty: true });
      assert.deepEqual((await admin('PUT', 'vms/101/disk', { only: 1 })).json.data, { only: 1 });
      await admin('POST', 'faults', { type: 'stuck-lock', vmid: 101, lock: 'backup' });
      assert.equal((await admin('GET', 'vms/101')).json.data.lock, 'backup');
      await admin('POST', 'vms/101/unlock');
      assert.equal((await pve.vmStatus('pve1', 101)).lock, undefined);
      await admin('POST', 'vms/101/power', { status: 'stopped' });
      assert.equal((await pve.vmStatus('pve1', 101)).status, 'stopped');
      assert.equal((await admin('POST', 'vms/101/power', { status: 'paused' })).status, 400);
    } finally {
      off();
    }
    assert.deepEqual(events, ['101:stopped']);
    await admin('POST', 'reset');
    const vm = (await admin('GET', 'vms/101')).json.data;
    assert.equal(vm.status, 'running');
    assert.deepEqual(vm.disk, { marker: 'base' });
    assert.equal((await admin('GET', 'vms/555')).status, 404);
  });

  test('calls are recorded with auth outcome and parameters, never the secret', async () => {
    await pve.createSnapshot('pve1', 101, 'job-a', { description: 'd' });
    await fetch(`${sim.url}/api2/json/nodes/pve1/qemu/101/status/current`, { headers: { authorization: `PVEAPIToken=${TOKEN_ID}=wrong` } });
    const calls = (await admin('GET', 'calls')).json.data;
    assert.deepEqual(calls.map((c: any) => [c.method, c.op, c.vmid, c.authOk, c.status]), [
      ['POST', 'snapshot-create', 101, true, 200],
      ['GET', 'status', 101, false, 401],
    ]);
    assert.deepEqual(calls[0].params, { snapname: 'job-a', description: 'd' });
    assert.ok(!JSON.stringify(calls).includes(SECRET));
    await admin('DELETE', 'calls');
    assert.equal(sim.calls.length, 0);
  });

  test('unknown API paths answer 501 like Proxmox', async () => {
    const res = await fetch(`${sim.url}/api2/json/nodes/pve1/lxc/101/status/current`, { headers: { authorization: `PVEAPIToken=${TOKEN_ID}=${SECRET}` } });
    assert.equal(res.status, 501);
    assert.match(res.statusText, /not implemented/);
  });
});

describe('e2epool sim proxmox', () => {
  test('parses its options and rejects bad ones', async () => {
    const opts = await parseProxmoxSimulatorArgs(['--port', '0', '--profile', 'realistic', '--token', 'ci@pve!x=s1', '--vm', 'pve1:101', '--vm', 'pve2:202:web', '--linear-chain']);
    assert.equal(opts.profile, 'realistic');
    assert.deepEqual(opts.tokens, [{ tokenId: 'ci@pve!x', secret: 's1' }]);
    assert.deepEqual(opts.vms?.map((v) => [v.node, v.vmid, v.name, v.linearChain]), [['pve1', 101, 'runner-101', true], ['pve2', 202, 'web', true]]);
    await assert.rejects(parseProxmoxSimulatorArgs(['--vm', 'pve1']), /node:vmid/);
    await assert.rejects(parseProxmoxSimulatorArgs(['--token', 'nosecret']), /user@realm!tokenid=secret/);
    await assert.rejects(parseProxmoxSimulatorArgs(['--profile', 'slow']), /profile/);
    await assert.rejects(parseProxmoxSimulatorArgs(['--bogus']), /bogus/);
  });

  test('runs in the foreground, prints its URLs and stops on SIGINT', async () => {
    const child = spawn(process.execPath, ['bin/e2epool.js', 'sim', 'proxmox', '--port', '0', '--https', '--vm', 'pve9:901', '--token', 'ci@pve!cli=cli-secret'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += String(d); });
      const deadline = Date.now() + 15_000;
      while (!/vm: pve9\/901/.test(out) && Date.now() < deadline) await sleep(20);
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      assert.ok(url, `no URL in ${out}`);
      assert.match(out, /HTTPS: https:\/\/127\.0\.0\.1:\d+ \(certificate sha256 fingerprint ([0-9A-F]{2}:){31}[0-9A-F]{2}\)/);
      assert.ok(!out.includes('cli-secret'));
      const client = new ProxmoxClient({ baseUrl: url, tokenId: 'ci@pve!cli', tokenSecret: 'cli-secret' });
      assert.equal((await client.vmStatus('pve9', 901)).status, 'running');
      child.kill('SIGINT');
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
