// The records the checkpoint store reads and writes: claim, projection, progress, runner plan and
// alert. Pure types; the activity interfaces (activities/types.ts) re-export them for workflows.
import type { CheckpointState, NeedsAttentionReason } from '../domain/checkpoint-states.js';
import type { ResetMode, SuccessAction } from '../domain/decisions.js';
import type { FinalizeStatus } from '../domain/finalize.js';

export interface CheckpointRef {
  name: string;
  runnerId: string;
}

export type ClaimResult =
  /** `plan` when the input asked for it: one database round trip for both. */
  | { ok: true; createdAtMs: number; plan?: RunnerPlan }
  | { ok: false; code: 'conflict' | 'cooldown' | 'maintenance' | 'draining' | 'runner_not_found'; detail: string; holderCleaning?: boolean };

export interface ClaimInput extends CheckpointRef {
  jobId: string;
  projectId?: string;
  backend: 'proxmox' | 'bare_metal';
  caller?: string;
  cooldownSeconds: number;
  includePlan?: boolean;
}

export interface ProjectionInput extends CheckpointRef {
  /** Workflow-assigned sequence number: re-projecting the same seq is a no-op. */
  seq: number;
  from: CheckpointState | null;
  to: CheckpointState;
  event: string;
  detail?: string;
  fields?: {
    finalizeStatus?: FinalizeStatus;
    finalizeSource?: string;
    finalizeQueuedAtMs?: number;
    needsAttentionReason?: NeedsAttentionReason | null;
    ttlExtensions?: number;
    epochAtReset?: number;
    vmid?: number;
  };
}

/** Facts about a runner that decide the workflow's path; no secrets, no connection details. */
export interface RunnerPlan {
  exists: boolean;
  active: boolean;
  backend: 'proxmox' | 'bare_metal';
  successAction: SuccessAction;
  resetMode: ResetMode;
  pauseMethod: 'gitlab' | 'agent' | 'none';
  hasReadinessCommand: boolean;
  hasCleanupCommand: boolean;
  vmid: number | null;
}

/** One transition to project, as the workflow numbered it. */
export interface ProjectedTransition {
  seq: number;
  from: CheckpointState | null;
  to: CheckpointState;
  event: string;
  detail?: string;
  fields?: ProjectionInput['fields'];
  /** Clears holds_claim in the same transaction. */
  releaseClaim?: boolean;
}

/**
 * Everything the workflow has to tell the database at one await point, in one local activity:
 * transitions in order, alerts raised and resolved, and optionally a new epoch watermark.
 */
export interface ProgressInput extends CheckpointRef {
  transitions: ProjectedTransition[];
  raiseAlerts?: AlertInput[];
  resolveAlerts?: string[];
  /** Take an epoch watermark (after the transitions) and record it as the row's epoch_at_reset. */
  takeEpochWatermark?: boolean;
}

export interface ProgressResult {
  epochWatermark: number | null;
}

export interface AlertInput {
  key: string;
  severity: 'info' | 'warning' | 'critical';
  message: string;
  runnerId?: string;
  checkpointName?: string;
}
