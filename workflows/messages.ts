// Signals, updates and queries of the checkpoint workflow, and its input. Shared by the workflow,
// the API and tests; deterministic code only.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CheckpointState, NeedsAttentionReason } from '../src/domain/checkpoint-states.js';
import type { FinalizeStatus } from '../src/domain/finalize.js';
import type { CheckpointSnapshot } from '../src/domain/transitions.js';
import type { RunnerPlan } from '../activities/types.js';

/** The type new checkpoints start as (workflows/checkpoint/). */
export const CHECKPOINT_WORKFLOW_TYPE = 'checkpointV2Workflow';
/** The first release's type: still registered while runs of it are open (docs/development.md). */
export const CHECKPOINT_V1_WORKFLOW_TYPE = 'checkpointWorkflow';

/** Every timing the workflow uses. Filled from config by the API when it starts the workflow. */
export interface CheckpointTimings {
  createAcceptWindowSeconds: number;
  createWaitForCleanupSeconds: number;
  /** A create within this long of the runner's previous finalize being queued answers 429. */
  cooldownSeconds: number;
  ttlSeconds: number;
  maxTtlSeconds: number;
  pollerEnabled: boolean;
  pollerIntervalSeconds: number;
  pollerMinAgeSeconds: number;
  readinessTimeoutSeconds: number;
  readinessPollIntervalSeconds: number;
  readinessStableSeconds: number;
  resetSettleSeconds: number;
  ownJobGraceSeconds: number;
  foreignJobGraceSeconds: number;
  idlePollSeconds: number;
  pauseBudgetSeconds: number;
  unpauseAlertAfterSeconds: number;
  agentRouteAttempts: number;
  commandTimeoutSeconds: number;
  /** Timeout of one Proxmox step (snapshot, stop, rollback, start, delete). */
  backendStepTimeoutSeconds: number;
}

export interface CheckpointWorkflowInput {
  name: string;
  runnerId: string;
  jobId: string;
  projectId?: string;
  backend: 'proxmox' | 'bare_metal';
  caller?: string;
  timings: CheckpointTimings;
  /** Set only by the workflow itself when it continues as new (a long unpause); never by the API. */
  resume?: CheckpointResume;
}

/** The part of a run's state a continued run starts from. */
export interface CheckpointResumeState {
  snapshot: CheckpointSnapshot;
  seq: number;
  ignoredOperatorSignals: number;
}

export interface CheckpointResume {
  at: 'unpause';
  state: CheckpointResumeState;
  plan: RunnerPlan;
  /** When unpausing began (the slow-unpause alert counts from here), and whether it alerted. */
  unpauseSinceMs: number;
  alerted: boolean;
  unpauseAttempts: number;
}

export interface CreateRequest {
  /** Absolute deadline, epoch milliseconds. */
  deadlineMs: number;
}

export interface CreateResult {
  name: string;
  state: CheckpointState;
}

export interface FinalizeSignal {
  status: FinalizeStatus;
  source: string;
}

export interface ReleaseSignal {
  actor: string;
  deleteSnapshot: boolean;
  /** The needs-attention episode it answers (`needsAttentionEpisode`); other episodes ignore it. */
  episode?: number;
}

export interface RetryResetSignal {
  actor: string;
  episode?: number;
}

export interface CheckpointQueryResult {
  name: string;
  runnerId: string;
  state: CheckpointState | 'new';
  finalize: { status: FinalizeStatus; source: string; at: number } | null;
  ignoredFinalizes: number;
  needsAttention: { reason: NeedsAttentionReason; detail: string } | null;
  ttlExtensions: number;
  step: string | null;
  /** Seq of the projection that opened the current needs-attention episode; null outside one. */
  needsAttentionEpisode?: number | null;
  ignoredOperatorSignals?: number;
}

export const createUpdate = defineUpdate<CreateResult, [CreateRequest]>('create');
export const finalizeSignal = defineSignal<[FinalizeSignal]>('finalize');
export const retryResetSignal = defineSignal<[RetryResetSignal]>('retryReset');
export const releaseSignal = defineSignal<[ReleaseSignal]>('release');
export const checkpointQuery = defineQuery<CheckpointQueryResult>('checkpoint');

/** Update id of the create: a retry re-sends the same call and reads the same outcome. */
export const CREATE_UPDATE_ID = 'create';
