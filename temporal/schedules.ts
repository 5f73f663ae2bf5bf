// Housekeeping runs as Temporal Schedules (ARCHITECTURE §4.5): retention daily, the orphan snapshot
// audit hourly. Every controller instance calls ensureHousekeepingSchedules at start; it creates the
// schedules or brings existing ones up to date, so several instances converge on one of each.
import { ScheduleAlreadyRunning, ScheduleClient, ScheduleOverlapPolicy, type Client, type ScheduleOptions, type ScheduleOptionsStartWorkflowAction } from '@temporalio/client';
import { E2epoolError } from '../src/domain/errors.js';

export const RETENTION_SCHEDULE_ID = 'e2epool-retention';
export const ORPHAN_AUDIT_SCHEDULE_ID = 'e2epool-orphan-audit';

export interface HousekeepingScheduleOptions {
  taskQueue: string;
  retentionDays: number;
  /** UTC time of day of the daily retention run, `HH:MM` (E2EPOOL_RETENTION_TIME); default 03:17. */
  retentionTime?: string;
  /** Namespace of the schedules (the client's own when omitted). */
  namespace?: string;
}

export interface EnsuredSchedule {
  scheduleId: string;
  outcome: 'created' | 'updated';
}

type StartAction = ScheduleOptionsStartWorkflowAction<(...args: any[]) => Promise<unknown>>;
type Definition = Omit<ScheduleOptions<StartAction>, 'scheduleId' | 'state'>;

export const DEFAULT_RETENTION_TIME = '03:17';

/** `HH:MM` (UTC) as the schedule's hour and minute; anything else is a validation error. */
export function parseTimeOfDay(text: string): { hour: number; minute: number } {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (!m) throw new E2epoolError('validation', `retention time must be HH:MM (UTC), e.g. ${DEFAULT_RETENTION_TIME}; got '${text}'`);
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

/** The two schedules as this version of e2epool wants them. */
export function housekeepingScheduleDefinitions(opts: HousekeepingScheduleOptions): Record<string, Definition> {
  if (!opts.taskQueue) throw new E2epoolError('validation', 'taskQueue is required for the housekeeping schedules');
  if (!Number.isFinite(opts.retentionDays) || opts.retentionDays <= 0) throw new E2epoolError('validation', 'retentionDays must be a positive number');
  // SKIP: a run still going when the next is due is left alone; a short catch-up window so a long
  // outage does not queue a burst of runs.
  const { hour, minute } = parseTimeOfDay(opts.retentionTime ?? DEFAULT_RETENTION_TIME);
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' };
  return {
    [RETENTION_SCHEDULE_ID]: {
      // By default 03:17 UTC, off the hour when other jobs cluster.
      spec: { calendars: [{ hour, minute, comment: 'daily retention' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'retentionWorkflow',
        workflowId: `${RETENTION_SCHEDULE_ID}-run`,
        taskQueue: opts.taskQueue,
        args: [{ retentionDays: opts.retentionDays, dryRun: false }],
        workflowExecutionTimeout: '3 hours',
      },
      policies,
    },
    [ORPHAN_AUDIT_SCHEDULE_ID]: {
      spec: { intervals: [{ every: '1 hour', offset: '7 minutes' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'orphanSnapshotAuditWorkflow',
        workflowId: `${ORPHAN_AUDIT_SCHEDULE_ID}-run`,
        taskQueue: opts.taskQueue,
        args: [{}],
        workflowExecutionTimeout: '45 minutes',
      },
      policies,
    },
  };
}

/** Creates both schedules, or updates spec, action and policies of existing ones (pause state kept). */
export async function ensureHousekeepingSchedules(client: Client, opts: HousekeepingScheduleOptions): Promise<EnsuredSchedule[]> {
  const definitions = housekeepingScheduleDefinitions(opts);
  const schedules =
    opts.namespace && opts.namespace !== client.options.namespace ? new ScheduleClient({ connection: client.connection, namespace: opts.namespace }) : client.schedule;
  const results: EnsuredSchedule[] = [];
  for (const [scheduleId, definition] of Object.entries(definitions)) {
    try {
      await schedules.create({ scheduleId, ...definition });
      results.push({ scheduleId, outcome: 'created' });
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      // An operator may have paused it: keep its state, replace what it runs and when.
      await schedules.getHandle(scheduleId).update((previous) => ({ ...previous, spec: definition.spec, action: definition.action, policies: definition.policies! }));
      results.push({ scheduleId, outcome: 'updated' });
    }
  }
  return results;
}
