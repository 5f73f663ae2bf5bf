// Checkpoint states (ARCHITECTURE §5) and what each one means for the runner's claim.

export const checkpointStates = [
  'creating',
  'created',
  'finalize_queued',
  'cleaning',
  'pausing',
  'confirming_idle',
  'resetting',
  'awaiting_readiness',
  'releasing_claim',
  'unpausing',
  'needs_attention',
  'deleted',
  'reset',
  'gc_reset',
  'create_failed',
  'released',
] as const;

export type CheckpointState = (typeof checkpointStates)[number];

/** Ends that leave a row. `rejected` and `abandoned` end a workflow without ever writing one. */
export const endStates = ['deleted', 'reset', 'gc_reset', 'create_failed', 'released'] as const;
export type EndState = (typeof endStates)[number];
export type WorkflowEnd = EndState | 'rejected' | 'abandoned';

const claimHolding: ReadonlySet<CheckpointState> = new Set<CheckpointState>([
  'creating',
  'created',
  'finalize_queued',
  'cleaning',
  'pausing',
  'confirming_idle',
  'resetting',
  'awaiting_readiness',
  'needs_attention',
]);

/** Whether a checkpoint in this state holds its runner's claim (the DB's holds_claim must agree). */
export function holdsClaim(state: CheckpointState): boolean {
  return claimHolding.has(state);
}

export function isEndState(state: CheckpointState): state is EndState {
  return (endStates as readonly string[]).includes(state);
}

export function isCheckpointState(value: unknown): value is CheckpointState {
  return typeof value === 'string' && (checkpointStates as readonly string[]).includes(value);
}

/** States in which the runner is (or is being) rolled back: creates answer 409 at once. */
const resetPath: ReadonlySet<CheckpointState> = new Set<CheckpointState>([
  'pausing',
  'confirming_idle',
  'resetting',
  'awaiting_readiness',
  'releasing_claim',
  'unpausing',
  'needs_attention',
]);

export function isOnResetPath(state: CheckpointState): boolean {
  return resetPath.has(state);
}

/** "Active" in listings: the checkpoint still has work to do or holds the runner. */
export function isActive(state: CheckpointState): boolean {
  return !isEndState(state);
}

/** Waiting for finalize work (the operator's queue depth). */
export function isQueued(state: CheckpointState): boolean {
  return state === 'finalize_queued' || state === 'cleaning' || resetPath.has(state) && state !== 'needs_attention';
}

export const needsAttentionReasons = [
  'pause_failed',
  'runner_busy',
  'reset_failed',
  'readiness_timeout',
  'snapshot_delete_failed',
  'orphan_snapshot',
  'orphan_claim',
  'ttl_exceeded',
  'config_changed',
  'command_not_declared',
  'command_outcome_unknown',
  'agent_unreachable',
  'runner_missing',
] as const;
export type NeedsAttentionReason = (typeof needsAttentionReasons)[number];

// --- state groups: the only lists of states (SQL and code are built from these) ---------------

/** Still moving or holding its runner: every state but the ends. */
export const activeStates: readonly CheckpointState[] = checkpointStates.filter((s) => !isEndState(s));

/** On the reset path, needs attention included: the runner is (or may be) paused. */
export const resetPathStates: readonly CheckpointState[] = checkpointStates.filter((s) => resetPath.has(s));

/** Being reset right now (the reset path without needs attention). */
export const resettingStates: readonly CheckpointState[] = resetPathStates.filter((s) => s !== 'needs_attention');

/** Finalize received, work not done: the operator's queue (isQueued). */
export const queuedStates: readonly CheckpointState[] = checkpointStates.filter((s) => isQueued(s));

/** Finalize received, success path running. */
export const finalizePendingStates: readonly CheckpointState[] = ['finalize_queued', 'cleaning'];

/** Until readiness is proven the agent may be down because the reset rebooted the host. */
export const rebootWindowStates: readonly CheckpointState[] = ['pausing', 'confirming_idle', 'resetting', 'awaiting_readiness'];

/** What an operator reads a state as, in the dashboard and listings. */
export type CheckpointPhase = 'creating' | 'job running' | 'finalizing' | 'resetting' | 'needs attention' | 'ended' | 'failed';

const phases: Record<CheckpointState, CheckpointPhase> = {
  creating: 'creating',
  created: 'job running',
  finalize_queued: 'finalizing',
  cleaning: 'finalizing',
  pausing: 'resetting',
  confirming_idle: 'resetting',
  resetting: 'resetting',
  awaiting_readiness: 'resetting',
  releasing_claim: 'resetting',
  unpausing: 'resetting',
  needs_attention: 'needs attention',
  deleted: 'ended',
  reset: 'ended',
  gc_reset: 'ended',
  released: 'ended',
  create_failed: 'failed',
};

export function phaseOf(state: string): CheckpointPhase {
  return isCheckpointState(state) ? phases[state] : 'ended';
}
