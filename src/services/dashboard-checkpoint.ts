// One checkpoint as the dashboard's page shows it: its record, timeline with the time spent in
// each state, the results of agent commands and backend steps (redacted and clipped), its alerts
// and the operator actions it allows.
import { asc, desc, eq } from 'drizzle-orm';
import { alerts as alertsTable, checkpointTransitions, checkpoints } from '../../db/schema.js';
import type { Db } from '../store/database.js';
import type { TransitionView } from './checkpoint-listing.js';
import {
  clip,
  DEFAULT_STUCK_AFTER_SECONDS,
  isoOf,
  toDashboardCheckpoint,
  type DashboardCheckpoint,
  type DashboardConfig,
  type DashboardReaderOptions,
} from './dashboard-state.js';


/** Transition events that report the result of an agent command or a backend step. */
const STEP_RESULTS: Record<string, { step: string; ok: boolean }> = {
  snapshot_taken: { step: 'snapshot', ok: true },
  create_failed: { step: 'snapshot', ok: false },
  cleanup_done: { step: 'cleanup', ok: true },
  cleanup_failed: { step: 'cleanup', ok: false },
  paused: { step: 'pause', ok: true },
  idle_confirmed: { step: 'idle check', ok: true },
  reset_done: { step: 'reset', ok: true },
  ready: { step: 'readiness', ok: true },
  unpaused: { step: 'unpause', ok: true },
  step_failed: { step: 'step', ok: false },
};
/** Which step a needs-attention reason names. */
const FAILED_STEP: Record<string, string> = {
  pause_failed: 'pause',
  runner_busy: 'idle check',
  reset_failed: 'reset',
  readiness_timeout: 'readiness',
  snapshot_delete_failed: 'snapshot delete',
  command_not_declared: 'agent command',
  command_outcome_unknown: 'reset',
  agent_unreachable: 'agent',
};

export interface CheckpointTimelineEntry extends TransitionView {
  /** Time spent in `to` until the next transition (or until now while it lasts); null for an end state. */
  seconds: number | null;
}

export interface DashboardCheckpointDetail {
  generatedAt: string;
  checkpoint: DashboardCheckpoint & {
    backend: string;
    caller: string | null;
    vmid: number | null;
    ttlExtensions: number;
    finalizedAt: string | null;
    createdDoneAt: string | null;
    resetStartedAt: string | null;
    readyAt: string | null;
  };
  timeline: CheckpointTimelineEntry[];
  /** Agent commands and backend steps as the workflow recorded them (output redacted and truncated). */
  commandResults: Array<{ seq: number; at: string; step: string; ok: boolean; detail: string | null }>;
  alerts: Array<{ key: string; severity: string; message: string; openedAt: string; resolvedAt: string | null }>;
  actions: { retryReset: boolean; release: boolean };
  temporalUrl: string;
}

export async function readCheckpointDetail(db: Db, config: DashboardConfig, name: string, opts: DashboardReaderOptions = {}): Promise<DashboardCheckpointDetail | null> {
  const [row] = await db.select().from(checkpoints).where(eq(checkpoints.name, name)).limit(1);
  if (!row) return null;
  const now = Date.now();
  const ui = { uiUrl: config.TEMPORAL_UI_URL, namespace: config.TEMPORAL_NAMESPACE };
  const [log, alertRows] = await Promise.all([
    db.select().from(checkpointTransitions).where(eq(checkpointTransitions.checkpointName, name)).orderBy(asc(checkpointTransitions.seq), asc(checkpointTransitions.id)),
    db.select().from(alertsTable).where(eq(alertsTable.checkpointName, name)).orderBy(desc(alertsTable.id)).limit(50),
  ]);
  const naive = (d: Date | null) => (d ? d.toISOString().replace(/Z$/, '') : null);
  const base = toDashboardCheckpoint(
    {
      name: row.name, runner_id: row.runnerId, job_id: row.jobId, project_id: row.projectId, backend: row.backend, caller: row.caller, state: row.state,
      finalize_status: row.finalizeStatus, finalize_source: row.finalizeSource, needs_attention_reason: row.needsAttentionReason, detail: row.detail,
      ttl_extensions: row.ttlExtensions, created_at: naive(row.createdAt)!, updated_at: naive(row.updatedAt)!, ended_at: naive(row.endedAt), finalized_at: naive(row.finalizeQueuedAt),
    },
    now,
    ui,
    opts.stuckAfterSeconds ?? DEFAULT_STUCK_AFTER_SECONDS,
  );
  const timeline = log.map((t, i): CheckpointTimelineEntry => {
    const next = log[i + 1];
    const until = next ? next.at.getTime() : row.endedAt ? null : now;
    return { seq: t.seq, from: t.fromState, to: t.toState, event: t.event, detail: clip(t.detail), at: t.at.toISOString(), seconds: until === null ? null : Math.max(0, Math.round((until - t.at.getTime()) / 100) / 10) };
  });
  const commandResults = log.flatMap((t) => {
    const known = STEP_RESULTS[t.event];
    if (!known) return [];
    const step = t.event === 'step_failed' ? (failedStepOf(t.detail) ?? FAILED_STEP[row.needsAttentionReason ?? ''] ?? 'step') : known.step;
    return [{ seq: t.seq, at: t.at.toISOString(), step, ok: known.ok, detail: clip(t.detail) }];
  });
  const needsAttention = row.state === 'needs_attention';
  return {
    generatedAt: new Date(now).toISOString(),
    checkpoint: {
      ...base,
      backend: row.backend,
      caller: row.caller,
      vmid: row.vmid,
      ttlExtensions: row.ttlExtensions,
      finalizedAt: isoOf(row.finalizeQueuedAt),
      createdDoneAt: isoOf(row.createdDoneAt),
      resetStartedAt: isoOf(row.resetStartedAt),
      readyAt: isoOf(row.readyAt),
    },
    timeline,
    commandResults,
    alerts: alertRows.map((a) => ({ key: a.key, severity: a.severity, message: a.message, openedAt: a.openedAt.toISOString(), resolvedAt: isoOf(a.resolvedAt) })),
    actions: { retryReset: needsAttention, release: needsAttention },
    temporalUrl: base.temporalUrl,
  };
}

/** The step a failure detail names ("pause_runner command: …", "readiness command …"), if any. */
function failedStepOf(detail: string | null): string | undefined {
  const m = /^(?:the agent does not declare a )?(pause_runner|cleanup|reset|readiness|snapshot)\b/i.exec(detail ?? '');
  return m ? m[1]!.replace('pause_runner', 'pause').toLowerCase() : undefined;
}
