// The alert conditions of operations.md that no workflow raises itself, checked every few seconds
// on every instance: runners offline, queue depth, failure rate, checkpoints past their TTL,
// database and Temporal unreachable. Each condition is an alert row by key (alert-store): the
// unique open key makes exactly one instance win the raise and deliver it. Resolve messages go out
// for every alert that was announced and is now resolved, whoever resolved it (this monitor or a
// workflow): `last_sent_at < resolved_at` marks a pending resolve notice, and claiming it is one
// compare-and-set update, so one instance sends it.
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { findOverdueCheckpoints, readLastHourOutcomes } from '../store/checkpoint-stats.js';
import { pingDb, type Db } from '../store/database.js';
import { claimResolveNotices, markAlertSent, openAlerts, raiseAlert, resolveAlert } from '../store/alert-store.js';
import { readFleetCounts } from '../store/fleet-counts.js';
import type { AlertDelivery, AlertSeverity, DeliverableAlert } from './delivery.js';

export interface AlertThresholds {
  queueWarning: number;
  queueCritical: number;
  /** How long the queue must stay above a threshold. */
  queueMinutes: number;
  failureRateWarning: number;
  failureRateCritical: number;
  /** Fewer decided checkpoints in the hour than this never alert on the rate (default 5). */
  failureRateMinSamples?: number;
  /** CHECKPOINT_TTL_SECONDS: a created checkpoint older than this (times its extensions) is overdue. */
  checkpointTtlSeconds: number;
  /** Slack past the TTL for the workflow's own TTL check to act (default 300 s). */
  ttlGraceSeconds?: number;
  /** A runner must be offline this long before it alerts (default 120 s). */
  offlineGraceSeconds?: number;
}

export function alertThresholdsFromConfig(
  config: Pick<
    Config,
    'ALERT_QUEUE_WARNING' | 'ALERT_QUEUE_CRITICAL' | 'ALERT_QUEUE_MINUTES' | 'ALERT_FAILURE_RATE_WARNING' | 'ALERT_FAILURE_RATE_CRITICAL' | 'ALERT_FAILURE_RATE_MIN_SAMPLES' | 'CHECKPOINT_TTL_SECONDS' | 'WS_HEARTBEAT_TIMEOUT'
  >,
): AlertThresholds {
  return {
    queueWarning: config.ALERT_QUEUE_WARNING,
    queueCritical: config.ALERT_QUEUE_CRITICAL,
    queueMinutes: config.ALERT_QUEUE_MINUTES,
    failureRateWarning: config.ALERT_FAILURE_RATE_WARNING,
    failureRateCritical: config.ALERT_FAILURE_RATE_CRITICAL,
    failureRateMinSamples: config.ALERT_FAILURE_RATE_MIN_SAMPLES,
    checkpointTtlSeconds: config.CHECKPOINT_TTL_SECONDS,
    offlineGraceSeconds: config.WS_HEARTBEAT_TIMEOUT,
  };
}

export interface AlertMonitorOptions {
  db: Db;
  delivery: AlertDelivery;
  thresholds: AlertThresholds;
  logger: Logger;
  intervalSeconds: number;
  /** Temporal probe (e.g. the health reporter's `temporalReachable`); without it, not checked. */
  temporalReachable?: () => Promise<boolean>;
  /** Resolve notices are sent for alerts resolved within this window (default 1 h). */
  resolveLookbackSeconds?: number;
}

export interface CheckResult {
  databaseReachable: boolean;
  /** Keys of the conditions that hold now. */
  active: string[];
  raised: string[];
  resolved: string[];
}

type Desired = DeliverableAlert & { severity: AlertSeverity };

/** Keys this monitor owns: it resolves them when their condition no longer holds. */
const OWNED_PREFIXES = ['runner_offline:', 'runners_offline_majority', 'queue_depth:', 'failure_rate:', 'checkpoint_overdue:', 'temporal_unreachable'];
const isOwned = (key: string) => OWNED_PREFIXES.some((p) => key.startsWith(p));

export const DATABASE_ALERT_KEY = 'database_unreachable';

/** The resolve message of a key. */
export function resolveMessageOf(key: string, message: string): string {
  if (key.startsWith('runner_offline:')) return `Runner ${key.slice('runner_offline:'.length)} is online again`;
  if (key === 'runners_offline_majority') return 'Half or more of the runners are online again';
  if (key.startsWith('queue_depth:')) return 'Queue depth is back under the threshold';
  if (key.startsWith('failure_rate:')) return 'Failure rate of the last hour is back under the threshold';
  if (key.startsWith('checkpoint_overdue:')) return `Checkpoint ${key.slice('checkpoint_overdue:'.length)} is no longer overdue`;
  if (key === 'temporal_unreachable') return 'Temporal is reachable again';
  if (key === DATABASE_ALERT_KEY) return 'Database is reachable again';
  return `Resolved: ${message}`;
}

const pct = (v: number) => `${Math.round(v * 1000) / 10} %`;

export function createAlertMonitor(opts: AlertMonitorOptions) {
  const { db, delivery, thresholds, logger } = opts;
  const minSamples = thresholds.failureRateMinSamples ?? 5;
  const ttlGrace = thresholds.ttlGraceSeconds ?? 300;
  const offlineGraceMs = (thresholds.offlineGraceSeconds ?? 120) * 1000;
  const lookback = opts.resolveLookbackSeconds ?? 3600;
  // In-process "since when" of conditions that must last: each instance measures its own.
  const offlineSince = new Map<string, number>();
  const queueAboveSince: Record<'warning' | 'critical', number | null> = { warning: null, critical: null };
  let databaseDown = false;
  const inFlight = new Set<Promise<void>>();

  function track(p: Promise<void>): void {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }

  /** Records that a newly raised alert is announced, so its resolve gets a notice later. */
  async function markAnnounced(key: string): Promise<void> {
    try {
      await markAlertSent(db, key);
    } catch (err) {
      logger.warn({ alert: key, err }, 'could not mark the alert as sent');
    }
  }

  /** The `onAlert` hook of the store activities: returns at once, delivery runs in the background. */
  const onAlert = (alert: DeliverableAlert): void =>
    track(
      (async () => {
        await markAnnounced(alert.key);
        await delivery.deliver(alert);
      })(),
    );

  async function flush(): Promise<void> {
    while (inFlight.size) await Promise.all([...inFlight]);
  }

  async function evaluate(now: number): Promise<Map<string, Desired>> {
    const desired = new Map<string, Desired>();
    const fleet = await readFleetCounts(db);
    const counts = await readLastHourOutcomes(db);
    const overdue = await findOverdueCheckpoints(db, { ttlSeconds: thresholds.checkpointTtlSeconds, graceSeconds: ttlGrace });

    // Offline: active runners without a session on a live instance, except while their own reset
    // reboots them (readiness covers that).
    const offlineIds = new Set(fleet.offlineOutsideReset);
    for (const id of offlineSince.keys()) if (!offlineIds.has(id)) offlineSince.delete(id);
    let offlineCount = 0;
    for (const id of offlineIds) {
      const since = offlineSince.get(id) ?? now;
      offlineSince.set(id, since);
      if (now - since < offlineGraceMs) continue;
      offlineCount++;
      desired.set(`runner_offline:${id}`, { key: `runner_offline:${id}`, severity: 'warning', message: `Runner ${id} is offline (no agent session)`, runnerId: id });
    }
    const total = fleet.total;
    if (total > 0 && offlineCount > total / 2) {
      desired.set('runners_offline_majority', { key: 'runners_offline_majority', severity: 'critical', message: `${offlineCount} of ${total} runners are offline` });
    }

    const depth = fleet.queueDepth;
    for (const level of ['warning', 'critical'] as const) {
      const threshold = level === 'warning' ? thresholds.queueWarning : thresholds.queueCritical;
      if (depth <= threshold) {
        queueAboveSince[level] = null;
        continue;
      }
      queueAboveSince[level] ??= now;
      if (now - queueAboveSince[level] >= thresholds.queueMinutes * 60_000) {
        desired.set(`queue_depth:${level}`, { key: `queue_depth:${level}`, severity: level, message: `Queue depth ${depth} over ${threshold} for ${thresholds.queueMinutes} min` });
      }
    }

    const failed = counts.failed;
    const decided = failed + counts.succeeded;
    if (decided >= minSamples) {
      const rate = failed / decided;
      for (const level of ['warning', 'critical'] as const) {
        const threshold = level === 'warning' ? thresholds.failureRateWarning : thresholds.failureRateCritical;
        if (rate > threshold) {
          desired.set(`failure_rate:${level}`, { key: `failure_rate:${level}`, severity: level, message: `Failure rate ${pct(rate)} (${failed} of ${decided}) in the last hour, over ${pct(threshold)}` });
        }
      }
    }

    for (const r of overdue) {
      const key = `checkpoint_overdue:${r.name}`;
      desired.set(key, { key, severity: 'warning', message: `Checkpoint ${r.name} is still active ${Math.round(Number(r.age_s) / 60)} min after its creation, past its TTL`, runnerId: String(r.runner_id), checkpointName: String(r.name) });
    }

    if (opts.temporalReachable && !(await opts.temporalReachable().catch(() => false))) {
      desired.set('temporal_unreachable', { key: 'temporal_unreachable', severity: 'critical', message: 'Temporal is unreachable from the controller' });
    }
    return desired;
  }

  /** Sends resolve notices of announced alerts that are resolved now; one instance claims each. */
  async function sendResolveNotices(): Promise<string[]> {
    const claimed = await claimResolveNotices(db, lookback);
    for (const r of claimed) {
      track(
        delivery.deliverResolved({ key: r.key, severity: r.severity, message: resolveMessageOf(r.key, r.message), runnerId: r.runner_id, checkpointName: r.checkpoint_name }),
      );
    }
    return claimed.map((r) => String(r.key));
  }

  async function checkOnce(): Promise<CheckResult> {
    const result: CheckResult = { databaseReachable: true, active: [], raised: [], resolved: [] };
    try {
      await pingDb(db);
    } catch {
      result.databaseReachable = false;
      if (!databaseDown) {
        databaseDown = true;
        result.raised.push(DATABASE_ALERT_KEY);
        logger.error({ alert: DATABASE_ALERT_KEY }, 'database unreachable');
        // No row can be written: this instance delivers on its own.
        track(delivery.deliver({ key: DATABASE_ALERT_KEY, severity: 'critical', message: 'Database unreachable from the controller' }));
      }
      return result;
    }
    if (databaseDown) {
      databaseDown = false;
      result.resolved.push(DATABASE_ALERT_KEY);
      logger.info({ alert: DATABASE_ALERT_KEY }, 'database reachable again');
      track(delivery.deliverResolved({ key: DATABASE_ALERT_KEY, severity: 'critical', message: resolveMessageOf(DATABASE_ALERT_KEY, '') }));
    }

    const desired = await evaluate(Date.now());
    result.active = [...desired.keys()].sort();
    for (const alert of desired.values()) {
      const { raised } = await raiseAlert(db, { key: alert.key, severity: alert.severity, message: alert.message, ...(alert.runnerId ? { runnerId: alert.runnerId } : {}), ...(alert.checkpointName ? { checkpointName: alert.checkpointName } : {}) });
      if (!raised) continue;
      result.raised.push(alert.key);
      logger.warn({ alert: alert.key, severity: alert.severity, runnerId: alert.runnerId, checkpoint: alert.checkpointName }, alert.message);
      await markAnnounced(alert.key);
      track(delivery.deliver(alert));
    }
    for (const open of await openAlerts(db)) {
      if (!isOwned(open.key) || desired.has(open.key)) continue;
      const { resolved } = await resolveAlert(db, open.key);
      if (resolved) logger.info({ alert: open.key }, 'alert resolved');
    }
    result.resolved.push(...(await sendResolveNotices()));
    return result;
  }

  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let stopped = true;

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = checkOnce()
        .then(() => undefined)
        .catch((err) => logger.error({ err }, 'alert check failed'))
        .finally(() => {
          running = null;
          schedule();
        });
    }, opts.intervalSeconds * 1000);
    timer.unref();
  }

  return {
    checkOnce,
    onAlert,
    start(): void {
      if (!stopped) return;
      stopped = false;
      schedule();
    },
    /** Stops checking and waits for the current check and pending deliveries. */
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
      await flush();
    },
    /** Waits for the deliveries started so far. */
    flush,
  };
}

export type AlertMonitor = ReturnType<typeof createAlertMonitor>;
