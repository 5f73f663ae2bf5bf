// The operator dashboard in a real Chromium against the real API (Temporal dev server, checkpoint
// worker, PGlite): sign-in with a wrong and a right token, runners and checkpoints with their states
// and Temporal links, maintenance on and off, drain, release of a checkpoint in needs attention, and
// a live update arriving over the event stream without a reload or a poll.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { createApp } from '../../src/api/app.js';
import { createDashboardRouter, type DashboardRouter } from '../../src/api/routes/dashboard.js';
import { createLogger } from '../../src/logger.js';
import { raiseAlert } from '../../src/store/alert-store.js';
import { sql } from 'drizzle-orm';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { startDevServerEnv } from '../helpers/temporal.js';
import { repoRoot } from '../../temporal/tool-paths.js';
import { ADMIN_TOKEN, call, eventually, startApiHarness, type ApiHarness } from '../integration/api-harness.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PVE_SECRET = 'pve-secret-value-never-shown';

let env: TestWorkflowEnvironment;
let database: TestDatabase;
let h: ApiHarness;
let dashboard: DashboardRouter;
let server: Server;
let base: string;
let context: BrowserContext | undefined;
let userDataDir: string | undefined;

before(async () => {
  if (!existsSync(CHROMIUM)) {
    // Tests never skip: a missing browser is a failure, locally and with CI=true.
    throw new Error(`${CHROMIUM} is missing: run 'bash scripts/install-tools.sh' (Debian's chromium package)`);
  }
  [env, database] = await Promise.all([startDevServerEnv(), createPgliteDatabase()]);
  h = await startApiHarness(env, database);
  const logger = createLogger({ level: 'silent' });
  dashboard = createDashboardRouter({ db: database.db, config: h.config, logger, pollIntervalMs: 200, heartbeatMs: 500, refreshMs: 10_000, pagePollMs: 300, pageReconnectMs: 2000 });
  const app = createApp({ db: database.db, registry: h.registry, checkpoints: h.api.service, config: h.config, logger, temporal: { client: env.client }, extraRouters: [dashboard] });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  dashboard?.close();
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await h?.close();
  await env?.teardown();
  await database?.drop();
});

const admin = (method: string, p: string, body?: unknown) => call(base, method, p, { token: ADMIN_TOKEN, body });
const stateOf = async (token: string, name: string) => (await call(base, 'GET', `/checkpoint/status/${name}`, { token })).body.state as string;
const workflowLink = (name: string) => `http://127.0.0.1:8233/namespaces/default/workflows/${name}`;

async function createCheckpoint(runnerId: string, token: string, jobId: string) {
  return call(base, 'POST', '/checkpoint/create', { token, body: { runner_id: runnerId, job_id: jobId } });
}

async function textOf(locator: Locator, expected: RegExp, what: string): Promise<void> {
  await eventually(what, async () => expected.test((await locator.textContent({ timeout: 1000 })) ?? ''));
}

/** Reads the event stream until `until` accepts the blocks received so far. */
async function readStream(token: string, until: (blocks: string[]) => boolean): Promise<string[]> {
  const ctrl = new AbortController();
  const res = await fetch(`${base}/api/dashboard/events`, { headers: { authorization: `Bearer ${token}` }, signal: ctrl.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error('stream ended');
      buffer += decoder.decode(chunk.value, { stream: true });
      const blocks = buffer.split('\n\n').slice(0, -1);
      if (until(blocks)) return blocks;
    }
  } finally {
    ctrl.abort();
  }
}

void describe('operator dashboard', { timeout: 150_000 }, () => {
  let tokenA: string;
  let tokenB: string;
  let tokenC: string;
  let cpA: string;
  let cpB: string;

  before(async () => {
    tokenA = await h.registerRunner('dash-a', {
      backend: 'proxmox',
      proxmox_host: 'pve.example.test',
      proxmox_user: 'root@pam',
      proxmox_token_name: 'e2epool',
      proxmox_token_value: PVE_SECRET,
      proxmox_node: 'pve1',
      proxmox_vmid: 101,
      reset_cmd: null,
    });
    tokenB = await h.registerRunner('dash-b');
    tokenC = await h.registerRunner('dash-c');
    const a = await createCheckpoint('dash-a', tokenA, 'job-a1');
    assert.equal(a.status, 201, JSON.stringify(a.body));
    cpA = a.body.name;
    const b = await createCheckpoint('dash-b', tokenB, 'job-b1');
    assert.equal(b.status, 201, JSON.stringify(b.body));
    cpB = b.body.name;
    // No agent is connected, so the reset after a failed job ends in needs attention.
    assert.equal((await call(base, 'POST', '/checkpoint/finalize', { token: tokenB, body: { checkpoint_name: cpB, status: 'failure' } })).status, 202);
    await eventually('needs attention', async () => (await stateOf(tokenB, cpB)) === 'needs_attention', 30_000);
    // The workflow raises its alert right after projecting the state: wait for it too.
    await eventually('needs-attention alert', async () => ((await database.db.execute(sql`select 1 from alerts where key = ${`needs_attention:${cpB}`}`)) as any).rows.length > 0, 30_000);
    await raiseAlert(database.db, { key: 'runner_offline:dash-c', severity: 'warning', message: 'Agent of dash-c has been offline for 10 minutes', runnerId: 'dash-c' });
  });

  it('state and events need the admin token and carry no secret', async () => {
    assert.equal((await call(base, 'GET', '/api/dashboard/state')).status, 401);
    assert.deepEqual(await call(base, 'GET', '/api/dashboard/state', { token: 'wrong' }), { status: 403, body: { detail: 'Invalid admin token' } });
    assert.equal((await call(base, 'GET', '/api/dashboard/events', { token: 'wrong' })).status, 403);

    const res = await fetch(`${base}/api/dashboard/state`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const text = await res.text();
    assert.equal(res.status, 200);
    for (const secret of [PVE_SECRET, ADMIN_TOKEN, tokenA, tokenB, 'token_value', 'tokenHash']) assert.ok(!text.includes(secret), `snapshot contains ${secret}`);
    const state = JSON.parse(text);
    assert.deepEqual(state.runners.map((r: any) => [r.runnerId, r.status, r.agent.online, r.checkpoint?.name ?? null]), [
      ['dash-a', 'offline', false, cpA],
      ['dash-b', 'needs_attention', false, cpB],
      ['dash-c', 'offline', false, null],
    ]);
    assert.equal(state.runners[1].needsAttentionReason !== null, true);
    assert.deepEqual(state.runners.map((r: any) => r.agentCredential), ['runner_token', 'runner_token', 'runner_token'], 'the legacy scheme is shown');
    const byName = new Map(state.activeCheckpoints.map((c: any) => [c.name, c]));
    assert.deepEqual([(byName.get(cpA) as any).state, (byName.get(cpA) as any).phase], ['created', 'job running']);
    assert.deepEqual([(byName.get(cpB) as any).state, (byName.get(cpB) as any).phase], ['needs_attention', 'needs attention']);
    assert.equal((byName.get(cpA) as any).temporalUrl, workflowLink(cpA));
    assert.deepEqual(state.recentFailures.map((c: any) => [c.name, c.finalizeStatus]), [[cpB, 'failure']]);
    assert.deepEqual(state.alerts.map((a: any) => a.key).sort(), [`needs_attention:${cpB}`, 'runner_offline:dash-c']);
    assert.equal(state.maintenance.enabled, false);
    assert.equal(typeof state.queueDepth, 'number');

    // The stream opens with a snapshot and keeps itself alive with comment heartbeats.
    const blocks = await readStream(ADMIN_TOKEN, (b) => b.some((x) => x.startsWith(': heartbeat')));
    assert.match(blocks[0]!, /^event: state\ndata: \{/);
    assert.equal(JSON.parse(blocks[0]!.split('\ndata: ')[1]!).runners.length, 3);

    const page = await fetch(`${base}/dashboard`);
    const html = await page.text();
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'sha256-/);
    assert.ok(!html.includes(ADMIN_TOKEN) && !html.includes('dash-a'), 'the page itself carries no data and no secret');
    assert.ok(!/<script[^>]+src=|<link[^>]+href=(?!"data:)|https?:\/\//.test(html), 'no external assets');
    // The page's style and script are the files in src/dashboard/, inlined, and allowed by their hashes.
    const csp = page.headers.get('content-security-policy') ?? '';
    for (const [file, directive] of [['dashboard.js', 'script-src'], ['dashboard.css', 'style-src']] as const) {
      const text = readFileSync(path.join(repoRoot, 'src', 'dashboard', file), 'utf8');
      assert.ok(html.includes(text), `${file} is inlined as it is`);
      assert.ok(csp.includes(`${directive} 'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`), `${directive} allows ${file} by its hash`);
    }
  });

  it('in Chromium: sign in, watch, toggle maintenance, drain, release, and live updates', async () => {
    userDataDir = mkdtempSync(path.join(os.tmpdir(), 'e2epool-dashboard-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1440, height: 1000 } });
    const page: Page = context.pages()[0] ?? (await context.newPage());
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    const requests: Array<{ url: string; auth: string | undefined }> = [];
    page.on('request', (req) => requests.push({ url: req.url(), auth: req.headers().authorization }));

    await page.goto(`${base}/dashboard`);
    // A wrong token is refused with the API's answer, and the form stays.
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await textOf(page.getByRole('alert').filter({ hasText: 'Sign-in failed' }), /Sign-in failed \(403\): Invalid admin token/, 'wrong token error');
    assert.equal(await page.evaluate("sessionStorage.getItem('e2epool.adminToken')"), null);

    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const runnersTable = page.getByRole('table', { name: 'Runners' });
    const activeTable = page.getByRole('table', { name: 'Active checkpoints' });
    await runnersTable.getByRole('row').filter({ hasText: 'dash-a' }).waitFor();
    assert.equal(await page.evaluate("sessionStorage.getItem('e2epool.adminToken')"), ADMIN_TOKEN);
    await textOf(page.locator('#live-status'), /^Live$/, 'live stream');

    const rowA = activeTable.getByRole('row').filter({ hasText: cpA });
    await textOf(rowA, /created/, 'checkpoint A state');
    assert.equal(await activeTable.getByRole('link', { name: `Open ${cpA} in the Temporal Web UI` }).getAttribute('href'), workflowLink(cpA));
    const rowB = activeTable.getByRole('row').filter({ hasText: cpB });
    await textOf(rowB, /needs_attention/, 'checkpoint B state');
    await textOf(runnersTable.getByRole('row').filter({ hasText: 'dash-b' }), /needs attention/, 'runner B badge');
    await textOf(page.getByRole('table', { name: 'Recent failures (24 h)' }), new RegExp(cpB), 'failure listed');
    await textOf(page.getByRole('table', { name: 'Open alerts' }), /offline for 10 minutes/, 'alert listed');

    // Maintenance on: the banner shows the message and creates answer 503 with it.
    await page.getByLabel('Maintenance message').fill('Upgrading the controller until 14:00');
    await page.getByRole('button', { name: 'Enable maintenance', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Enable maintenance' }).click();
    const banner = page.locator('#maintenance-banner');
    await textOf(banner, /Maintenance mode is on: Upgrading the controller until 14:00/, 'maintenance banner');
    assert.deepEqual(await createCheckpoint('dash-c', tokenC, 'job-c0'), { status: 503, body: { detail: 'Upgrading the controller until 14:00' } });
    await page.getByRole('button', { name: 'Disable maintenance', exact: true }).click();
    await dialog.getByRole('button', { name: 'Disable maintenance' }).click();
    await banner.waitFor({ state: 'hidden' });
    assert.equal((await admin('GET', '/api/admin/maintenance')).body.enabled, false);

    // Cancel leaves the runner as it is; confirm drains it, and its creates answer 409.
    await page.getByRole('button', { name: 'Drain runner dash-c', exact: true }).click();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await h.registry.getRunner('dash-c'))?.drained, false);
    await page.getByRole('button', { name: 'Drain runner dash-c', exact: true }).click();
    await dialog.getByRole('button', { name: 'Drain', exact: true }).click();
    await textOf(page.locator('#action-result'), /Runner dash-c drained\./, 'drain result');
    await textOf(runnersTable.getByRole('row').filter({ hasText: 'dash-c' }), /drained/, 'drained badge');
    const refused = await createCheckpoint('dash-c', tokenC, 'job-c1');
    assert.equal(refused.status, 409);
    assert.match(refused.body.detail, /drained/);

    // Retry reset runs the reset again; with no agent it comes back to needs attention.
    await page.getByRole('button', { name: `Retry reset of ${cpB}`, exact: true }).click();
    await dialog.getByRole('button', { name: 'Retry reset' }).click();
    await textOf(page.locator('#action-result'), /Reset retry requested/, 'retry result');
    await eventually('back in needs attention after the retry', async () => {
      const detail = await admin('GET', `/api/checkpoints/${cpB}`);
      return detail.body.transitions.some((t: any) => t.event === 'retry_reset') && detail.body.checkpoint.state === 'needs_attention';
    }, 30_000);

    // Release with the snapshot deleted: the checkpoint leaves the active list and frees dash-b.
    await page.getByRole('button', { name: `Release ${cpB}`, exact: true }).click();
    await dialog.getByRole('checkbox', { name: 'Delete snapshot' }).check();
    await dialog.getByRole('button', { name: 'Release', exact: true }).click();
    await textOf(page.locator('#action-result'), new RegExp(`Release requested: ${cpB} \\(snapshot deleted\\)`), 'release result');
    await eventually('released', async () => (await stateOf(tokenB, cpB)) === 'released', 30_000);
    await activeTable.getByRole('row').filter({ hasText: cpB }).waitFor({ state: 'detached' });
    await textOf(runnersTable.getByRole('row').filter({ hasText: 'dash-b' }), /idle|offline/, 'runner B freed');
    const audit = await admin('GET', `/api/checkpoints/${cpB}`);
    assert.equal(audit.body.checkpoint.state, 'released');

    // A checkpoint created elsewhere appears through the stream: no reload, no state poll.
    await page.getByRole('button', { name: 'Undrain runner dash-c', exact: true }).click();
    await dialog.getByRole('button', { name: 'Undrain', exact: true }).click();
    await textOf(page.locator('#action-result'), /Runner dash-c undrained\./, 'undrain result');
    // Page scripts run in the browser (no DOM types here): a marker that a reload would wipe.
    await page.evaluate('window.loadedOnce = true');
    await new Promise((r) => setTimeout(r, 500));
    const polls = requests.filter((r) => r.url.endsWith('/api/dashboard/state')).length;
    const live = await createCheckpoint('dash-c', tokenC, 'job-c2');
    assert.equal(live.status, 201, JSON.stringify(live.body));
    const liveRow = activeTable.getByRole('row').filter({ hasText: live.body.name });
    await liveRow.waitFor({ timeout: 10_000 });
    await textOf(liveRow, /created/, 'live checkpoint state');
    assert.equal(await page.evaluate('window.loadedOnce'), true, 'the page was not reloaded');
    assert.equal(requests.filter((r) => r.url.endsWith('/api/dashboard/state')).length, polls, 'the update came over the stream');

    // A broken stream: the page polls (a drain made elsewhere shows up), then reopens the stream.
    dashboard.close();
    await textOf(page.locator('#live-status'), /Live stream interrupted; polling/, 'polling fallback');
    assert.equal((await admin('POST', '/api/runners/dash-a/drain')).status, 200);
    await textOf(runnersTable.getByRole('row').filter({ hasText: 'dash-a' }), /drained/, 'drain seen by polling');
    await textOf(page.locator('#live-status'), /^Live$/, 'stream reopened');

    // The token only ever travelled in the Authorization header.
    assert.ok(requests.every((r) => !r.url.includes(ADMIN_TOKEN)));
    const events = requests.filter((r) => r.url.endsWith('/api/dashboard/events'));
    assert.ok(events.length >= 1 && events.every((r) => r.auth === `Bearer ${ADMIN_TOKEN}`));

    const shot = path.join(os.tmpdir(), 'e2epool-dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.deepEqual(problems.filter((p) => !/status of 403/.test(p)), [], 'no script errors, no CSP violations');
  });
});
