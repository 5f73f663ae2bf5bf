// The operator dashboard in a real Chromium against the real API (Temporal dev server, checkpoint
// worker, PGlite): sign-in with a wrong and a right token; the header's reachability, version and
// maintenance; pool-problem tiles apart from job outcomes; the history pictures for 24 h and 7 d;
// the runners table (last seen after a disconnect, boot id, GitLab paused, filter, sort, fits 1366
// px); a checkpoint's own page with its timeline, step results, alerts, Temporal link and actions;
// maintenance on and off, drain, retry reset, release, job outcomes paged; a live update arriving
// over the event stream without a reload or a poll, and polling while the stream is down.
// With DASHBOARD_SCREENSHOTS_DIR set it also writes the screenshots the runbook shows.
// Over 400 lines on purpose: it checks one whole surface against one expensive set-up started once
// per file; split, each part would start it again.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { sql } from 'drizzle-orm';
import { createApp } from '../../src/api/app.js';
import { createDashboardRouter, type DashboardRouter } from '../../src/api/routes/dashboard.js';
import { PresenceStore } from '../../src/gateway/presence-store.js';
import { createLogger } from '../../src/logger.js';
import { raiseAlert } from '../../src/store/alert-store.js';
import { repoRoot } from '../../temporal/tool-paths.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { startDevServerEnv } from '../helpers/temporal.js';
import { ADMIN_TOKEN, call, startApiHarness, type ApiHarness } from '../helpers/api-harness.js';
import { eventually } from '../helpers/eventually.js';

/** How the tests poll the page and the API: up to 15 s (30 s for the workflow's steps), every 100 ms. */
const POLL = { timeoutMs: 15_000, intervalMs: 100 };
const SLOW_POLL = { timeoutMs: 30_000, intervalMs: 100 };
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PVE_SECRET = 'pve-secret-value-never-shown';
const SCREENSHOTS = process.env.DASHBOARD_SCREENSHOTS_DIR ? path.resolve(process.env.DASHBOARD_SCREENSHOTS_DIR) : null;
/** Runners with history only (never a live checkpoint): they fill the pictures and the table. */
const POOL = ['pool-01', 'pool-02', 'pool-03', 'pool-04', 'pool-05'];
const FAKE_INSTANCE = 'dashboard-test-instance';
/** Failed jobs of the synthetic history that were rolled back cleanly: more than one page (20). */
const ROLLED_BACK_JOBS = 24;

let env: TestWorkflowEnvironment;
let database: TestDatabase;
let h: ApiHarness;
let dashboard: DashboardRouter;
let server: Server;
let base: string;
let context: BrowserContext | undefined;
let userDataDir: string | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    // Tests never skip: a missing browser is a failure, locally and with CI=true.
    throw new Error(`${CHROMIUM} is missing: run 'bash scripts/install-tools.sh' (Debian's chromium package)`);
  }
  [env, database] = await Promise.all([startDevServerEnv(), createPgliteDatabase()]);
  h = await startApiHarness(env, database);
  const logger = createLogger({ level: 'silent' });
  dashboard = createDashboardRouter({ db: database.db, config: h.config, logger, pollIntervalMs: 200, heartbeatMs: 500, refreshMs: 10_000, pagePollMs: 300, pageReconnectMs: 2000, stuckAfterSeconds: 600 });
  const app = createApp({ db: database.db, registry: h.registry, checkpoints: h.api.service, config: h.config, logger, temporal: { client: env.client }, extraRouters: [dashboard] });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
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
  await eventually(what, async () => expected.test((await locator.textContent({ timeout: 1000 })) ?? ''), POLL);
}

/** Every string that looks like a time must be ISO 8601 in UTC with `Z`. */
function assertZonedTimes(value: unknown, where: string): void {
  if (typeof value === 'string') {
    if (/^\d{4}-\d\d-\d\d[T ]\d\d:\d\d/.test(value)) assert.match(value, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `${where}: ${value}`);
  } else if (Array.isArray(value)) value.forEach((v, i) => assertZonedTimes(v, `${where}[${i}]`));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) assertZonedTimes(v, `${where}.${k}`);
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

/**
 * A day of finished work on the pool runners, written straight into the read model as the
 * workflow would have projected it: passed jobs cleaned up, failed jobs rolled back, a TTL reclaim,
 * a failed create and a released needs-attention. Deterministic (no randomness).
 */
async function seedHistory(db: TestDatabase['db']): Promise<void> {
  const now = Date.now();
  const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();
  let n = 0;
  async function checkpoint(kind: 'ok' | 'job_failed' | 'gc_reset' | 'create_failed' | 'released', endedMinutesAgo: number, resetMinutes = 3, readinessMinutes = 1) {
    n += 1;
    const name = `hist-${String(n).padStart(3, '0')}`;
    const runner = POOL[n % POOL.length]!;
    const ended = endedMinutesAgo;
    const ready = ended + 0.2;
    const resetDone = ready + readinessMinutes;
    const resetStarted = resetDone + resetMinutes;
    const finalized = resetStarted + 0.5 + (n % 3);
    const created = finalized + 8 + (n % 7) * 3;
    const steps: Array<[string | null, string, string, number]> = [[null, 'created', 'snapshot_taken', created - 0.3]];
    let state: string;
    let finalize: string | null = null;
    if (kind === 'create_failed') {
      steps.length = 0;
      steps.push([null, 'create_failed', 'create_failed', ended]);
      state = 'create_failed';
    } else if (kind === 'ok') {
      finalize = 'success';
      steps.push(['created', 'finalize_queued', 'finalize_requested', finalized], ['finalize_queued', 'cleaning', 'cleanup_started', finalized - 0.2], ['cleaning', 'deleted', 'cleanup_done', ended]);
      state = 'deleted';
    } else if (kind === 'gc_reset') {
      steps.push(['created', 'resetting', 'ttl_expired', resetStarted], ['resetting', 'awaiting_readiness', 'reset_done', resetDone], ['awaiting_readiness', 'gc_reset', 'ready', ended]);
      state = 'gc_reset';
    } else {
      finalize = kind === 'released' ? 'failure' : n % 5 === 0 ? 'canceled' : 'failure';
      steps.push(['created', 'finalize_queued', 'finalize_requested', finalized], ['finalize_queued', 'pausing', 'reset_started', resetStarted + 0.3], ['pausing', 'resetting', 'paused', resetStarted]);
      if (kind === 'released') {
        steps.push(['resetting', 'needs_attention', 'step_failed', resetDone], ['needs_attention', 'released', 'release_requested', ended]);
        state = 'released';
      } else {
        steps.push(['resetting', 'awaiting_readiness', 'reset_done', resetDone], ['awaiting_readiness', 'unpausing', 'ready', ready], ['unpausing', 'reset', 'unpaused', ended]);
        state = 'reset';
      }
    }
    const finalizedAt = finalize ? at(finalized) : null;
    const isReset = kind === 'job_failed' || kind === 'gc_reset' || kind === 'released';
    await db.execute(sql`insert into checkpoints (name, runner_id, job_id, backend, state, finalize_status, finalize_source, finalize_queued_at, created_at, created_done_at, reset_started_at, ready_at, ended_at, updated_at, detail)
      values (${name}, ${runner}, ${`job-${1000 + n}`}, 'bare_metal', ${state}, ${finalize}, ${finalize ? 'gitlab_webhook' : null}, ${finalizedAt}::timestamptz, ${at(created)}::timestamptz,
        ${kind === 'create_failed' ? null : at(created - 0.3)}::timestamptz, ${isReset ? at(resetStarted) : null}::timestamptz, ${isReset && kind !== 'released' ? at(ready) : null}::timestamptz,
        ${at(ended)}::timestamptz, ${at(ended)}::timestamptz, ${kind === 'create_failed' ? 'Snapshot failed: storage local-lvm is full' : null})`);
    let seq = 0;
    for (const [from, to, event, minutesAgo] of steps) {
      seq += 1;
      await db.execute(sql`insert into checkpoint_transitions (checkpoint_name, runner_id, seq, from_state, to_state, event, detail, at)
        values (${name}, ${runner}, ${seq}, ${from}, ${to}, ${event}, ${event === 'step_failed' ? 'reset command exit 2: disk busy' : null}, ${at(minutesAgo)}::timestamptz)`);
    }
  }
  // Steady work over the last day, busier in the last hours; some resets slow down lately.
  for (let i = 0; i < 60; i++) await checkpoint('ok', 20 + i * 22);
  for (let i = 0; i < ROLLED_BACK_JOBS; i++) await checkpoint('job_failed', 15 + i * 41, i < 6 ? 6 + i : 3, i % 4 === 0 ? 2 : 1);
  await checkpoint('gc_reset', 300);
  await checkpoint('create_failed', 45);
  await checkpoint('released', 600);
  // Earlier days too, for the 7 d picture.
  for (let i = 0; i < 20; i++) await checkpoint(i % 4 === 0 ? 'job_failed' : 'ok', 2 * 24 * 60 + i * 180);
}

describe('operator dashboard', { timeout: 180_000 }, () => {
  let tokenA: string;
  let tokenB: string;
  let tokenC: string;
  let cpA: string;
  let cpB: string;
  const stuckName = 'dash-d-stuck';

  beforeAll(async () => {
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
    tokenB = await h.registerRunner('dash-b', { gitlab_runner_id: 42 });
    tokenC = await h.registerRunner('dash-c');
    await h.registerRunner('dash-d');
    for (const id of POOL) await h.registerRunner(id, { gitlab_runner_id: 100 + POOL.indexOf(id) });
    const a = await createCheckpoint('dash-a', tokenA, 'job-a1');
    assert.equal(a.status, 201, JSON.stringify(a.body));
    cpA = a.body.name;
    const b = await createCheckpoint('dash-b', tokenB, 'job-b1');
    assert.equal(b.status, 201, JSON.stringify(b.body));
    cpB = b.body.name;
    // No agent is connected, so the reset after a failed job ends in needs attention.
    assert.equal((await call(base, 'POST', '/checkpoint/finalize', { token: tokenB, body: { checkpoint_name: cpB, status: 'failure' } })).status, 202);
    await eventually('needs attention', async () => (await stateOf(tokenB, cpB)) === 'needs_attention', SLOW_POLL);
    // The workflow raises its alert right after projecting the state: wait for it too.
    await eventually('needs-attention alert', async () => ((await database.db.execute(sql`select 1 from alerts where key = ${`needs_attention:${cpB}`}`)) as any).rows.length > 0, SLOW_POLL);
    await raiseAlert(database.db, { key: 'runner_offline:dash-c', severity: 'warning', message: 'Agent of dash-c has been offline for 10 minutes', runnerId: 'dash-c' });
    // A checkpoint that stopped moving (no workflow behind it: written as a projection would be).
    await database.db.execute(sql`insert into checkpoints (name, runner_id, job_id, backend, state, finalize_status, finalize_queued_at, created_at, updated_at, reset_started_at, holds_claim, detail)
      values (${stuckName}, 'dash-d', 'job-d1', 'bare_metal', 'awaiting_readiness', 'failure', now() - interval '50 minutes', now() - interval '1 hour', now() - interval '40 minutes', now() - interval '45 minutes', false, 'waiting for the readiness command')`);
    await database.db.execute(sql`insert into checkpoint_transitions (checkpoint_name, runner_id, seq, from_state, to_state, event, at)
      values (${stuckName}, 'dash-d', 1, null, 'created', 'snapshot_taken', now() - interval '59 minutes'),
             (${stuckName}, 'dash-d', 2, 'created', 'finalize_queued', 'finalize_requested', now() - interval '50 minutes'),
             (${stuckName}, 'dash-d', 3, 'finalize_queued', 'resetting', 'reset_started', now() - interval '45 minutes'),
             (${stuckName}, 'dash-d', 4, 'resetting', 'awaiting_readiness', 'reset_done', now() - interval '40 minutes')`);
    await seedHistory(database.db);
    // Agent sessions: dash-c's agent came and went (its last session is kept); the pool runners are
    // online on a live instance (no checkpoint is ever routed to them).
    const presence = new PresenceStore(database.db, FAKE_INSTANCE);
    await database.db.execute(sql`insert into controller_instances (instance_id) values (${FAKE_INSTANCE})`);
    const epochC = await presence.nextEpoch();
    await presence.upsert({ runnerId: 'dash-c', sessionEpoch: epochC, bootId: 'b7f3c2d1-0c4e-4a51-9d7e-5b2f8a61c0de', agentVersion: '0.1.0', declaredCommands: ['reset'] }, { connected: true });
    assert.equal(await presence.remove('dash-c', epochC), true);
    for (const id of POOL) await presence.upsert({ runnerId: id, sessionEpoch: await presence.nextEpoch(), bootId: `${(0x3a7c10 + POOL.indexOf(id) * 0x1f3d).toString(16)}e2-9b4d-4c1a-8f0e-2d6b${POOL.indexOf(id)}c5a7e91`, agentVersion: '0.1.0', declaredCommands: ['reset'] }, { connected: true });
  });

  /** Keeps the stand-in instance fresh, so the pool runners stay online while the test looks. */
  const keepInstanceAlive = () => database.db.execute(sql`update controller_instances set last_seen = now() where instance_id = ${FAKE_INSTANCE}`);
  let heartbeat: NodeJS.Timeout | undefined;
  beforeAll(() => {
    heartbeat = setInterval(() => void keepInstanceAlive().catch(() => {}), 5000);
  });
  afterAll(() => clearInterval(heartbeat));

  it('state, history, job outcomes and a checkpoint need the admin token, carry no secret, and time in UTC with Z', async () => {
    await keepInstanceAlive();
    for (const p of ['/api/dashboard/state', '/api/dashboard/history', '/api/dashboard/job-outcomes', `/api/dashboard/checkpoints/${cpB}`]) {
      assert.equal((await call(base, 'GET', p)).status, 401, p);
      assert.deepEqual(await call(base, 'GET', p, { token: 'wrong' }), { status: 403, body: { detail: 'Invalid admin token' } }, p);
    }
    assert.equal((await call(base, 'GET', '/api/dashboard/events', { token: 'wrong' })).status, 403);

    const res = await fetch(`${base}/api/dashboard/state`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const text = await res.text();
    assert.equal(res.status, 200);
    for (const secret of [PVE_SECRET, ADMIN_TOKEN, tokenA, tokenB, 'token_value', 'tokenHash']) assert.ok(!text.includes(secret), `snapshot contains ${secret}`);
    const state = JSON.parse(text);
    assertZonedTimes(state, 'state');
    const dash = state.runners.filter((r: any) => r.runnerId.startsWith('dash-'));
    assert.deepEqual(dash.map((r: any) => [r.runnerId, r.status, r.agent.online, r.checkpoint?.name ?? null]), [
      ['dash-a', 'offline', false, cpA],
      ['dash-b', 'needs_attention', false, cpB],
      ['dash-c', 'offline', false, null],
      ['dash-d', 'offline', false, stuckName],
    ]);
    assert.equal(dash[1].needsAttentionReason !== null, true);
    assert.deepEqual(dash.map((r: any) => r.agentCredential), ['runner_token', 'runner_token', 'runner_token', 'runner_token'], 'the legacy scheme is shown');
    assert.deepEqual(dash.map((r: any) => r.gitlabPaused), [null, true, null, null], 'dash-b has a GitLab runner, paused by its reset');
    // dash-c's agent is gone, but its last session is still shown.
    const c = dash[2].agent;
    assert.equal(c.bootId, 'b7f3c2d1-0c4e-4a51-9d7e-5b2f8a61c0de');
    assert.equal(c.version, '0.1.0');
    assert.ok(c.lastSeen && c.disconnectedAt && Date.now() - Date.parse(c.disconnectedAt) < 120_000, JSON.stringify(c));
    const pool = state.runners.filter((r: any) => POOL.includes(r.runnerId));
    assert.deepEqual(pool.map((r: any) => [r.status, r.agent.online, r.gitlabPaused]), POOL.map(() => ['idle', true, false]));

    const byName = new Map(state.activeCheckpoints.map((x: any) => [x.name, x]));
    assert.deepEqual([(byName.get(cpA) as any).state, (byName.get(cpA) as any).phase], ['created', 'job running']);
    assert.deepEqual([(byName.get(cpB) as any).state, (byName.get(cpB) as any).phase], ['needs_attention', 'needs attention']);
    assert.equal((byName.get(cpA) as any).temporalUrl, workflowLink(cpA));
    assert.deepEqual(state.activeCheckpoints.filter((x: any) => x.stuck).map((x: any) => x.name), [stuckName]);
    assert.deepEqual(state.alerts.map((a: any) => a.key).sort(), [`needs_attention:${cpB}`, 'runner_offline:dash-c']);
    assert.equal(state.maintenance.enabled, false);
    assert.equal(typeof state.queueDepth, 'number');

    // Pool problems and job outcomes apart: the rolled-back jobs are clean ends of the pool.
    assert.deepEqual(state.problems, { needsAttention: 1, stuck: 1, offline: 4 });
    assert.deepEqual(state.poolProblems.items.map((p: any) => [p.kind, p.checkpointName]).sort(), [['create_failed', 'hist-086'], ['needs_attention', cpB], ['stuck', stuckName]].sort());
    const na = state.poolProblems.items.find((p: any) => p.kind === 'needs_attention');
    assert.equal(na.reason, dash[1].needsAttentionReason, 'the needs-attention reason, not the last transition');
    assert.match(state.poolProblems.items.find((p: any) => p.kind === 'create_failed').detail, /storage local-lvm is full/);
    assert.deepEqual(state.outcomes.jobs, { succeeded: 60, failed: ROLLED_BACK_JOBS - 4 + 3, canceled: 4 }, 'finalized in 24 h: cpB, the stuck and the released one failed too');
    // 60 cleaned up, 24 rolled back and 1 reclaimed end cleanly; cpB and the released one entered needs attention, one create failed.
    assert.deepEqual(state.outcomes.pool, { cleanEnds: 85, problems: 3, successRate: Math.round((85 / 88) * 1000) / 1000 });
    assert.equal(state.jobOutcomes.total, ROLLED_BACK_JOBS + 3);
    assert.equal(state.jobOutcomes.items.length, 20);
    assert.ok(state.jobOutcomes.nextCursor);
    assert.ok(state.jobOutcomes.items.every((j: any) => j.handled === 'rolled_back' || j.state === 'released'), 'newest first: the synthetic day');
    const next = await admin('GET', `/api/dashboard/job-outcomes?cursor=${state.jobOutcomes.nextCursor}`);
    assert.equal(next.status, 200);
    assert.equal(next.body.items.length, ROLLED_BACK_JOBS + 3 - 20);
    assert.equal(next.body.nextCursor, null);
    assert.deepEqual(Object.fromEntries(next.body.items.map((j: any) => [j.checkpointName, j.handled]).filter(([n]: string[]) => !n!.startsWith('hist-'))), { [stuckName]: 'in_progress', [cpB]: 'pool_problem' });
    assert.equal((await admin('GET', '/api/dashboard/job-outcomes?limit=0')).status, 422);
    assert.equal((await admin('GET', '/api/dashboard/job-outcomes?cursor=nonsense')).status, 422);

    // History: outcomes per hour, durations over time and queue depth derived from transitions.
    const day = await admin('GET', '/api/dashboard/history?range=24h');
    assert.equal(day.status, 200);
    assertZonedTimes(day.body, 'history');
    assert.equal(day.body.checkpoints.length, 24);
    const sum = (key: string) => day.body.checkpoints.reduce((n: number, b: any) => n + b[key], 0);
    assert.deepEqual([sum('ok'), sum('job_failed'), sum('gc_reset'), sum('released')], [60, ROLLED_BACK_JOBS, 1, 1]);
    assert.equal(sum('pool_problem'), 3, 'the failed create and two entries into needs attention');
    const resets = day.body.durations.filter((b: any) => b.reset.count > 0);
    assert.ok(resets.length > 3 && resets.every((b: any) => b.reset.p95 >= b.reset.p50), 'reset percentiles per hour');
    assert.ok(day.body.queue.points.length >= 90 && day.body.queue.points.some((p: any) => p.depth > 0), 'queue depth sampled every 15 min');
    assert.ok(day.body.queue.points.at(-1).depth >= 1, 'the stuck checkpoint is still queued');
    const week = await admin('GET', '/api/dashboard/history?range=7d');
    assert.equal(week.body.checkpoints.length, 28);
    assert.equal(week.body.checkpoints.reduce((n: number, b: any) => n + b.ok + b.job_failed, 0), 60 + ROLLED_BACK_JOBS + 20);
    assert.equal((await admin('GET', '/api/dashboard/history?range=1y')).status, 422);

    // One checkpoint: timeline with time per step, step results, alerts, Temporal link and actions.
    const detail = await admin('GET', `/api/dashboard/checkpoints/${cpB}`);
    assert.equal(detail.status, 200);
    assertZonedTimes(detail.body, 'checkpoint');
    assert.equal(detail.body.temporalUrl, workflowLink(cpB));
    assert.deepEqual(detail.body.actions, { retryReset: true, release: true });
    assert.equal(detail.body.timeline.at(-1).to, 'needs_attention');
    assert.ok(detail.body.timeline.every((t: any) => typeof t.seconds === 'number' && t.seconds >= 0));
    assert.ok(detail.body.commandResults.some((r: any) => !r.ok), JSON.stringify(detail.body.commandResults));
    assert.deepEqual(detail.body.alerts.map((a: any) => [a.key, a.resolvedAt]), [[`needs_attention:${cpB}`, null]]);
    const ended = await admin('GET', '/api/dashboard/checkpoints/hist-061');
    assert.deepEqual(ended.body.actions, { retryReset: false, release: false });
    assert.equal(ended.body.timeline.at(-1).seconds, null, 'an end state has no duration');
    assert.deepEqual(ended.body.commandResults.map((r: any) => [r.step, r.ok]), [['snapshot', true], ['pause', true], ['reset', true], ['readiness', true], ['unpause', true]]);
    assert.deepEqual(await admin('GET', '/api/dashboard/checkpoints/no-such-checkpoint'), { status: 404, body: { detail: 'Checkpoint not found' } });

    // The stream opens with a snapshot and keeps itself alive with comment heartbeats.
    const blocks = await readStream(ADMIN_TOKEN, (b) => b.some((x) => x.startsWith(': heartbeat')));
    assert.match(blocks[0]!, /^event: state\ndata: \{/);
    assert.equal(JSON.parse(blocks[0]!.split('\ndata: ')[1]!).runners.length, 4 + POOL.length);

    for (const p of ['/dashboard', `/dashboard/checkpoints/${cpB}`]) {
      const page = await fetch(`${base}${p}`);
      const html = await page.text();
      assert.equal(page.status, 200);
      const csp = page.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'; script-src 'sha256-/);
      assert.ok(!html.includes(ADMIN_TOKEN) && !html.includes('dash-a') && !html.includes(cpB), 'the page itself carries no data and no secret');
      // Nothing is loaded from elsewhere: no src, no stylesheet link, no CSS import or url().
      assert.ok(!/<script[^>]+src=|<link[^>]+href=(?!"data:)|@import|url\(/.test(html), 'no external assets');
      assert.deepEqual([...html.matchAll(/<script>/g)].length, 1, 'one script, the hashed one');
      // The page's style and script are the files in src/dashboard/, inlined, and allowed by their hashes.
      for (const [file, directive] of [['dashboard.js', 'script-src'], ['dashboard.css', 'style-src']] as const) {
        const text = readFileSync(path.join(repoRoot, 'src', 'dashboard', file), 'utf8');
        assert.ok(html.includes(text), `${file} is inlined as it is`);
        assert.ok(csp.includes(`${directive} 'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`), `${directive} allows ${file} by its hash`);
      }
    }
  });

  it('in Chromium: sign in, header, tiles, pictures, runners, a checkpoint page, actions and live updates', async () => {
    userDataDir = mkdtempSync(path.join(os.tmpdir(), 'e2epool-dashboard-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1366, height: 900 } });
    const page: Page = context.pages()[0] ?? (await context.newPage());
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    const requests: Array<{ url: string; auth: string | undefined }> = [];
    page.on('request', (req) => requests.push({ url: req.url(), auth: req.headers().authorization }));
    const shoot = async (name: string) => {
      if (!SCREENSHOTS) return;
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: true });
    };
    await keepInstanceAlive();

    await page.goto(`${base}/dashboard`);
    // Before sign-in: no live badge and no sign-out button.
    assert.equal(await page.locator('#live-status').isVisible(), false);
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).isVisible(), false);
    // A wrong token is refused with the API's answer, and the form stays.
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await textOf(page.getByRole('alert').filter({ hasText: 'Sign-in failed' }), /Sign-in failed \(403\): Invalid admin token/, 'wrong token error');
    assert.equal(await page.evaluate("sessionStorage.getItem('e2epool.adminToken')"), null);

    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const runnersTable = page.getByRole('table', { name: 'Runners' });
    const activeTable = page.getByRole('table', { name: 'Active checkpoints' });
    const problemsTable = page.getByRole('table', { name: /^Pool problems/ });
    await runnersTable.getByRole('row').filter({ hasText: 'dash-a' }).waitFor();
    assert.equal(await page.evaluate("sessionStorage.getItem('e2epool.adminToken')"), ADMIN_TOKEN);
    await textOf(page.locator('#live-status'), /^Live$/, 'live stream');

    // Header: reachability from /health, version, maintenance.
    await textOf(page.locator('#hdr-temporal'), /^Temporal reachable$/, 'Temporal chip');
    await textOf(page.locator('#hdr-database'), /^Database reachable$/, 'database chip');
    await textOf(page.locator('#hdr-version'), /^version \d+\.\d+\.\d+/, 'version chip');
    await textOf(page.locator('#hdr-maintenance'), /^Maintenance off$/, 'maintenance chip');

    // Tiles: pool problems apart from job outcomes.
    await textOf(page.getByLabel('Runners needing attention'), /^1$/, 'attention tile');
    await textOf(page.getByLabel('Stuck checkpoints'), /^1$/, 'stuck tile');
    await textOf(page.getByLabel('Runners offline'), /^4$/, 'offline tile');
    await textOf(page.getByLabel('Pool success rate'), /^96\.6 %$/, 'pool success tile');
    await textOf(page.getByLabel('Job outcomes', { exact: true }), /^60 \/ 23 \/ 4$/, 'job outcomes tile');

    // Pool problems with their reasons, linking to the checkpoint page.
    await textOf(problemsTable.getByRole('row').filter({ hasText: 'needs attention' }), new RegExp(cpB), 'needs attention problem');
    await textOf(problemsTable.getByRole('row').filter({ hasText: 'create failed' }), /storage local-lvm is full/, 'create failure with its reason');
    await textOf(problemsTable.getByRole('row').filter({ hasText: stuckName }), /no progress in awaiting_readiness for 40 min/, 'stuck checkpoint');
    assert.equal(await problemsTable.getByRole('link', { name: `Show checkpoint ${cpB}` }).getAttribute('href'), `/dashboard/checkpoints/${cpB}`);

    // Pictures drawn as SVG: stacked outcome bars, duration lines, queue depth; 24 h and 7 d.
    await eventually('outcome bars', async () => (await page.locator('#chart-outcomes rect[data-series="ok"]').count()) > 5, POLL);
    assert.ok((await page.locator('#chart-outcomes rect[data-series="job_failed"]').count()) > 5);
    assert.ok((await page.locator('#chart-outcomes rect[data-series="pool_problem"]').count()) >= 1);
    assert.ok((await page.locator('#chart-reset polyline.s-p95').count()) >= 1);
    assert.ok((await page.locator('#chart-turnaround polyline.s-p50').count()) >= 1);
    assert.ok((await page.locator('#chart-queue polygon').count()) === 1);
    await textOf(page.locator('#chart-outcomes-title'), /per hour/, 'hourly');
    await textOf(page.getByRole('table', { name: /^Failed and canceled jobs/ }), /rolled back/, 'job outcomes listed');
    await shoot('dashboard-overview.png');
    await page.getByRole('button', { name: '7 d' }).click();
    await textOf(page.locator('#chart-outcomes-title'), /per 6 h/, 'six-hourly');
    assert.equal(await page.locator('#charts-heading').getAttribute('data-range'), '7d');
    await page.getByRole('button', { name: '24 h' }).click();

    // Runners: the table fits 1366 px; last seen after a disconnect, boot id, GitLab paused.
    const fits = await page.evaluate("(() => { const t = document.querySelector('table.runners'); return t.getBoundingClientRect().right <= document.documentElement.clientWidth && document.documentElement.scrollWidth <= document.documentElement.clientWidth; })()");
    assert.equal(fits, true, 'the runners table fits 1366 px without horizontal scrolling');
    const scrolled = await page.evaluate("[...document.querySelectorAll('#app .table-wrap')].filter((w) => w.scrollWidth > w.clientWidth).map((w) => w.querySelector('table').getAttribute('aria-labelledby'))");
    assert.deepEqual(scrolled, [], 'no table of the overview scrolls sideways at 1366 px');
    const rowC = runnersTable.getByRole('row').filter({ hasText: 'dash-c' });
    await textOf(rowC, /disconnected/, 'dash-c last seen kept after the disconnect');
    await textOf(rowC, /boot b7f3c2d1/, 'boot id');
    assert.ok(!/never/.test((await rowC.textContent()) ?? ''));
    await textOf(runnersTable.getByRole('row').filter({ hasText: 'dash-b' }), /needs attention[\s\S]*paused/, 'runner B badge and GitLab paused');
    await textOf(runnersTable.getByRole('row').filter({ hasText: 'pool-03' }), /online[\s\S]*now[\s\S]*active/, 'an online runner');
    // Filter and sort.
    await page.getByLabel('Filter').fill('pool-0');
    await textOf(page.locator('#runner-count'), /^5 of 9$/, 'text filter');
    await page.getByLabel('Filter').fill('');
    await page.getByLabel('Status', { exact: true }).selectOption('problems');
    await textOf(page.locator('#runner-count'), /^4 of 9$/, 'problems filter');
    const firstRunner = () => runnersTable.locator('tbody tr').first().getAttribute('data-runner');
    assert.equal(await firstRunner(), 'dash-b', 'needs attention sorts first');
    await page.getByRole('button', { name: 'Sort by runner' }).click();
    assert.equal(await firstRunner(), 'dash-a');
    await page.getByRole('button', { name: 'Sort by runner' }).click();
    assert.equal(await firstRunner(), 'dash-d', 'descending on the second click');
    await page.getByLabel('Status', { exact: true }).selectOption('');

    const rowA = activeTable.getByRole('row').filter({ hasText: cpA });
    await textOf(rowA, /created/, 'checkpoint A state');
    assert.equal(await activeTable.getByRole('link', { name: `Open ${cpA} in the Temporal Web UI` }).getAttribute('href'), workflowLink(cpA));
    await textOf(activeTable.getByRole('row').filter({ hasText: cpB }), /needs_attention/, 'checkpoint B state');
    await textOf(activeTable.getByRole('row').filter({ hasText: stuckName }), /stuck/, 'stuck badge');
    await textOf(page.getByRole('table', { name: 'Open alerts' }), /offline for 10 minutes/, 'alert listed');

    // Job outcomes: the first page, then the rest on request.
    const jobsTable = page.getByRole('table', { name: /^Failed and canceled jobs/ });
    await textOf(page.locator('#job-outcomes-count'), /^\(20 of 27\)$/, 'first page');
    await page.getByRole('button', { name: 'Show more' }).click();
    await textOf(page.locator('#job-outcomes-count'), /^\(27\)$/, 'all pages');
    assert.equal(await jobsTable.locator('tbody tr').count(), 27);
    assert.equal(await page.getByRole('button', { name: 'Show more' }).isVisible(), false);

    // Maintenance on: the banner shows the message and creates answer 503 with it.
    await page.getByLabel('Maintenance message').fill('Upgrading the controller until 14:00');
    await page.getByRole('button', { name: 'Enable maintenance', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Enable maintenance' }).click();
    const banner = page.locator('#maintenance-banner');
    await textOf(banner, /Maintenance mode is on: Upgrading the controller until 14:00/, 'maintenance banner');
    await textOf(page.locator('#hdr-maintenance'), /^Maintenance on$/, 'maintenance chip on');
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

    // The checkpoint page: facts, timeline with bars, step results, alerts, Temporal link, actions.
    await problemsTable.getByRole('link', { name: `Show checkpoint ${cpB}` }).click();
    await page.waitForURL(`${base}/dashboard/checkpoints/${cpB}`);
    const timeline = page.getByRole('table', { name: 'Timeline' });
    await timeline.locator('tbody tr[data-seq]').first().waitFor();
    await textOf(page.locator('#cp-name'), new RegExp(`^${cpB}$`), 'checkpoint name');
    await textOf(page.locator('#cp-facts'), /needs attention[\s\S]*job-b1[\s\S]*failure/, 'facts');
    assert.equal(await page.getByRole('link', { name: `Open ${cpB} in the Temporal Web UI` }).getAttribute('href'), workflowLink(cpB));
    assert.ok((await timeline.locator('svg.step-bar rect').count()) >= 3, 'a bar per step');
    await textOf(timeline.locator('tbody tr').last(), /needs_attention[\s\S]*so far/, 'the current step lasts');
    await textOf(page.getByRole('table', { name: 'Command and step results' }), /failed/, 'a failed step result');
    await textOf(page.getByRole('table', { name: 'Alerts raised' }), /open/, 'the needs-attention alert');
    assert.equal(await page.locator('#live-status').textContent(), 'Live');
    await shoot('dashboard-checkpoint.png');

    // Retry reset from the checkpoint page; with no agent it comes back to needs attention.
    await page.getByRole('button', { name: `Retry reset of ${cpB}`, exact: true }).click();
    await dialog.getByRole('button', { name: 'Retry reset' }).click();
    await textOf(page.locator('#cp-result'), /Reset retry requested/, 'retry result');
    await eventually(
      'back in needs attention after the retry',
      async () => {
        const detail = await admin('GET', `/api/checkpoints/${cpB}`);
        return detail.body.transitions.some((t: any) => t.event === 'retry_reset') && detail.body.checkpoint.state === 'needs_attention';
      },
      SLOW_POLL,
    );
    await textOf(timeline, /retry_reset/, 'the retry shows in the timeline (live)');

    // Back to the overview (the token stays in the tab); release with the snapshot deleted.
    await page.getByRole('link', { name: /All runners and checkpoints/ }).click();
    await activeTable.getByRole('row').filter({ hasText: cpB }).waitFor();
    await page.getByRole('button', { name: `Release ${cpB}`, exact: true }).first().click();
    await dialog.getByRole('checkbox', { name: 'Delete snapshot' }).check();
    await dialog.getByRole('button', { name: 'Release', exact: true }).click();
    await textOf(page.locator('#action-result'), new RegExp(`Release requested: ${cpB} \\(snapshot deleted\\)`), 'release result');
    await eventually('released', async () => (await stateOf(tokenB, cpB)) === 'released', SLOW_POLL);
    await activeTable.getByRole('row').filter({ hasText: cpB }).waitFor({ state: 'detached' });
    await textOf(runnersTable.getByRole('row').filter({ hasText: 'dash-b' }), /idle|offline/, 'runner B freed');
    assert.equal((await admin('GET', `/api/checkpoints/${cpB}`)).body.checkpoint.state, 'released');

    // A checkpoint created elsewhere appears through the stream: no reload, no state poll.
    await page.getByRole('button', { name: 'Undrain runner dash-c', exact: true }).click();
    await dialog.getByRole('button', { name: 'Undrain', exact: true }).click();
    await textOf(page.locator('#action-result'), /Runner dash-c undrained\./, 'undrain result');
    // Page scripts run in the browser (no DOM types here): a marker that a reload would wipe.
    await page.evaluate('window.loadedOnce = true');
    await sleep(500);
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

    // Sign out: the token is forgotten and the badge and button go away.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await textOf(page.locator('#login-error'), /Signed out\./, 'signed out');
    assert.equal(await page.evaluate("sessionStorage.getItem('e2epool.adminToken')"), null);
    assert.equal(await page.locator('#live-status').isVisible(), false);

    // The token only ever travelled in the Authorization header, and only to our own origin.
    assert.ok(requests.every((r) => !r.url.includes(ADMIN_TOKEN)));
    assert.ok(requests.every((r) => r.url.startsWith(base)), 'no request left the controller');
    const events = requests.filter((r) => r.url.endsWith('/api/dashboard/events'));
    assert.ok(events.length >= 1 && events.every((r) => r.auth === `Bearer ${ADMIN_TOKEN}`));
    assert.deepEqual(problems.filter((p) => !/status of 403/.test(p)), [], 'no script errors, no CSP violations');
  });

  it('a runner whose own reset has its agent down is not offline while that reset moves; a stuck one is', async () => {
    await keepInstanceAlive();
    const read = async () => (await admin('GET', '/api/dashboard/state')).body;
    const before = await read();
    assert.equal(before.runners.find((r: any) => r.runnerId === 'dash-d').status, 'offline', 'stuck in awaiting_readiness without an agent');
    // The same reset moving again (a transition just now): readiness covers the agent being down.
    await database.db.execute(sql`update checkpoints set updated_at = now() where name = ${stuckName}`);
    try {
      const moving = await read();
      const d = moving.runners.find((r: any) => r.runnerId === 'dash-d');
      assert.deepEqual([d.status, d.agent.online], ['busy', false]);
      assert.equal(moving.problems.offline, before.problems.offline - 1);
    } finally {
      await database.db.execute(sql`update checkpoints set updated_at = now() - interval '40 minutes' where name = ${stuckName}`);
    }
  });

  it('queue depth: the most checkpoints waiting at once in each step, even for a wait of seconds', async () => {
    // Two checkpoints of a runner queued for a few seconds each, overlapping, just now.
    await database.db.execute(sql`insert into checkpoint_transitions (checkpoint_name, runner_id, seq, from_state, to_state, event, at)
      values ('queue-x1', 'pool-01', 1, null, 'created', 'snapshot_taken', now() - interval '2 minutes'),
             ('queue-x1', 'pool-01', 2, 'created', 'finalize_queued', 'finalize_requested', now() - interval '60 seconds'),
             ('queue-x1', 'pool-01', 3, 'finalize_queued', 'cleaning', 'cleanup_started', now() - interval '55 seconds'),
             ('queue-x1', 'pool-01', 4, 'cleaning', 'deleted', 'cleanup_done', now() - interval '50 seconds'),
             ('queue-x2', 'pool-02', 1, null, 'created', 'snapshot_taken', now() - interval '2 minutes'),
             ('queue-x2', 'pool-02', 2, 'created', 'finalize_queued', 'finalize_requested', now() - interval '58 seconds'),
             ('queue-x2', 'pool-02', 3, 'finalize_queued', 'cleaning', 'cleanup_started', now() - interval '56 seconds'),
             ('queue-x2', 'pool-02', 4, 'cleaning', 'deleted', 'cleanup_done', now() - interval '52 seconds')`);
    await database.db.execute(sql`insert into checkpoints (name, runner_id, job_id, backend, state, finalize_status, created_at, ended_at, updated_at)
      values ('queue-x1', 'pool-01', 'job-qx1', 'bare_metal', 'deleted', 'success', now() - interval '2 minutes', now() - interval '50 seconds', now() - interval '50 seconds'),
             ('queue-x2', 'pool-02', 'job-qx2', 'bare_metal', 'deleted', 'success', now() - interval '2 minutes', now() - interval '50 seconds', now() - interval '50 seconds')`);
    const { body } = await admin('GET', '/api/dashboard/history?range=24h');
    // The waits fall in the current step or, right after a step began, in the one before.
    const peak = Math.max(...body.queue.points.slice(-2).map((p: any) => p.depth));
    const stuckStillQueued = 1;
    assert.ok(peak >= 2 + stuckStillQueued, `both short waits counted at once: ${JSON.stringify(body.queue.points.slice(-3))}`);
    assert.equal(body.queue.points.length, Math.floor((Date.parse(body.to) - Date.parse(body.from)) / (body.queue.stepSeconds * 1000)) + 1, 'one point per step up to now');
  });

  it('presence history: a removed session is kept as the last one, never replaced by an older one', async () => {
    const lastOf = async (runnerId: string) => ((await database.db.execute(sql`select session_epoch::int as epoch, boot_id, last_seen_at, disconnected_at from agent_last_sessions where runner_id = ${runnerId}`)) as any).rows[0];
    const here = new PresenceStore(database.db, 'presence-test-a');
    const there = new PresenceStore(database.db, 'presence-test-b');
    const older = await here.nextEpoch();
    const newer = await there.nextEpoch();
    // The newer session ends first (its instance stops), then the older one's late teardown comes.
    await there.upsert({ runnerId: 'presence-x', sessionEpoch: newer, bootId: 'boot-new', agentVersion: '0.2.0', declaredCommands: null }, { connected: true });
    assert.equal(await there.removeOwn(), 1);
    assert.equal((await lastOf('presence-x')).boot_id, 'boot-new');
    await here.upsert({ runnerId: 'presence-x', sessionEpoch: older, bootId: 'boot-old', agentVersion: '0.1.0', declaredCommands: null }, { connected: true });
    assert.equal(await here.remove('presence-x', older), true);
    assert.deepEqual([(await lastOf('presence-x')).epoch, (await lastOf('presence-x')).boot_id], [newer, 'boot-new'], 'the older session does not overwrite the newer one');
    // A compare-and-delete that misses (another epoch) deletes nothing and keeps nothing.
    assert.equal(await here.remove('presence-y', older), false);
    assert.equal(await lastOf('presence-y'), undefined);
  });
});
