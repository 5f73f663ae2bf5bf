import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import {
  applyEvent,
  allowedTransitions,
  canApply,
  initialSnapshot,
  InvalidTransitionError,
  type CheckpointEvent,
  type CheckpointSnapshot,
} from '../../src/domain/transitions.js';
import { checkpointStates, holdsClaim, isEndState, type CheckpointState } from '../../src/domain/checkpoint-states.js';

const intent = (status: 'success' | 'failure' | 'canceled', source = 'hook') => ({ status, source, at: 1 });

/** One sample of every event type. */
const sampleEvents: CheckpointEvent[] = [
  { type: 'claimed' },
  { type: 'snapshot_taken' },
  { type: 'create_failed', detail: 'x' },
  { type: 'finalize_requested', intent: intent('success') },
  { type: 'ttl_extended', detail: 'running' },
  { type: 'ttl_expired', detail: 'terminal' },
  { type: 'cleanup_started' },
  { type: 'cleanup_done' },
  { type: 'cleanup_failed', detail: 'x' },
  { type: 'reset_started' },
  { type: 'paused' },
  { type: 'idle_confirmed' },
  { type: 'reset_done' },
  { type: 'ready' },
  { type: 'claim_released' },
  { type: 'unpaused' },
  { type: 'step_failed', reason: 'reset_failed', detail: 'x' },
  { type: 'retry_reset', actor: 'op' },
  { type: 'release_requested', actor: 'op', deleteSnapshot: true },
];

function at(state: CheckpointState | 'new', extra: Partial<CheckpointSnapshot> = {}): CheckpointSnapshot {
  return { ...initialSnapshot(), state, ...extra };
}

function run(events: CheckpointEvent[], start = initialSnapshot()): CheckpointSnapshot {
  return events.reduce((s, e) => applyEvent(s, e).snapshot, start);
}

describe('checkpoint transitions', () => {
  it('walks the success path with cleanup to deleted', () => {
    const s = run([{ type: 'claimed' }, { type: 'snapshot_taken' }, { type: 'finalize_requested', intent: intent('success') }, { type: 'cleanup_started' }, { type: 'cleanup_done' }]);
    assert.equal(s.state, 'deleted');
    assert.deepEqual(s.finalize, intent('success'));
  });

  it('walks the failure path to reset', () => {
    const s = run([
      { type: 'claimed' }, { type: 'snapshot_taken' }, { type: 'finalize_requested', intent: intent('failure') }, { type: 'reset_started' },
      { type: 'paused' }, { type: 'idle_confirmed' }, { type: 'reset_done' }, { type: 'ready' }, { type: 'claim_released' }, { type: 'unpaused' },
    ]);
    assert.equal(s.state, 'reset');
  });

  it('ends a TTL reset in gc_reset, also after an operator retry', () => {
    const ttl = run([{ type: 'claimed' }, { type: 'snapshot_taken' }, { type: 'ttl_expired', detail: 'terminal' }]);
    assert.equal(ttl.state, 'pausing');
    const failed = run([{ type: 'paused' }, { type: 'step_failed', reason: 'runner_busy', detail: 'busy' }, { type: 'retry_reset', actor: 'op' }], ttl);
    assert.equal(failed.state, 'pausing');
    const done = run([{ type: 'paused' }, { type: 'idle_confirmed' }, { type: 'reset_done' }, { type: 'ready' }, { type: 'claim_released' }, { type: 'unpaused' }], failed);
    assert.equal(done.state, 'gc_reset');
  });

  it('ends an operator release in released and clears needs attention', () => {
    const na = run([{ type: 'claimed' }, { type: 'snapshot_taken' }, { type: 'finalize_requested', intent: intent('failure') }, { type: 'reset_started' }, { type: 'step_failed', reason: 'pause_failed', detail: 'gitlab down' }]);
    assert.equal(na.state, 'needs_attention');
    assert.deepEqual(na.needsAttention, { reason: 'pause_failed', detail: 'gitlab down' });
    const released = run([{ type: 'release_requested', actor: 'op', deleteSnapshot: false }, { type: 'claim_released' }, { type: 'unpaused' }], na);
    assert.equal(released.state, 'released');
    assert.equal(released.needsAttention, null);
  });

  it('escalates a failed cleanup to the reset path ending in reset', () => {
    const s = run([{ type: 'claimed' }, { type: 'snapshot_taken' }, { type: 'finalize_requested', intent: intent('success') }, { type: 'cleanup_started' }, { type: 'cleanup_failed', detail: 'exit 1' }]);
    assert.equal(s.state, 'pausing');
    assert.equal(s.resetCause, 'cleanup_failed');
    assert.equal(run([{ type: 'paused' }, { type: 'idle_confirmed' }, { type: 'reset_done' }, { type: 'ready' }, { type: 'claim_released' }, { type: 'unpaused' }], s).state, 'reset');
  });

  it('keeps the first finalize and records later ones as ignored, in every state', () => {
    for (const state of checkpointStates) {
      const first = intent('failure', 'webhook');
      const snapshot = state === 'created' ? at(state) : at(state, { finalize: state === 'creating' ? null : first });
      const late = applyEvent(snapshot, { type: 'finalize_requested', intent: intent('success', 'poller') });
      if (state === 'created') {
        assert.equal(late.ignored, false);
        assert.equal(late.snapshot.state, 'finalize_queued');
        const again = applyEvent(late.snapshot, { type: 'finalize_requested', intent: intent('canceled', 'agent') });
        assert.equal(again.ignored, true);
        assert.deepEqual(again.snapshot.finalize, intent('success', 'poller'));
        assert.equal(again.snapshot.ignoredFinalizes, 1);
      } else {
        assert.equal(late.ignored, true, `finalize in ${state} must be ignored`);
        assert.equal(late.snapshot.state, state);
        assert.equal(late.snapshot.ignoredFinalizes, 1);
      }
    }
  });

  it('rejects every event the table does not allow, for every state (state × event)', () => {
    const allowed = new Set(allowedTransitions().map((t) => `${t.from}:${t.event}`));
    for (const state of ['new', ...checkpointStates] as const) {
      for (const event of sampleEvents) {
        if (event.type === 'finalize_requested') continue; // covered above: never throws
        const key = `${state}:${event.type}`;
        if (allowed.has(key)) {
          assert.doesNotThrow(() => applyEvent(at(state), event), key);
          assert.equal(canApply(at(state), event.type), true);
        } else {
          assert.throws(() => applyEvent(at(state), event), InvalidTransitionError, key);
          assert.equal(canApply(at(state), event.type), false);
        }
      }
    }
  });

  it('lets nothing leave an end state but recorded finalizes', () => {
    for (const state of checkpointStates.filter(isEndState)) {
      for (const event of sampleEvents.filter((e) => e.type !== 'finalize_requested')) {
        assert.throws(() => applyEvent(at(state), event), InvalidTransitionError);
      }
    }
  });

  it('never leaves needs_attention except by an operator action', () => {
    const leaving = allowedTransitions().filter((t) => t.from === 'needs_attention' && t.to !== 'needs_attention').map((t) => t.event).sort();
    assert.deepEqual(leaving, ['release_requested', 'retry_reset']);
  });

  it('a step that fails again in needs_attention stays there with the new reason (a release whose delete fails)', () => {
    const first = applyEvent(at('needs_attention'), { type: 'step_failed', reason: 'snapshot_delete_failed', detail: 'delete failed' }).snapshot;
    assert.equal(first.state, 'needs_attention');
    assert.deepEqual(first.needsAttention, { reason: 'snapshot_delete_failed', detail: 'delete failed' });
  });

  it('every state the workflow enters needs attention from allows step_failed', () => {
    for (const state of ['creating', 'created', 'pausing', 'confirming_idle', 'resetting', 'awaiting_readiness', 'needs_attention'] as const) {
      assert.equal(applyEvent(at(state), { type: 'step_failed', reason: 'reset_failed', detail: 'x' }).snapshot.state, 'needs_attention', state);
    }
  });

  it('holds the claim exactly until releasing_claim (ARCHITECTURE §5)', () => {
    const held = checkpointStates.filter(holdsClaim);
    assert.deepEqual(held, ['creating', 'created', 'finalize_queued', 'cleaning', 'pausing', 'confirming_idle', 'resetting', 'awaiting_readiness', 'needs_attention']);
    // Every transition into a non-holding state from a holding one must be one the workflow
    // projects through releaseClaim (the only code that clears holds_claim).
    const releasing = allowedTransitions()
      .filter((t) => t.from !== 'new' && holdsClaim(t.from) && t.to !== 'end' && !holdsClaim(t.to))
      .map((t) => `${t.from}:${t.event}`)
      .sort();
    assert.deepEqual(releasing, ['awaiting_readiness:ready', 'cleaning:cleanup_done', 'creating:create_failed', 'needs_attention:release_requested']);
  });
});
