// The checkpoint state machine: the only place that decides what may follow what. Pure; the
// workflow applies events here and projects the result.
import type { CheckpointState, EndState, NeedsAttentionReason } from './checkpoint-states.js';
import type { FinalizeIntent } from './finalize.js';

/** Why the runner is being reset; decides the end state. */
export type ResetCause = 'finalize' | 'ttl' | 'cleanup_failed' | 'operator_retry';

export type CheckpointEvent =
  | { type: 'claimed' }
  | { type: 'snapshot_taken' }
  | { type: 'create_failed'; detail: string }
  | { type: 'finalize_requested'; intent: FinalizeIntent }
  | { type: 'ttl_extended'; detail: string }
  | { type: 'ttl_expired'; detail: string }
  | { type: 'cleanup_started' }
  | { type: 'cleanup_done' }
  | { type: 'cleanup_failed'; detail: string }
  | { type: 'reset_started' }
  | { type: 'paused'; detail?: string }
  | { type: 'idle_confirmed' }
  | { type: 'reset_done' }
  | { type: 'ready' }
  | { type: 'claim_released' }
  | { type: 'unpaused' }
  | { type: 'step_failed'; reason: NeedsAttentionReason; detail: string }
  | { type: 'retry_reset'; actor: string }
  | { type: 'release_requested'; actor: string; deleteSnapshot: boolean };

export type CheckpointEventType = CheckpointEvent['type'];

/** Everything the state machine needs to know; small and serialisable (it lives in workflow state). */
export interface CheckpointSnapshot {
  state: CheckpointState | 'new';
  finalize: FinalizeIntent | null;
  /** Finalize intents that arrived after the first one: recorded and ignored. */
  ignoredFinalizes: number;
  resetCause: ResetCause | null;
  releasedByOperator: boolean;
  needsAttention: { reason: NeedsAttentionReason; detail: string } | null;
  ttlExtensions: number;
}

export function initialSnapshot(): CheckpointSnapshot {
  return { state: 'new', finalize: null, ignoredFinalizes: 0, resetCause: null, releasedByOperator: false, needsAttention: null, ttlExtensions: 0 };
}

/** from-state → event → to-state. `unpaused` resolves its target from the snapshot (see endOf). */
const table: Record<CheckpointState | 'new', Partial<Record<CheckpointEventType, CheckpointState | 'end'>>> = {
  new: { claimed: 'creating' },
  creating: { snapshot_taken: 'created', create_failed: 'create_failed', step_failed: 'needs_attention' },
  created: {
    finalize_requested: 'finalize_queued',
    ttl_extended: 'created',
    ttl_expired: 'pausing',
    step_failed: 'needs_attention',
  },
  finalize_queued: { cleanup_started: 'cleaning', reset_started: 'pausing' },
  cleaning: { cleanup_done: 'deleted', cleanup_failed: 'pausing' },
  pausing: { paused: 'confirming_idle', step_failed: 'needs_attention' },
  confirming_idle: { idle_confirmed: 'resetting', step_failed: 'needs_attention' },
  resetting: { reset_done: 'awaiting_readiness', step_failed: 'needs_attention' },
  awaiting_readiness: { ready: 'releasing_claim', step_failed: 'needs_attention' },
  releasing_claim: { claim_released: 'unpausing' },
  unpausing: { unpaused: 'end' },
  // step_failed here: an operator release whose snapshot delete fails stays, with the new detail.
  needs_attention: { retry_reset: 'pausing', release_requested: 'releasing_claim', step_failed: 'needs_attention' },
  deleted: {},
  reset: {},
  gc_reset: {},
  create_failed: {},
  released: {},
};

export class InvalidTransitionError extends Error {
  constructor(
    readonly from: CheckpointState | 'new',
    readonly event: CheckpointEventType,
  ) {
    super(`event '${event}' is not allowed in state '${from}'`);
    this.name = 'InvalidTransitionError';
  }
}

export function canApply(snapshot: CheckpointSnapshot, event: CheckpointEventType): boolean {
  return table[snapshot.state][event] !== undefined;
}

/** The end state reached when a reset path finishes unpausing. */
export function endOf(snapshot: CheckpointSnapshot): EndState {
  if (snapshot.releasedByOperator) return 'released';
  return snapshot.resetCause === 'ttl' ? 'gc_reset' : 'reset';
}

export interface TransitionResult {
  snapshot: CheckpointSnapshot;
  /** True when the event changed nothing but is recorded (a late or duplicate finalize). */
  ignored: boolean;
}

/**
 * Applies one event. A finalize after the first is recorded and ignored in every state; any other
 * event the table does not allow is a programming error and throws.
 */
export function applyEvent(snapshot: CheckpointSnapshot, event: CheckpointEvent): TransitionResult {
  if (event.type === 'finalize_requested' && (snapshot.finalize !== null || snapshot.state !== 'created')) {
    return { snapshot: { ...snapshot, ignoredFinalizes: snapshot.ignoredFinalizes + 1 }, ignored: true };
  }
  const target = table[snapshot.state][event.type];
  if (target === undefined) throw new InvalidTransitionError(snapshot.state, event.type);
  const next: CheckpointSnapshot = { ...snapshot, state: target === 'end' ? endOf(snapshot) : target };
  switch (event.type) {
    case 'finalize_requested':
      next.finalize = event.intent;
      break;
    case 'ttl_extended':
      next.ttlExtensions += 1;
      break;
    case 'ttl_expired':
      next.resetCause = 'ttl';
      break;
    case 'reset_started':
      next.resetCause = 'finalize';
      break;
    case 'cleanup_failed':
      next.resetCause = 'cleanup_failed';
      break;
    case 'step_failed':
      next.needsAttention = { reason: event.reason, detail: event.detail };
      break;
    case 'retry_reset':
      next.needsAttention = null;
      // A TTL reset stays a gc_reset when an operator retries it.
      next.resetCause = snapshot.resetCause === 'ttl' ? 'ttl' : 'operator_retry';
      break;
    case 'release_requested':
      next.needsAttention = null;
      next.releasedByOperator = true;
      break;
    default:
      break;
  }
  return { snapshot: next, ignored: false };
}

/** Every (state, event) pair the table allows; used by tests and docs. */
export function allowedTransitions(): Array<{ from: CheckpointState | 'new'; event: CheckpointEventType; to: CheckpointState | 'end' }> {
  const out: Array<{ from: CheckpointState | 'new'; event: CheckpointEventType; to: CheckpointState | 'end' }> = [];
  for (const [from, events] of Object.entries(table)) {
    for (const [event, to] of Object.entries(events)) out.push({ from: from as CheckpointState | 'new', event: event as CheckpointEventType, to: to! });
  }
  return out;
}
