// Health answers: `/healthz` exactly as e2epool (SELECT 1), and `/health`, the operator summary of
// operations.md, cheap enough to poll every few seconds (a few aggregate queries, a cached
// Temporal probe).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { redactSecrets } from '../redaction.js';
import { readFleetCounts } from '../store/fleet-counts.js';
import { readDayOutcomes } from '../store/checkpoint-stats.js';
import { pingDb, redactDatabaseUrl, type Db } from '../store/database.js';
import { readMaintenance, type MaintenanceState } from '../store/settings-store.js';

export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../package.json'), 'utf8'));
    return String(pkg.version ?? 'unknown');
  } catch {
    return 'unknown';
  }
})();

export type LivenessAnswer = { status: 'ok'; detail: null } | { status: 'unhealthy'; detail: string };

/** Error text safe to show without authentication: no credentials, no tokens. */
export function publicErrorText(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return redactSecrets(redactDatabaseUrl(text)).slice(0, 500);
}

/** e2epool's `/healthz`: `SELECT 1`. */
export async function liveness(db: Db): Promise<LivenessAnswer> {
  try {
    await pingDb(db);
    return { status: 'ok', detail: null };
  } catch (err) {
    return { status: 'unhealthy', detail: publicErrorText(err) };
  }
}

export interface HealthSummary {
  status: 'healthy' | 'degraded' | 'unhealthy';
  activeWorkers: number;
  runners: { total: number; online: number; offline: number; busy: number; idle: number; paused: number; needsAttention: number; legacyAgentCredential: number };
  queueDepth: number;
  stats: { windowHours: 24; created: number; succeeded: number; failed: number; gcReset: number; successRate: number | null };
  maintenance: MaintenanceState | null;
  temporal: { reachable: boolean; namespace: string };
  database: { reachable: boolean };
  version: string;
}

export interface HealthDeps {
  db: Db;
  temporal?: { client: Client; namespace: string };
  /** How long a Temporal probe result is reused (default 5 s). */
  temporalProbeCacheMs?: number;
}

export function createHealthReporter(deps: HealthDeps) {
  const cacheMs = deps.temporalProbeCacheMs ?? 5000;
  let probe: { at: number; reachable: boolean } | null = null;

  async function temporalReachable(): Promise<boolean> {
    if (!deps.temporal) return false;
    if (probe && Date.now() - probe.at < cacheMs) return probe.reachable;
    const { client } = deps.temporal;
    let reachable: boolean;
    try {
      await client.connection.withDeadline(Date.now() + 2000, () => client.connection.workflowService.getSystemInfo({}));
      reachable = true;
    } catch {
      reachable = false;
    }
    probe = { at: Date.now(), reachable };
    return reachable;
  }

  async function summary(): Promise<HealthSummary> {
    const namespace = deps.temporal?.namespace ?? 'default';
    const [temporalOk, counts] = await Promise.all([temporalReachable(), readCounts(deps.db).catch(() => null)]);
    const maintenance = counts ? await readMaintenance(deps.db).catch(() => null) : null;
    const c = counts ?? { total: 0, online: 0, busy: 0, idle: 0, paused: 0, needsAttention: 0, queueDepth: 0, created: 0, succeeded: 0, failed: 0, gcReset: 0, legacyAgentCredential: 0 };
    const decided = c.succeeded + c.failed;
    let status: HealthSummary['status'] = 'healthy';
    if (!counts) status = 'unhealthy';
    else if (!temporalOk || c.needsAttention > 0 || (c.total > 0 && c.total - c.online > c.total / 2)) status = 'degraded';
    return {
      status,
      activeWorkers: c.online,
      // Runners whose agent sessions still open with the runner token (the one CI jobs hold).
      runners: { total: c.total, online: c.online, offline: c.total - c.online, busy: c.busy, idle: c.idle, paused: c.paused, needsAttention: c.needsAttention, legacyAgentCredential: c.legacyAgentCredential },
      queueDepth: c.queueDepth,
      stats: { windowHours: 24, created: c.created, succeeded: c.succeeded, failed: c.failed, gcReset: c.gcReset, successRate: decided ? Math.round((c.succeeded / decided) * 1000) / 1000 : null },
      maintenance,
      temporal: { reachable: temporalOk, namespace },
      database: { reachable: counts !== null },
      version: VERSION,
    };
  }

  return { summary, temporalReachable };
}

async function readCounts(db: Db) {
  const [fleet, day] = await Promise.all([readFleetCounts(db), readDayOutcomes(db)]);
  return {
    total: fleet.total,
    online: fleet.online,
    busy: fleet.busy,
    idle: fleet.idle,
    paused: fleet.paused,
    needsAttention: fleet.needsAttention,
    queueDepth: fleet.queueDepth,
    created: day.created,
    succeeded: day.succeeded,
    failed: day.failed,
    gcReset: day.gcReset,
    legacyAgentCredential: fleet.legacyAgentCredential,
  };
}
