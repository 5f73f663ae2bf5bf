// Housekeeping activities run by the retention and orphan-audit Schedules (ARCHITECTURE §4.5):
// purging old end-state records in small batches, and reporting Proxmox snapshots that look like
// ours but belong to no active checkpoint. The audit never deletes anything.
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { sql, type SQL } from 'drizzle-orm';
import { E2epoolError, isErrorCode, type ErrorCode } from '../src/domain/errors.js';
import type { Runner, RunnerRegistry } from '../src/inventory/registry.js';
import { ProxmoxClient } from '../src/integrations/proxmox/client.js';
import { ProxmoxOperations } from '../src/integrations/proxmox/operations.js';
import type { Logger } from '../src/logger.js';
import { raiseAlert, resolveAlert } from '../src/store/alert-store.js';
import { writeOrphanAudit } from '../src/store/settings-store.js';
import type { Db } from '../src/store/database.js';
import { rowsOf } from '../src/store/rows.js';
import { purgeProcessedWebhooks } from '../src/store/webhook-inbox.js';
import { proxmoxBaseUrl, proxmoxTlsOptions } from './backend.js';
import { withFailureMapping } from './failure-mapping.js';
import type { AlertInput } from './types.js';

/** States a checkpoint never leaves: only these rows may be purged. */
export const END_STATES = ['deleted', 'reset', 'gc_reset', 'create_failed', 'released'] as const;
export const ORPHAN_SNAPSHOTS_ALERT_KEY = 'orphan_snapshots';
export const DEFAULT_PURGE_BATCH_SIZE = 1000;
/** Orphans named in the alert text; the full list is in the report. */
const ALERT_LIST_LIMIT = 20;
const AUDIT_CONCURRENCY = 4;

export interface PurgeOldRecordsInput {
  retentionDays: number;
  dryRun: boolean;
}

/** Rows deleted (or, on a dry run, that would be deleted) per table. */
export interface PurgeReport {
  dryRun: boolean;
  retentionDays: number;
  checkpoints: number;
  checkpointTransitions: number;
  alerts: number;
  webhookInbox: number;
  auditLog: number;
}

export interface OrphanSnapshot {
  runnerId: string;
  vmid: number;
  snapshot: string;
}

export interface UncheckedRunner {
  runnerId: string;
  /** Stable error code (src/domain/errors.ts); never the message, which could name a host. */
  code: ErrorCode;
}

export interface OrphanAuditReport {
  orphans: OrphanSnapshot[];
  /** Active Proxmox runners whose snapshots were listed. */
  checkedRunners: number;
  unchecked: UncheckedRunner[];
  /** What happened to the `orphan_snapshots` alert this run. */
  alert: 'raised' | 'already_open' | 'resolved' | 'none' | 'unchanged';
}

export interface HousekeepingActivities {
  purgeOldRecords(input: PurgeOldRecordsInput): Promise<PurgeReport>;
  auditOrphanSnapshots(input: Record<string, never>): Promise<OrphanAuditReport>;
}

export interface HousekeepingDeps {
  db: Db;
  registry: Pick<RunnerRegistry, 'listRunners'>;
  logger: Logger;
  /** Timeout of one Proxmox API call. */
  httpTimeoutMs: number;
  /** Rows per delete statement; default 1000. */
  batchSize?: number;
  /** Called after the orphan alert is newly raised (delivery to webhooks). */
  onAlert?: (alert: AlertInput) => void;
}

const END_STATES_SQL = sql.join(END_STATES.map((s) => sql`${s}`), sql`, `);

async function countOf(db: Db, query: SQL): Promise<number> {
  const [row] = await rowsOf(db, query);
  return Number(row?.n ?? 0);
}

/** Heartbeats when running as an activity (a no-op when called directly). */
function heartbeat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Not in an activity context.
  }
}

export function validatePurgeInput(input: unknown): PurgeOldRecordsInput {
  const { retentionDays, dryRun } = (input ?? {}) as Partial<PurgeOldRecordsInput>;
  if (typeof retentionDays !== 'number' || !Number.isFinite(retentionDays) || retentionDays <= 0) {
    throw new E2epoolError('validation', 'retentionDays must be a positive number of days');
  }
  if (typeof dryRun !== 'boolean') throw new E2epoolError('validation', 'dryRun must be true or false');
  return { retentionDays, dryRun };
}

export function createHousekeepingActivities(deps: HousekeepingDeps): HousekeepingActivities {
  const { db, logger } = deps;
  const batchSize = deps.batchSize ?? DEFAULT_PURGE_BATCH_SIZE;

  /** Checkpoints that may go: ended, not holding the claim (belt and braces), older than the window. */
  const purgeableCheckpoints = (days: number) => sql`
    state in (${END_STATES_SQL}) and not holds_claim
    and coalesce(ended_at, created_at) < now() - ${days} * interval '1 day'`;

  async function purgeCheckpoints(days: number): Promise<{ checkpoints: number; transitions: number }> {
    let checkpoints = 0;
    let transitions = 0;
    for (;;) {
      // One transaction per batch: a checkpoint and its log go together or not at all.
      const batch = await db.transaction(async (tx) => {
        const gone = await rowsOf(tx as unknown as Db, sql`
          delete from checkpoints where id in (
            select id from checkpoints where ${purgeableCheckpoints(days)} order by id limit ${batchSize})
          and ${purgeableCheckpoints(days)}
          returning name`);
        const names = gone.map((r) => String(r.name));
        if (names.length === 0) return { checkpoints: 0, transitions: 0 };
        const log = await rowsOf(tx as unknown as Db, sql`
          delete from checkpoint_transitions where checkpoint_name in (${sql.join(names.map((n) => sql`${n}`), sql`, `)}) returning id`);
        return { checkpoints: names.length, transitions: log.length };
      });
      checkpoints += batch.checkpoints;
      transitions += batch.transitions;
      heartbeat({ table: 'checkpoints', deleted: checkpoints });
      if (batch.checkpoints < batchSize) return { checkpoints, transitions };
    }
  }

  /** Deletes rows of `table` matching `where` in batches of `batchSize`; returns how many. */
  async function purgeInBatches(table: 'alerts' | 'audit_log', where: SQL): Promise<number> {
    let total = 0;
    for (;;) {
      const gone = await rowsOf(db, sql`
        delete from ${sql.identifier(table)} where id in (select id from ${sql.identifier(table)} where ${where} order by id limit ${batchSize})
        returning id`);
      total += gone.length;
      heartbeat({ table, deleted: total });
      if (gone.length < batchSize) return total;
    }
  }

  const oldResolvedAlerts = (days: number) => sql`resolved_at is not null and resolved_at < now() - ${days} * interval '1 day'`;
  const oldAuditRows = (days: number) => sql`at < now() - ${days} * interval '1 day'`;

  async function purgeOldRecords(input: PurgeOldRecordsInput): Promise<PurgeReport> {
    const { retentionDays: days, dryRun } = validatePurgeInput(input);
    let report: PurgeReport;
    if (dryRun) {
      report = {
        dryRun,
        retentionDays: days,
        checkpoints: await countOf(db, sql`select count(*)::int as n from checkpoints where ${purgeableCheckpoints(days)}`),
        checkpointTransitions: await countOf(db, sql`
          select count(*)::int as n from checkpoint_transitions t
          where t.checkpoint_name in (select name from checkpoints where ${purgeableCheckpoints(days)})`),
        alerts: await countOf(db, sql`select count(*)::int as n from alerts where ${oldResolvedAlerts(days)}`),
        // The same rule as purgeProcessedWebhooks: delivered rows only; gave-up rows stay.
        webhookInbox: await countOf(db, sql`select count(*)::int as n from webhook_inbox where processed_at is not null and processed_at < now() - ${days} * interval '1 day'`),
        auditLog: await countOf(db, sql`select count(*)::int as n from audit_log where ${oldAuditRows(days)}`),
      };
    } else {
      const { checkpoints, transitions } = await purgeCheckpoints(days);
      report = {
        dryRun,
        retentionDays: days,
        checkpoints,
        checkpointTransitions: transitions,
        alerts: await purgeInBatches('alerts', oldResolvedAlerts(days)),
        webhookInbox: await purgeProcessedWebhooks(db, days),
        auditLog: await purgeInBatches('audit_log', oldAuditRows(days)),
      };
    }
    logger.info({ ...report }, dryRun ? 'retention dry run: rows that would be purged' : 'retention: old records purged');
    return report;
  }

  // One client per distinct connection setting, as the backend activities do.
  const clients = new Map<string, ProxmoxClient>();
  function operationsFor(runner: Runner): { ops: ProxmoxOperations; node: string; vmid: number } {
    if (!runner.proxmoxHost || !runner.proxmoxUser || !runner.proxmoxTokenName || !runner.proxmoxTokenValue || !runner.proxmoxNode || runner.proxmoxVmid === null) {
      throw new E2epoolError('validation', `Runner '${runner.runnerId}' lacks Proxmox settings`);
    }
    const baseUrl = proxmoxBaseUrl(runner.proxmoxHost);
    const tokenId = `${runner.proxmoxUser}!${runner.proxmoxTokenName}`;
    const tls = proxmoxTlsOptions(runner);
    const key = JSON.stringify([baseUrl, tokenId, createHash('sha256').update(runner.proxmoxTokenValue).digest('hex'), tls]);
    let client = clients.get(key);
    if (!client) {
      client = new ProxmoxClient({ baseUrl, tokenId, tokenSecret: runner.proxmoxTokenValue, timeoutMs: deps.httpTimeoutMs, tls, logger });
      clients.set(key, client);
    }
    return { ops: new ProxmoxOperations(client), node: runner.proxmoxNode, vmid: runner.proxmoxVmid };
  }

  /** Names of checkpoints not yet in an end state: their snapshots are expected to exist. */
  async function activeCheckpointNames(names: string[]): Promise<Set<string>> {
    if (names.length === 0) return new Set();
    const rows = await rowsOf(db, sql`
      select name from checkpoints where name in (${sql.join(names.map((n) => sql`${n}`), sql`, `)}) and state not in (${END_STATES_SQL})`);
    return new Set(rows.map((r) => String(r.name)));
  }

  async function auditRunner(runner: Runner): Promise<OrphanSnapshot[]> {
    const { ops, node, vmid } = operationsFor(runner);
    // Snapshots first, rows second: a checkpoint writes its row before taking its snapshot, so a
    // snapshot listed here always finds its row if the checkpoint is live.
    const snapshots = (await ops.listOurSnapshots({ node, vmid })).filter((s) => (s as { snapstate?: string }).snapstate !== 'delete');
    const active = await activeCheckpointNames(snapshots.map((s) => s.name));
    return snapshots.filter((s) => !active.has(s.name)).map((s) => ({ runnerId: runner.runnerId, vmid, snapshot: s.name }));
  }

  async function auditOrphanSnapshots(): Promise<OrphanAuditReport> {
    const runners = (await deps.registry.listRunners()).filter((r) => r.backend === 'proxmox');
    const orphans: OrphanSnapshot[] = [];
    const unchecked: UncheckedRunner[] = [];
    let next = 0;
    const worker = async () => {
      while (next < runners.length) {
        const runner = runners[next++]!;
        try {
          orphans.push(...(await auditRunner(runner)));
        } catch (err) {
          const code = (err as { code?: unknown })?.code;
          const safeCode: ErrorCode = isErrorCode(code) ? code : 'internal';
          unchecked.push({ runnerId: runner.runnerId, code: safeCode });
          logger.warn({ runnerId: runner.runnerId, code: safeCode }, 'orphan audit: could not list the runner\'s snapshots');
        }
        heartbeat({ checked: next, of: runners.length });
      }
    };
    await Promise.all(Array.from({ length: Math.min(AUDIT_CONCURRENCY, runners.length) }, worker));
    orphans.sort((a, b) => a.runnerId.localeCompare(b.runnerId) || a.snapshot.localeCompare(b.snapshot));
    unchecked.sort((a, b) => a.runnerId.localeCompare(b.runnerId));

    let alert: OrphanAuditReport['alert'];
    if (orphans.length > 0) {
      const shown = orphans.slice(0, ALERT_LIST_LIMIT).map((o) => `${o.runnerId}/${o.vmid}/${o.snapshot}`).join(', ');
      const more = orphans.length > ALERT_LIST_LIMIT ? ` and ${orphans.length - ALERT_LIST_LIMIT} more` : '';
      const input: AlertInput = {
        key: ORPHAN_SNAPSHOTS_ALERT_KEY,
        severity: 'warning',
        message: `${orphans.length} orphan snapshot(s) with no active checkpoint (not deleted; review and remove by hand): ${shown}${more}`,
      };
      const { raised } = await raiseAlert(db, input);
      alert = raised ? 'raised' : 'already_open';
      if (raised) deps.onAlert?.(input);
      logger.warn({ alert: ORPHAN_SNAPSHOTS_ALERT_KEY, orphans: orphans.length }, input.message);
    } else if (unchecked.length > 0) {
      // Orphans may hide on a runner we could not list: neither raise nor resolve.
      alert = 'unchanged';
    } else {
      alert = (await resolveAlert(db, ORPHAN_SNAPSHOTS_ALERT_KEY)).resolved ? 'resolved' : 'none';
    }
    await writeOrphanAudit(db, { orphans: orphans.length, unchecked: unchecked.length });
    logger.info({ checkedRunners: runners.length - unchecked.length, orphans: orphans.length, unchecked: unchecked.length, alert }, 'orphan snapshot audit done');
    return { orphans, checkedRunners: runners.length - unchecked.length, unchecked, alert };
  }

  return withFailureMapping({
    purgeOldRecords,
    auditOrphanSnapshots: (_input: Record<string, never>) => auditOrphanSnapshots(),
  });
}
