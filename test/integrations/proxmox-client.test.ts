// Contract tests of the Proxmox client against the simulator over real HTTP and HTTPS.
import { afterAll, beforeAll, beforeEach, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProxmoxClient, type ProxmoxClientOptions } from '../../src/integrations/proxmox/client.js';
import { ProxmoxApiError } from '../../src/integrations/proxmox/errors.js';
import { buildUpid, parseUpid } from '../../src/integrations/proxmox/upid.js';
import { isRetryable } from '../../src/domain/errors.js';
import { startProxmoxSimulator, type ProxmoxSimulator } from '../../sim/proxmox/server.js';
import { captureLogs } from '../helpers/log-capture.js';

const TOKEN_ID = 'e2epool@pve!ctl';
const SECRET = 'f3c1a9e2-7b6d-4c1e-9a55-0d2b3c4e5f60';
const NARROW_SECRET = 'narrow-secret-0001';

let sim: ProxmoxSimulator;
let dir: string;

function client(extra: Partial<ProxmoxClientOptions> = {}): ProxmoxClient {
  return new ProxmoxClient({ baseUrl: sim.url, tokenId: TOKEN_ID, tokenSecret: SECRET, timeoutMs: 2000, ...extra });
}

async function rejection(promise: Promise<unknown>): Promise<ProxmoxApiError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ProxmoxApiError, `expected ProxmoxApiError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

function assertNoSecret(err: unknown): void {
  const text = `${(err as Error).message}\n${(err as Error).stack}\n${JSON.stringify(err)}`;
  assert.ok(!text.includes(SECRET), 'the token secret leaked into an error');
}

beforeAll(async () => {
  sim = await startProxmoxSimulator({
    https: true,
    tokens: [
      { tokenId: TOKEN_ID, secret: SECRET },
      { tokenId: 'audit@pve!narrow', secret: NARROW_SECRET, vms: [102], privileges: ['VM.Audit'] },
    ],
    vms: [
      { node: 'pve1', vmid: 101, name: 'runner-a', tags: ['e2epool', 'ci'], pool: 'ci-pool' },
      { node: 'pve1', vmid: 102, name: 'runner-b', status: 'stopped' },
    ],
  });
  dir = mkdtempSync(path.join(tmpdir(), 'pve-client-test-'));
});

afterAll(async () => {
  await sim.stop();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => sim.reset());

describe('auth', () => {
  test('sends the PVEAPIToken header and reads the data envelope', async () => {
    const status = await client().vmStatus('pve1', 101);
    assert.equal(status.status, 'running');
    assert.equal(status.name, 'runner-a');
    const [call] = sim.calls;
    assert.equal(call?.authOk, true);
    assert.equal(call?.tokenId, TOKEN_ID);
    assert.equal(call?.path, '/nodes/pve1/qemu/101/status/current');
  });

  test('a wrong secret is 401 proxmox_auth, not retryable, and the secret stays out of the error', async () => {
    const err = await rejection(client({ tokenSecret: SECRET.replace('f3', 'aa') }).vmStatus('pve1', 101));
    assert.equal(err.code, 'proxmox_auth');
    assert.equal(err.status, 401);
    assert.equal(isRetryable(err.code), false);
    assert.equal(sim.calls[0]?.authOk, false);
    assertNoSecret(err);
  });

  test('a request without a token gets 401 with the reason phrase and body message', async () => {
    const res = await fetch(`${sim.url}/api2/json/nodes/pve1/qemu/101/status/current`);
    assert.equal(res.status, 401);
    assert.equal(res.statusText, 'No ticket');
    assert.deepEqual(await res.json(), { data: null, message: 'No ticket\n' });
  });

  test('a token without permission on the VM is 403 proxmox_auth', async () => {
    const narrow = client({ tokenId: 'audit@pve!narrow', tokenSecret: NARROW_SECRET });
    assert.equal((await narrow.vmStatus('pve1', 102)).status, 'stopped');
    const other = await rejection(narrow.vmStatus('pve1', 101));
    assert.equal(other.code, 'proxmox_auth');
    assert.equal(other.status, 403);
    assert.match(other.reason ?? '', /Permission check failed \(\/vms\/101, VM\.Audit\)/);
    const power = await rejection(narrow.startVm('pve1', 102));
    assert.equal(power.status, 403);
    assert.match(power.reason ?? '', /VM\.PowerMgmt/);
  });

  test('invalid options are refused before any call', () => {
    assert.throws(() => client({ tokenId: 'no-realm' }), /USER@REALM!TOKENID/);
    assert.throws(() => client({ tokenSecret: 'with space' }), /secret/);
    assert.throws(() => client({ baseUrl: 'ftp://x' }), /http/);
    assert.throws(() => client().vmStatus('pve1', 5), /invalid Proxmox VM id/);
    assert.throws(() => client().vmStatus('bad/node', 101), /invalid Proxmox node/);
  });
});

describe('TLS', () => {
  test('an untrusted certificate is rejected by default and the request never reaches the server', async () => {
    const err = await rejection(client({ baseUrl: sim.httpsUrl! }).vmStatus('pve1', 101));
    assert.equal(err.code, 'proxmox_auth');
    assert.match(err.detail, /certificate not trusted/);
    assert.equal(sim.calls.length, 0);
    assertNoSecret(err);
  });

  test('a CA file makes the certificate trusted', async () => {
    const caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, sim.certPem!);
    const status = await client({ baseUrl: sim.httpsUrl!, tls: { caFile } }).vmStatus('pve1', 101);
    assert.equal(status.status, 'running');
  });

  test('a pinned fingerprint is accepted with or without colons; a wrong pin sends nothing', async () => {
    assert.equal((await client({ baseUrl: sim.httpsUrl!, tls: { fingerprint: sim.fingerprint! } }).vmStatus('pve1', 101)).status, 'running');
    const bare = sim.fingerprint!.replace(/:/g, '').toLowerCase();
    assert.equal((await client({ baseUrl: sim.httpsUrl!, tls: { fingerprint: bare } }).vmStatus('pve1', 101)).status, 'running');
    assert.equal(sim.calls.length, 2);
    const err = await rejection(client({ baseUrl: sim.httpsUrl!, tls: { fingerprint: 'AB'.repeat(32) } }).vmStatus('pve1', 101));
    assert.equal(err.code, 'proxmox_auth');
    assert.equal(sim.calls.length, 2, 'no request may reach a server whose certificate does not match the pin');
  });

  test('insecure works only when asked and warns once', async () => {
    const { logger, lines } = captureLogs('info');
    const insecure = client({ baseUrl: sim.httpsUrl!, tls: { insecure: true }, logger });
    client({ baseUrl: sim.httpsUrl!, tls: { insecure: true }, logger });
    assert.equal((await insecure.vmStatus('pve1', 101)).status, 'running');
    assert.equal(lines.filter((l) => l.includes('TLS verification is disabled')).length, 1);
    assert.ok(!lines.join('').includes(SECRET));
  });

  test('bad TLS settings are clear errors', () => {
    assert.throws(() => client({ baseUrl: sim.httpsUrl!, tls: { fingerprint: 'abc' } }), /64 hex digits/);
    assert.throws(() => client({ baseUrl: sim.httpsUrl!, tls: { caFile: path.join(dir, 'missing.pem') } }), /cannot be read/);
    assert.throws(() => client({ baseUrl: sim.httpsUrl!, tls: { insecure: true, fingerprint: sim.fingerprint! } }), /choose one/);
  });
});

describe('errors', () => {
  test('5xx n times is proxmox_unavailable (retryable), then the call succeeds', async () => {
    sim.inject({ type: 'http-error', op: 'status', vmid: 101, status: 503, message: 'proxy loop detected', times: 2 });
    for (let i = 0; i < 2; i++) {
      const err = await rejection(client().vmStatus('pve1', 101));
      assert.equal(err.code, 'proxmox_unavailable');
      assert.equal(err.status, 503);
      assert.equal(err.reason, 'proxy loop detected');
      assert.equal(err.bodyMessage, 'proxy loop detected');
      assert.equal(isRetryable(err.code), true);
    }
    assert.equal((await client().vmStatus('pve1', 101)).status, 'running');
  });

  test('a hanging response times out as proxmox_unavailable', async () => {
    sim.inject({ type: 'timeout', op: 'status', times: 1 });
    const started = Date.now();
    const err = await rejection(client({ timeoutMs: 150 }).vmStatus('pve1', 101));
    assert.equal(err.code, 'proxmox_unavailable');
    assert.match(err.detail, /timed out/);
    assert.equal(err.status, undefined);
    assert.ok(Date.now() - started < 1500);
    assertNoSecret(err);
  });

  test('a connection refused is proxmox_unavailable', async () => {
    const err = await rejection(client({ baseUrl: 'http://127.0.0.1:1' }).vmStatus('pve1', 101));
    assert.equal(err.code, 'proxmox_unavailable');
    assertNoSecret(err);
  });

  test('messages are classified: locked, not most recent, does not exist, VM config missing', async () => {
    const cases: Array<[string, string]> = [
      ['VM 101 is locked (backup)', 'proxmox_locked'],
      ["can't rollback, 'job-1' is not most recent snapshot on 'local-zfs:vm-101-disk-0'", 'proxmox_not_most_recent'],
      ["snapshot 'job-1' does not exist", 'proxmox_snapshot_missing'],
      ['something else broke', 'proxmox_unavailable'],
    ];
    for (const [message, code] of cases) {
      sim.inject({ type: 'http-error', op: 'snapshot-list', status: 500, message, times: 1 });
      const err = await rejection(client().listSnapshots('pve1', 101));
      assert.equal(err.code, code, message);
    }
    const missing = await rejection(client().vmStatus('pve1', 999));
    assert.equal(missing.code, 'config_changed');
    assert.match(missing.reason ?? '', /Configuration file 'nodes\/pve1\/qemu-server\/999.conf' does not exist/);
  });

  test('a real stuck lock answers 500 "VM is locked" → proxmox_locked', async () => {
    sim.inject({ type: 'stuck-lock', vmid: 101, lock: 'backup' });
    assert.equal((await client().vmStatus('pve1', 101)).lock, 'backup');
    const err = await rejection(client().createSnapshot('pve1', 101, 'job-1'));
    assert.equal(err.code, 'proxmox_locked');
    assert.equal(err.reason, 'VM 101 is locked (backup)');
  });
});

describe('snapshot names (pve-configid, at most 40, reserved names)', () => {
  for (const bad of ['1job', 'job.1', 'a', 'x'.repeat(41), 'current', 'pending', 'PENDING', 'job_ü']) {
    test(`rejects ${JSON.stringify(bad.length > 12 ? `${bad.slice(0, 8)}…(${bad.length})` : bad)} with 400 and errors.snapname`, async () => {
      const err = await rejection(client().createSnapshot('pve1', 101, bad));
      assert.equal(err.code, 'proxmox_bad_request');
      assert.equal(err.status, 400);
      assert.equal(err.reason, 'Parameter verification failed.');
      assert.ok(err.errors?.snapname, 'errors.snapname is set');
    });
  }

  test('accepts 40 characters and mixed case', async () => {
    const c = client();
    await c.createSnapshot('pve1', 101, `job-${'a'.repeat(36)}`);
    await new Promise((r) => setTimeout(r, 80));
    await c.createSnapshot('pve1', 101, 'Job_B-2');
    await new Promise((r) => setTimeout(r, 80));
    const names = (await c.listSnapshots('pve1', 101)).map((s) => s.name);
    assert.deepEqual(names, [`job-${'a'.repeat(36)}`, 'Job_B-2', 'current']);
  });
});

describe('tasks and UPIDs', () => {
  test('UPIDs parse and build with the trailing colon', () => {
    const text = 'UPID:pve1:0001A2B3:00C0FFEE:66F0A1B2:qmrollback:211:e2epool@pve!ctl:';
    const upid = parseUpid(text);
    assert.deepEqual(upid, { node: 'pve1', pid: 0x1a2b3, pstart: 0xc0ffee, starttime: 0x66f0a1b2, type: 'qmrollback', id: '211', user: 'e2epool@pve!ctl' });
    assert.equal(buildUpid(upid), text);
    assert.equal(parseUpid(buildUpid({ ...upid, pstart: 0x1c0ffee00 })).pstart, 0x1c0ffee00);
    assert.throws(() => parseUpid(text.slice(0, -1)), /not a Proxmox UPID/);
  });

  test('a snapshot POST returns a UPID; task status, log and list follow it', async () => {
    const c = client();
    const before = new Date(Date.now() - 1000);
    // Long enough to still be running when listed on a loaded machine.
    sim.inject({ type: 'slow', op: 'snapshot-create', vmid: 101, durationMs: 1500, times: 1 });
    const upid = await c.createSnapshot('pve1', 101, 'job-1', { description: 'e2epool checkpoint job-1' });
    const parsed = parseUpid(upid);
    assert.equal(parsed.type, 'qmsnapshot');
    assert.equal(parsed.id, '101');
    assert.equal(parsed.user, TOKEN_ID);
    assert.equal(sim.calls.at(-1)?.params.snapname, 'job-1');
    assert.equal((await c.taskStatus('pve1', upid)).status, 'running');
    assert.equal((await c.listTasks('pve1', { vmid: 101, source: 'active' })).length, 1);
    assert.equal((await c.listTasks('pve1', { vmid: 101, source: 'archive' })).length, 0);
    await new Promise((r) => setTimeout(r, 1600));
    const done = await c.taskStatus('pve1', upid);
    assert.equal(done.status, 'stopped');
    assert.equal(done.exitstatus, 'OK');
    assert.deepEqual((await c.taskLog('pve1', upid)).map((l) => l.t), ['TASK OK']);
    const all = await c.listTasks('pve1', { vmid: 101, typefilter: 'qmsnapshot', since: before, source: 'all' });
    assert.deepEqual(all.map((t) => [t.upid, t.status]), [[upid, 'OK']]);
    assert.equal((await c.listTasks('pve1', { vmid: 101, typefilter: 'qmrollback', source: 'all' })).length, 0);
    assert.equal((await c.listTasks('pve1', { vmid: 102, source: 'all' })).length, 0);
    assert.equal((await c.listTasks('pve1', { vmid: 101, since: new Date(Date.now() + 60_000), source: 'all' })).length, 0);
  });

  test('an unknown UPID is a 400 parameter error', async () => {
    const err = await rejection(client().taskStatus('pve1', 'UPID:pve1:00000001:00C0FFEE:66F0A1B2:qmstart:101:root@pam:'));
    assert.equal(err.status, 400);
    assert.equal(err.code, 'proxmox_bad_request');
    assert.equal(err.errors?.upid, 'no such task');
  });

  test('config and cluster resources give tags, name and pool', async () => {
    const config = await client().getVmConfig('pve1', 101);
    assert.equal(config.name, 'runner-a');
    assert.deepEqual(config.tagList, ['e2epool', 'ci']);
    const resources = await client().listVmResources();
    assert.deepEqual(resources.map((r) => [r.vmid, r.node, r.pool]), [[101, 'pve1', 'ci-pool'], [102, 'pve1', undefined]]);
  });
});
