// `GET /metrics` for Prometheus. No auth, as Prometheus scrapes it: serve it on an internal network
// only (the reverse proxy should not route /metrics from outside); it carries no names or secrets.
//
// Several instances share one database, so every figure comes from the database at scrape time:
// - gauges: the fleet counts (runners by state, sessions, queue depth) and one aggregate query per
//   scrape (alerts, webhook inbox, active checkpoints);
// - histograms and counters: this process keeps cumulative values and feeds them incrementally
//   with the checkpoints that ended since its watermark (end transitions found through
//   ix_transitions_at, keyset on (at, id), a bounded batch per scrape). Values are cumulative per
//   process, so any number of scrapers see the same consistent series and rate() works; every
//   instance reports the same events, so dashboards aggregate with max/avg over instances, never
//   sum. Rows are only read once they are `settleSeconds` old: end timestamps come from the
//   writer's clock and commit a moment later, and a row must not land behind the watermark.
// Labels are backend, outcome, source and state only, each from a closed set.
import express, { type Request, type Response, type Router } from 'express';
import { sharedResult } from '../util/shared-result.js';
import { sameSecret } from '../api/auth.js';
import { STRICT_ROUTING } from '../api/strict-routing.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { readFleetCounts, RUNNER_STATES } from '../store/fleet-counts.js';
import type { Logger } from '../logger.js';
import type { Db } from '../store/database.js';
import { readEndedSince, readGaugeRow, type DurationKind } from '../store/checkpoint-stats.js';
import { REPORTED_SOURCES, reportedSource } from '../services/stats.js';
import { VERSION } from '../services/health.js';
import { readMaintenance, readOrphanAudit } from '../store/settings-store.js';
import type { InstanceMetrics } from './instance-metrics.js';

/** How long the SDK's metrics endpoint may take before a scrape goes on without it. */
const SDK_METRICS_TIMEOUT_MS = 1000;

export interface MetricsOptions {
  db: Db;
  logger?: Logger;
  /** Only checkpoints that ended after this are counted (default: when the router was made). */
  countSince?: Date;
  /** Age an end transition must have before it is counted (default 60 s). */
  settleSeconds?: number;
  /** End transitions read per scrape at most; the rest follow on later scrapes (default 2000). */
  batchSize?: number;
  /** How long one scrape's text answers every scrape (default 2000 ms). */
  cacheMs?: number;
  /** Scrapes must send `Authorization: Bearer <token>` (E2EPOOL_METRICS_TOKEN). */
  scrapeToken?: string;
  /** Node.js process metrics (default true). */
  processMetrics?: boolean;
  /** Probe behind `e2epool_temporal_up`; without it the series is left out. */
  temporalReachable?: () => Promise<boolean>;
  /** This instance's own figures (HTTP requests, refused creates), appended to the answer. */
  instance?: InstanceMetrics;
  /** Where the Temporal SDK's core serves its worker metrics; appended when it answers. */
  sdkMetricsUrl?: string;
}

export const ALERT_SEVERITIES = ['critical', 'warning', 'info'] as const;
export const CHECKPOINT_OUTCOMES = ['success', 'failure', 'canceled', 'gc_reset', 'create_failed', 'released'] as const;
const BACKENDS = ['proxmox', 'bare_metal'] as const;

const BUCKETS: Record<DurationKind, number[]> = {
  create: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
  reset: [5, 10, 20, 30, 60, 120, 300, 600, 1200],
  readiness: [1, 2, 5, 10, 20, 30, 60, 120, 300],
  turnaround: [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200],
};


/** Outcome label of an ended checkpoint (closed set). */
export function outcomeOf(row: { state: string; finalize_status: string | null }): (typeof CHECKPOINT_OUTCOMES)[number] {
  if (row.state === 'gc_reset' || row.state === 'create_failed' || row.state === 'released') return row.state;
  if (row.finalize_status === 'failure' || row.finalize_status === 'canceled') return row.finalize_status;
  return 'success';
}

const backendOf = (b: unknown) => ((BACKENDS as readonly unknown[]).includes(b) ? String(b) : 'other');

export function createMetrics(opts: MetricsOptions) {
  const { db } = opts;
  const settleSeconds = opts.settleSeconds ?? 60;
  const batchSize = opts.batchSize ?? 2000;
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  // Gauges read from the database live apart: when the database cannot be read they are left out
  // of the answer entirely (an unlabelled gauge would otherwise read 0, a misleading value).
  const databaseRegistry = new Registry();
  const databaseRegisters = [databaseRegistry];

  const histograms = {} as Record<DurationKind, Histogram<'backend'>>;
  const help: Record<DurationKind, string> = {
    create: 'Seconds from a create request to the snapshot taken, of checkpoints that ended.',
    reset: 'Seconds of the rollback (reset started to reset done) of checkpoints that ended.',
    readiness: 'Seconds from reset done to the runner verified ready, of checkpoints that ended.',
    turnaround: 'Seconds from finalize queued to the checkpoint ended (runner back in the pool).',
  };
  for (const kind of Object.keys(BUCKETS) as DurationKind[]) {
    const name = kind === 'turnaround' ? 'e2epool_turnaround_seconds' : `e2epool_${kind}_duration_seconds`;
    histograms[kind] = new Histogram({ name, help: help[kind], labelNames: ['backend'], buckets: BUCKETS[kind], registers });
  }
  const checkpointsTotal = new Counter({ name: 'e2epool_checkpoints_total', help: 'Checkpoints that ended, by outcome.', labelNames: ['backend', 'outcome'], registers });
  const finalizeTotal = new Counter({ name: 'e2epool_finalize_total', help: 'Ended checkpoints by the source of their finalize (unknown caller sources: other).', labelNames: ['source'], registers });
  const runnersGauge = new Gauge({ name: 'e2epool_runners', help: 'Active runners by state; each is in one (needs_attention, drained, offline, busy, idle: first that applies).', labelNames: ['state'], registers: databaseRegisters });
  const maintenanceGauge = new Gauge({ name: 'e2epool_maintenance', help: '1 while maintenance mode refuses new creates.', registers: databaseRegisters });
  const alertsGauge = new Gauge({ name: 'e2epool_alerts_open', help: 'Open alerts by severity.', labelNames: ['severity'], registers: databaseRegisters });
  const inboxPendingGauge = new Gauge({ name: 'e2epool_webhook_inbox_pending', help: 'Stored CI webhooks not yet delivered to their checkpoint.', registers: databaseRegisters });
  const inboxGivenUpGauge = new Gauge({ name: 'e2epool_webhook_inbox_given_up', help: 'Stored CI webhooks whose delivery was given up (kept until an operator requeues or deletes them).', registers: databaseRegisters });
  // Left out of the answer until an audit ran: 0 would claim a check that never happened.
  const orphansRegistry = new Registry();
  const orphansGauge = new Gauge({ name: 'e2epool_orphan_snapshots', help: 'Orphan snapshots the last hourly audit found (left out until an audit ran).', registers: [orphansRegistry] });
  let orphansKnown = false;
  const buildInfo = new Gauge({ name: 'e2epool_build_info', help: 'Always 1; the labels say which e2epool and Node.js run.', labelNames: ['version', 'node'], registers });
  buildInfo.set({ version: VERSION, node: process.version }, 1);
  const temporalUp = opts.temporalReachable
    ? new Gauge({ name: 'e2epool_temporal_up', help: '1 when the last scrape reached the Temporal frontend.', registers })
    : undefined;
  const activeGauge = new Gauge({ name: 'e2epool_active_checkpoints', help: 'Checkpoints not yet ended.', registers: databaseRegisters });
  const needsAttentionGauge = new Gauge({ name: 'e2epool_needs_attention', help: 'Checkpoints waiting for an operator (needs attention).', registers: databaseRegisters });
  const sessionsGauge = new Gauge({ name: 'e2epool_agent_sessions', help: 'Agent sessions held by live controller instances.', registers: databaseRegisters });
  const queueGauge = new Gauge({ name: 'e2epool_queue_depth', help: 'Checkpoints waiting for finalize work (finalize queued, cleaning or on the reset path).', registers: databaseRegisters });
  const databaseUp = new Gauge({ name: 'e2epool_database_up', help: '1 when the last scrape could read the database.', registers });
  let databaseReadable = false;

  // Start every labelled series at zero so rate() sees the first event.
  for (const backend of BACKENDS) {
    for (const outcome of CHECKPOINT_OUTCOMES) checkpointsTotal.inc({ backend, outcome }, 0);
  }
  for (const source of REPORTED_SOURCES) finalizeTotal.inc({ source }, 0);

  // Kept as the database's text: a JS Date would drop microseconds and count a row twice.
  let watermark: { at: string; id: number } = { at: (opts.countSince ?? new Date()).toISOString(), id: 0 };

  async function readGauges(): Promise<void> {
    const fleet = await readFleetCounts(db);
    const r = await readGaugeRow(db);
    const n = (v: unknown) => Number(v ?? 0);
    const json = (v: unknown): Record<string, unknown> => (typeof v === 'string' ? JSON.parse(v) : ((v ?? {}) as Record<string, unknown>));
    for (const state of RUNNER_STATES) runnersGauge.set({ state }, fleet.states[state]);
    const severities = json(r.alert_severities);
    for (const severity of ALERT_SEVERITIES) alertsGauge.set({ severity }, n(severities[severity]));
    inboxPendingGauge.set(n(r.inbox_pending));
    inboxGivenUpGauge.set(n(r.inbox_given_up));
    maintenanceGauge.set((await readMaintenance(db)).enabled ? 1 : 0);
    const audit = await readOrphanAudit(db);
    orphansKnown = audit !== null;
    if (audit) orphansGauge.set(audit.orphans);
    activeGauge.set(n(r.active));
    needsAttentionGauge.set(n(r.needs_attention));
    sessionsGauge.set(fleet.sessions);
    queueGauge.set(fleet.queueDepth);
  }

  /** Feeds histograms and counters with checkpoints that ended after the watermark; one batch. */
  async function readEnded(): Promise<void> {
    const ended = await readEndedSince(db, watermark, { settleSeconds, batchSize });
    for (const row of ended) {
      const backend = backendOf(row.backend);
      checkpointsTotal.inc({ backend, outcome: outcomeOf(row) });
      if (row.finalize_source) finalizeTotal.inc({ source: reportedSource(String(row.finalize_source)) });
      for (const kind of Object.keys(BUCKETS) as DurationKind[]) {
        const seconds = row[`${kind}_s`];
        if (seconds !== null && seconds !== undefined && Number(seconds) >= 0) histograms[kind].observe({ backend }, Number(seconds));
      }
    }
    const last = ended.at(-1);
    if (last) watermark = { at: String(last.at_text), id: Number(last.id) };
  }

  async function refresh(): Promise<void> {
    try {
      await readGauges();
      await readEnded();
      databaseReadable = true;
      databaseUp.set(1);
    } catch (err) {
      databaseReadable = false;
      databaseUp.set(0);
      opts.logger?.warn({ err }, 'metrics: database read failed');
    }
  }

  /**
   * The exposition text after reading the database. Overlapping scrapes share one read (two would
   * count the same rows twice), and its text serves every scrape for a few seconds.
   */
  const scrape = sharedResult(async (): Promise<string> => {
    const [, reachable, sdk] = await Promise.all([refresh(), opts.temporalReachable?.().catch(() => false), sdkMetrics()]);
    temporalUp?.set(reachable ? 1 : 0);
    const [own, fromDatabase, orphans, instance] = await Promise.all([
      registry.metrics(),
      databaseReadable ? databaseRegistry.metrics() : '',
      databaseReadable && orphansKnown ? orphansRegistry.metrics() : '',
      opts.instance ? opts.instance.registry.metrics() : '',
    ]);
    return [own, fromDatabase, orphans, instance, sdk].filter((part) => part.trim() !== '').map((part) => (part.endsWith('\n') ? part : `${part}\n`)).join('');
  }, opts.cacheMs ?? 2000);

  /** The SDK core's exposition text, or nothing when it is off or does not answer in time. */
  async function sdkMetrics(): Promise<string> {
    if (!opts.sdkMetricsUrl) return '';
    try {
      const res = await fetch(opts.sdkMetricsUrl, { signal: AbortSignal.timeout(SDK_METRICS_TIMEOUT_MS) });
      return res.ok ? await res.text() : '';
    } catch {
      return '';
    }
  }

  return { registry, scrape, contentType: registry.contentType };
}

export function createMetricsRouter(opts: MetricsOptions): Router {
  const metrics = createMetrics(opts);
  const router = express.Router(STRICT_ROUTING);
  router.get('/metrics', async (req: Request, res: Response) => {
    if (opts.scrapeToken && !sameSecret(req.headers.authorization ?? '', `Bearer ${opts.scrapeToken}`)) {
      res.status(401).set('WWW-Authenticate', 'Bearer').json({ detail: 'Metrics need the scrape token' });
      return;
    }
    const text = await metrics.scrape();
    res.set('Content-Type', metrics.contentType).set('Cache-Control', 'no-store').send(text);
  });
  return router;
}
