// `npx tsx scripts/dashboard-screenshots.ts [--minutes 3] [--runners 3] [--keep]`: renews the
// dashboard screenshots in docs/images/ that the runbook shows, from the real demo. It starts
// `e2epool dev` (fast profile, free ports, state in a temporary directory), lets the demo jobs run
// for a few minutes so the history pictures have data, then makes the rollback of one Proxmox VM
// fail through the simulator's fault injection (`POST /_sim/faults`), so that runner's checkpoint
// really ends in needs attention through its workflow. It signs in to the dashboard in Chromium at
// 1366 px and writes full-page shots of the overview and of that checkpoint's page, then stops the
// demo with SIGINT (as Ctrl-C would) and checks that nothing it started is left running.
// Takes about five minutes. `--keep` keeps the temporary directory (the demo's log, its state).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** The first demo VM (runner pve-runner-1): its rollback is made to fail. */
const FAULTY_VMID = 101;
const FAULTY_RUNNER = 'pve-runner-1';
const ROLLBACK_ERROR = "can't rollback snapshot: storage 'local-lvm' is not online";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'docs', 'images');
const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    runners: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
  },
});
const warmupMinutes = Number(flags.minutes);
if (!Number.isFinite(warmupMinutes) || warmupMinutes < 0 || warmupMinutes > 30) throw new Error(`--minutes must be from 0 to 30, got ${flags.minutes}`);

const startedAt = Date.now();
const elapsed = () => `${Math.round((Date.now() - startedAt) / 1000)}s`;
const say = (text: string) => console.log(`dashboard-screenshots [${elapsed()}]: ${text}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A deadline that does not keep the script alive once everything else is done. */
const deadline = (ms: number) => new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());

/** Thrown by a probe of `until` to give up at once rather than try again. */
class GiveUp extends Error {}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < end) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    await sleep(1000);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
}

interface DevInfo {
  apiUrl: string;
  adminToken: string;
  proxmoxUrl: string;
}

/** Reads the lines `e2epool dev` prints once it runs: API URL, admin token, Proxmox simulator. */
function parseBanner(text: string): DevInfo | undefined {
  const banner = text.split('e2epool dev is running.')[1];
  if (!banner || !banner.includes('Press Ctrl-C to stop.')) return undefined;
  const field = (label: string) => new RegExp(`^\\s*${label}:\\s+(\\S+)`, 'm').exec(banner)?.[1];
  const apiUrl = field('API');
  const adminToken = field('Admin token');
  const proxmoxUrl = field('Proxmox sim');
  if (!apiUrl || !adminToken || !proxmoxUrl) throw new Error(`e2epool dev printed no API URL, admin token or Proxmox address:\n${banner}`);
  return { apiUrl, adminToken, proxmoxUrl };
}

/** The Proxmox simulator's admin API; its certificate is the self-signed one it made at start. */
function proxmoxAdmin(base: string, method: string, route: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${base}/_sim/${route}`, { method, rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => {
        if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} /_sim/${route}: ${res.statusCode} ${text}`));
        else resolve(text ? JSON.parse(text) : null);
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Processes whose command line, working directory or open files point into `dir`. */
function processesUsing(dir: string): Array<{ pid: number; command: string }> {
  const found: Array<{ pid: number; command: string }> = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // a process of another user, or gone
      }
      if (command.includes(dir) || cwd === dir || cwd.startsWith(`${dir}/`)) found.push({ pid, command: command.slice(0, 160) });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

const workDir = mkdtempSync(path.join(os.tmpdir(), 'e2epool-screenshots-'));
const logFile = path.join(workDir, 'dev.log');
let dev: ChildProcess | undefined;
let browser: Browser | undefined;
let devExited: Promise<number | null> = Promise.resolve(null);

async function stopEverything(): Promise<void> {
  await browser?.close().catch(() => undefined);
  browser = undefined;
  if (dev && dev.exitCode === null && dev.signalCode === null) {
    say('stopping e2epool dev (SIGINT)');
    dev.kill('SIGINT');
    const code = await Promise.race([devExited, deadline(60_000)]);
    if (code === 'timeout') {
      say('e2epool dev did not stop within 60 s; sending SIGINT again');
      dev.kill('SIGINT');
      await Promise.race([devExited, deadline(10_000)]);
    } else if (code !== 0) {
      say(`e2epool dev exited with ${code}; see ${logFile}`);
    }
  }
  // Everything the demo starts (Temporal, agents, demo job CLIs) and Chromium work in workDir.
  let left = processesUsing(workDir);
  for (let i = 0; i < 10 && left.length; i++) {
    await sleep(500);
    left = processesUsing(workDir);
  }
  if (left.length) {
    say(`still running after the stop, ending them: ${left.map((p) => `${p.pid} ${p.command}`).join('; ')}`);
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.exitCode = 1;
  } else {
    say('nothing left running');
  }
}

async function signIn(page: Page, info: DevInfo): Promise<void> {
  await page.goto(`${info.apiUrl}/dashboard`);
  await page.getByLabel('Admin token').fill(info.adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('table', { name: 'Runners' }).getByRole('row').filter({ hasText: FAULTY_RUNNER }).waitFor({ timeout: 30_000 });
}

async function main(): Promise<void> {
  const env: NodeJS.ProcessEnv = {};
  // The demo's own settings only (a generated admin token, demo timings), whatever this shell has.
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('E2EPOOL_') || key === 'E2EPOOL_LOG_LEVEL') env[key] = value;
  const args = [path.join(root, 'bin', 'e2epool.js'), 'dev', '--port', '0', '--temporal-port', '0', '--ui-port', '0', '--data-dir', path.join(workDir, 'data'), '--profile', 'fast', '--runners', String(flags.runners)];
  say(`starting e2epool dev in ${workDir}`);
  // Its own process group: a Ctrl-C here reaches it once, as the SIGINT this script forwards.
  dev = spawn(process.execPath, args, { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const child = dev;
  devExited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const log = createWriteStream(logFile);
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    log.write(chunk);
  });
  child.stderr!.on('data', (chunk: Buffer) => log.write(chunk));
  const info = await until('e2epool dev to start', 180_000, async () => {
    if (child.exitCode !== null) {
      await new Promise((resolve) => log.end(resolve));
      throw new GiveUp(`e2epool dev exited with ${child.exitCode} during start:\n${readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n')}`);
    }
    return parseBanner(stdout);
  });
  say(`e2epool dev runs at ${info.apiUrl}; demo jobs run for ${warmupMinutes} min`);

  const state = async (): Promise<any> => {
    const res = await fetch(`${info.apiUrl}/api/dashboard/state`, { headers: { authorization: `Bearer ${info.adminToken}` } });
    if (!res.ok) throw new Error(`GET /api/dashboard/state: ${res.status}`);
    return res.json();
  };
  const warmupEnd = Date.now() + warmupMinutes * 60_000;
  while (Date.now() < warmupEnd) {
    await sleep(Math.min(30_000, warmupEnd - Date.now()));
    if (child.exitCode !== null) throw new Error(`e2epool dev exited with ${child.exitCode}; see ${logFile}`);
    const s = await state().catch(() => undefined);
    const jobs = s?.outcomes?.jobs;
    if (jobs) say(`demo jobs passed / failed / canceled so far: ${jobs.succeeded} / ${jobs.failed} / ${jobs.canceled}`);
  }

  // The next rollback of VM 101 fails as a Proxmox task: the workflow stops and asks for an operator.
  await proxmoxAdmin(info.proxmoxUrl, 'POST', 'faults', { type: 'task-fail', op: 'snapshot-rollback', vmid: FAULTY_VMID, exitstatus: ROLLBACK_ERROR });
  say(`rollbacks of VM ${FAULTY_VMID} (${FAULTY_RUNNER}) now fail; waiting for its next failed job`);
  const attention = await until(`${FAULTY_RUNNER} in needs attention`, 180_000, async () => {
    if (child.exitCode !== null) throw new GiveUp(`e2epool dev exited with ${child.exitCode}; see ${logFile}`);
    const s = await state();
    const problem = s.poolProblems.items.find((p: any) => p.kind === 'needs_attention' && p.runnerId === FAULTY_RUNNER);
    // The workflow raises its alert right after it projects the state.
    if (problem && s.alerts.some((a: any) => a.checkpointName === problem.checkpointName)) return problem.checkpointName as string;
    return undefined;
  });
  await proxmoxAdmin(info.proxmoxUrl, 'DELETE', 'faults');
  say(`checkpoint ${attention} needs attention`);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  await signIn(page, info);
  await page.locator('#live-status').filter({ hasText: /^Live$/ }).waitFor({ timeout: 30_000 });
  await page.getByRole('table', { name: /^Pool problems/ }).getByRole('link', { name: `Show checkpoint ${attention}` }).waitFor({ timeout: 30_000 });
  await until('the history pictures', 30_000, async () => ((await page.locator('#chart-outcomes rect[data-series]').count()) > 0
    && (await page.locator('#chart-reset polyline, #chart-reset circle').count()) > 0 ? true : undefined));
  await sleep(1000); // the last paint after the stream's first snapshot
  mkdirSync(outDir, { recursive: true });
  await page.screenshot({ path: path.join(outDir, 'dashboard-overview.png'), fullPage: true });
  say('dashboard-overview.png taken');

  await page.getByRole('table', { name: /^Pool problems/ }).getByRole('link', { name: `Show checkpoint ${attention}` }).click();
  await page.waitForURL(`${info.apiUrl}/dashboard/checkpoints/${attention}`);
  await page.getByRole('table', { name: 'Timeline' }).locator('tbody tr[data-seq]').first().waitFor({ timeout: 30_000 });
  await page.getByRole('table', { name: 'Alerts raised' }).getByRole('row').nth(1).waitFor({ timeout: 30_000 });
  await sleep(1000);
  await page.screenshot({ path: path.join(outDir, 'dashboard-checkpoint.png'), fullPage: true });
  say('dashboard-checkpoint.png taken');
  if (problems.length) throw new Error(`the page reported errors: ${problems.join('; ')}`);
  for (const name of ['dashboard-overview.png', 'dashboard-checkpoint.png']) {
    const size = statSync(path.join(outDir, name)).size;
    if (size > 1024 * 1024) throw new Error(`${name} is ${Math.round(size / 1024)} KiB, more than 1 MiB`);
  }
}

let failed = false;
const onSignal = () => {
  say('interrupted; stopping');
  failed = true;
  void stopEverything().finally(() => process.exit(1));
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);
try {
  await main();
} catch (err) {
  failed = true;
  console.error(`dashboard-screenshots: ${(err as Error).message}`);
} finally {
  await stopEverything();
  if (flags.keep || failed) say(`the demo's log and state are kept in ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
}
if (failed) process.exit(1);
say(`dashboard-overview.png and dashboard-checkpoint.png written to ${path.relative(root, outDir)}/`);
