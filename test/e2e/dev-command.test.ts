// `e2epool dev` as a new user runs it: it prints its addresses, the API and the Temporal Web UI
// answer, demo jobs start checkpoint workflows that reach an end state on their own, and Ctrl-C
// (SIGINT, also during start-up) exits 0 within 5 s leaving no process of the run behind. A port in use fails at once
// with one line naming the port and the flag.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, test } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { findFreePort } from '../../temporal/free-port.js';
import { isProcessGroupAlive } from '../../temporal/process-group.js';
import { repoRoot } from '../../temporal/tool-paths.js';
import { eventually } from '../helpers/eventually.js';
import { listProcesses, type ProcessEntry } from '../helpers/process-table.js';
import { requireTemporalBinaries } from '../helpers/temporal.js';

interface DevRun {
  child: ChildProcess;
  dir: string;
  output: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const dirs: string[] = [];
const runs: DevRun[] = [];

function startDev(extra: string[]): DevRun {
  const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-dev-test-'));
  dirs.push(dir);
  const env: NodeJS.ProcessEnv = {};
  // A user's E2EPOOL_* settings would change what dev does; the test wants the defaults.
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('E2EPOOL_') || key === 'E2EPOOL_TEMPORAL_CLI') env[key] = value;
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'e2epool.js'), 'dev', '--data-dir', path.join(dir, '.data'), ...extra], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let output = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const run = { child, dir, output: () => output, stderr: () => stderr, exited };
  runs.push(run);
  return run;
}

/** Every process of the run: its command line names the run's temporary directory. */
const processesOf = (run: DevRun): ProcessEntry[] => listProcesses().filter((p) => p.pid !== run.child.pid && p.command.includes(run.dir));

async function freePorts(): Promise<string[]> {
  return ['--port', String(await findFreePort()), '--temporal-port', String(await findFreePort()), '--ui-port', String(await findFreePort())];
}

function field(output: string, label: string): string {
  const value = new RegExp(`${label}:\\s+(\\S+)`).exec(output)?.[1];
  assert.ok(value, `no "${label}" line in:\n${output}`);
  return value;
}

async function assertNothingLeft(run: DevRun, groups: number[]): Promise<void> {
  await eventually(
    () => `nothing of the run left; left behind: ${JSON.stringify(processesOf(run))} groups alive: ${groups.filter(isProcessGroupAlive).join(',')}`,
    () => processesOf(run).length === 0 && groups.every((g) => !isProcessGroupAlive(g)),
    { timeoutMs: 5_000, intervalMs: 100 },
  );
}

describe('e2epool dev', { concurrent: true }, () => {
  // After a failed assertion: stop the run the way a user would, then make sure of it. Only
  // processes whose command line names this test's own directory are touched.
  afterAll(async () => {
    for (const run of runs) {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill('SIGTERM');
        const stopped = await Promise.race([run.exited.then(() => true), sleep(20_000, false)]);
        if (!stopped) run.child.kill('SIGKILL');
      }
      for (const p of processesOf(run)) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('runs the whole system: demo checkpoints end deleted and reset (VM and bare metal); Ctrl-C stops everything within 5 s and exits 0', { timeout: 150_000 }, async () => {
    requireTemporalBinaries(['cli']);
    const startedAt = Date.now();
    const run = startDev(await freePorts());
    await eventually(
      () => `dev to come up:\n${run.output()}`,
      () => run.output().includes('Press Ctrl-C to stop.') || run.child.exitCode !== null,
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    assert.ok(run.child.exitCode === null, `dev did not come up:\n${run.output()}`);
    const readyMs = Date.now() - startedAt;
    const apiUrl = field(run.output(), 'API');
    const uiUrl = field(run.output(), 'Temporal Web UI');
    const temporalAddress = field(run.output(), 'Temporal');
    const adminToken = field(run.output(), 'Admin token');
    assert.match(run.output(), /Proxmox sim:\s+https:\/\/127\.0\.0\.1:\d+/);
    assert.match(run.output(), /GitLab sim:\s+http:\/\/127\.0\.0\.1:\d+/);

    const health = await fetch(`${apiUrl}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, 'ok');
    const ui = await fetch(uiUrl);
    await ui.body?.cancel();
    assert.equal(ui.status, 200);
    const unauthorized = await fetch(`${apiUrl}/api/checkpoints`);
    await unauthorized.body?.cancel();
    assert.notEqual(unauthorized.status, 200, 'the admin listing needs the printed token');

    // Every demo host runs an agent in its own process group (the Temporal server too).
    const agents = () => processesOf(run).filter((p) => / agent --config /.test(p.command));
    await eventually(() => `three agents; agents: ${JSON.stringify(processesOf(run))}`, () => agents().length === 3, { timeoutMs: 10_000, intervalMs: 100 });
    const groups = [...new Set(processesOf(run).map((p) => p.pgid))];
    assert.ok(groups.length >= 4, `process groups: ${groups.join(',')}`);

    const connection = await Connection.connect({ address: temporalAddress });
    try {
      const client = new Client({ connection });
      const listed = async () => {
        const ids: string[] = [];
        for await (const wf of client.workflow.list({ query: 'WorkflowType IN ("checkpointV2Workflow", "checkpointWorkflow")' })) ids.push(wf.workflowId);
        return ids;
      };
      let workflows: string[] = [];
      await eventually(
        () => `a checkpoint workflow in Temporal:\n${run.output().slice(-3000)}`,
        async () => (workflows = await listed()).length > 0,
        { timeoutMs: 60_000, intervalMs: 1_000 },
      );
      assert.match(workflows[0]!, /^job-\d+-\d+-[0-9a-f]{8}$/);
    } finally {
      await connection.close();
    }

    // The demo's first jobs end as success on pve-runner-1 and failure on pve-runner-2 and
    // bm-runner-1: the cleanup path, a VM rollback, and a bare-metal reset whose readiness needs the
    // agent's new session after its "reboot".
    type Item = { name: string; state: string; runner_id: string };
    const firstSeen = new Map<string, number>();
    const wanted = ['deleted', 'reset:pve-runner-2', 'reset:bm-runner-1'];
    await eventually(
      () => `the end states ${wanted.join(', ')}; missing ${wanted.filter((k) => !firstSeen.has(k)).join(', ')}:\n${run.output().slice(-3000)}`,
      async () => {
        const res = await fetch(`${apiUrl}/api/checkpoints?limit=100`, { headers: { authorization: `Bearer ${adminToken}` } });
        assert.equal(res.status, 200);
        const body = (await res.json()) as { items: Item[] };
        for (const c of body.items) {
          for (const key of [c.state, `${c.state}:${c.runner_id}`]) if (!firstSeen.has(key)) firstSeen.set(key, Date.now() - startedAt);
        }
        return wanted.every((key) => firstSeen.has(key));
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
    process.stdout.write(`# dev ready after ${readyMs} ms; first end states after (ms): ${wanted.map((k) => `${k}=${firstSeen.get(k)}`).join(' ')}\n`);

    await assertNoSecretLeaks(run, { apiUrl, adminToken, temporalAddress });

    // Ctrl-C while demo jobs run: the demo does not wait out the production shutdown grace.
    const stopAt = Date.now();
    run.child.kill('SIGINT');
    const { code } = await run.exited;
    await assertNothingLeft(run, groups);
    const stopMs = Date.now() - stopAt;
    process.stdout.write(`# dev stopped after ${stopMs} ms\n`);
    assert.equal(code, 0, run.output().slice(-3000));
    assert.match(run.output(), /e2epool dev stopped\./);
    assert.doesNotMatch(run.stderr(), /Error/);
    assert.ok(stopMs < 5_000, `the stop took ${stopMs} ms:\n${run.output().slice(-3000)}`);
  });

  test('SIGINT during start-up stops what was started and exits 0', { timeout: 60_000 }, async () => {
    requireTemporalBinaries(['cli']);
    const run = startDev(await freePorts());
    await eventually(
      () => `the Temporal server to start:\n${run.output()}`,
      () => processesOf(run).some((p) => p.command.includes('start-dev')) || run.child.exitCode !== null,
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    assert.ok(run.child.exitCode === null, `the Temporal server never started:\n${run.output()}`);
    const groups = [...new Set(processesOf(run).map((p) => p.pgid))];
    const stopAt = Date.now();
    run.child.kill('SIGINT');
    const { code } = await run.exited;
    await assertNothingLeft(run, groups);
    const stopMs = Date.now() - stopAt;
    assert.equal(code, 0, run.output());
    assert.doesNotMatch(run.output(), /Press Ctrl-C to stop/);
    // The 5 s promise is for a running demo (above); a Temporal server caught mid-start on a loaded
    // machine takes a few seconds more to go.
    assert.ok(stopMs < 8_000, `the stop took ${stopMs} ms:\n${run.output().slice(-3000)}`);
  });

  test('a port in use fails at once with one line naming the port and the flag', { timeout: 30_000 }, async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const ports = await freePorts();
      ports[1] = String(port);
      const run = startDev(ports);
      const { code } = await run.exited;
      assert.equal(code, 1);
      assert.equal(run.stderr().trim(), `Error: port ${port} (API) is in use; choose another with --port <port>`);
      assert.deepEqual(processesOf(run), []);
    } finally {
      blocker.close();
    }
  });
});

/** Every file under `dir`, recursively (logs, sockets skipped). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

/** Payload data is base64 JSON: decode every `data` field so a secret inside one is seen too. */
function decodedPayloads(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) decodedPayloads(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'data' && typeof v === 'string') out.push(Buffer.from(v, 'base64').toString('utf8'));
      else decodedPayloads(v, out);
    }
  }
  return out;
}

/**
 * After a full demo lifecycle, no credential appears in what operators and their tools see: the
 * controller's and agents' logs, every Temporal history (payloads decoded), the dashboard page and
 * its state, /metrics, /health and the admin API's answers. The admin token is printed once in the
 * start-up banner by design, and nowhere else.
 */
async function assertNoSecretLeaks(run: DevRun, urls: { apiUrl: string; adminToken: string; temporalAddress: string }): Promise<void> {
  const devDir = path.join(run.dir, '.data', 'dev');
  const stored = JSON.parse(readFileSync(path.join(devDir, 'secrets.json'), 'utf8')) as Record<string, string>;
  const inventory = readFileSync(path.join(devDir, 'inventory.yml'), 'utf8');
  const runnerTokens = [...inventory.matchAll(/^\s*token:\s*"?([^"\s]+)"?\s*$/gm)].map((m) => m[1]!);
  assert.ok(runnerTokens.length >= 3, 'the demo inventory has runner tokens');
  const secrets: Record<string, string> = { ...stored, ...Object.fromEntries(runnerTokens.map((t, i) => [`runner token ${i + 1}`, t])) };
  delete secrets.adminToken; // checked separately: it is printed once in the banner
  const seen: Array<{ where: string; text: string }> = [];
  const banner = run.output().split('\n').filter((l) => !l.includes('Admin token')).join('\n');
  seen.push({ where: 'controller output', text: banner + run.stderr() });
  for (const file of filesUnder(devDir)) {
    if (/\.log$/.test(file)) seen.push({ where: file, text: readFileSync(file, 'utf8') });
  }
  const auth = { authorization: `Bearer ${urls.adminToken}` };
  for (const [where, url, headers] of [
    ['dashboard page', '/dashboard', {}],
    ['dashboard state', '/api/dashboard/state', auth],
    ['metrics', '/metrics', {}],
    ['health', '/health', {}],
    ['runners API', '/api/runners?include_inactive=true', auth],
    ['checkpoints API', '/api/checkpoints?limit=100', auth],
  ] as const) {
    const res = await fetch(`${urls.apiUrl}${url}`, { headers });
    seen.push({ where, text: await res.text() });
  }
  const connection = await Connection.connect({ address: urls.temporalAddress });
  try {
    const client = new Client({ connection });
    for await (const wf of client.workflow.list({ query: 'WorkflowType IN ("checkpointV2Workflow", "checkpointWorkflow")' })) {
      const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      const raw = JSON.stringify(history);
      seen.push({ where: `history of ${wf.workflowId}`, text: raw + decodedPayloads(JSON.parse(raw)).join('\n') });
      const detail = await fetch(`${urls.apiUrl}/api/checkpoints/${wf.workflowId}`, { headers: auth });
      seen.push({ where: `checkpoint ${wf.workflowId}`, text: await detail.text() });
    }
  } finally {
    await connection.close();
  }
  const leaks: string[] = [];
  for (const { where, text } of seen) {
    for (const [name, value] of Object.entries(secrets)) if (value && value.length >= 8 && text.includes(value)) leaks.push(`${name} in ${where}`);
    if (where !== 'controller output' && text.includes(urls.adminToken)) leaks.push(`admin token in ${where}`);
  }
  assert.deepEqual(leaks, [], 'no credential appears anywhere');
  process.stdout.write(`# leak scan: ${Object.keys(secrets).length + 1} credentials over ${seen.length} sources (${seen.reduce((n, s) => n + s.text.length, 0)} characters): none found\n`);
}
