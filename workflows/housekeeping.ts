// Housekeeping workflows, started by Temporal Schedules (temporal/schedules.ts) and by the admin
// API: each calls one activity and returns its report. Deterministic; activity types only.
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { HousekeepingActivities, OrphanAuditReport, PurgeReport } from '../activities/housekeeping.js';

export interface RetentionInput {
  retentionDays: number;
  dryRun: boolean;
}

export type RetentionResult = PurgeReport;
export type OrphanAuditResult = OrphanAuditReport;

const { purgeOldRecords } = proxyActivities<HousekeepingActivities>({
  // Batched deletes heartbeat after each batch, so a lost worker is noticed within two minutes.
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  scheduleToCloseTimeout: '2 hours',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 5 },
});

const { auditOrphanSnapshots } = proxyActivities<HousekeepingActivities>({
  // Listing snapshots is one short call per runner; a few runners at a time.
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  scheduleToCloseTimeout: '30 minutes',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 3 },
});

export async function retentionWorkflow(input: RetentionInput): Promise<RetentionResult> {
  const days = input?.retentionDays;
  if (typeof days !== 'number' || !Number.isFinite(days) || days <= 0 || typeof input?.dryRun !== 'boolean') {
    throw ApplicationFailure.nonRetryable('retentionWorkflow expects { retentionDays: positive number, dryRun: boolean }', 'validation');
  }
  return await purgeOldRecords({ retentionDays: days, dryRun: input.dryRun });
}

export async function orphanSnapshotAuditWorkflow(_input: Record<string, never> = {}): Promise<OrphanAuditResult> {
  return await auditOrphanSnapshots({});
}
