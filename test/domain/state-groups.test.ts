import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { activeStates, endStates, isQueued, phaseOf, queuedStates, rebootWindowStates, resetPathStates, resettingStates } from '../../src/domain/checkpoint-states.js';
import { statesSql } from '../../src/store/state-sql.js';

describe('state groups: the only lists of states', () => {
  it('each group means what its name says', () => {
    assert.deepEqual([...resettingStates], ['pausing', 'confirming_idle', 'resetting', 'awaiting_readiness', 'releasing_claim', 'unpausing']);
    assert.deepEqual([...resetPathStates], [...resettingStates, 'needs_attention']);
    assert.deepEqual([...queuedStates], ['finalize_queued', 'cleaning', ...resettingStates]);
    assert.ok(queuedStates.every(isQueued));
    assert.ok(rebootWindowStates.every((s) => resettingStates.includes(s)));
    assert.ok(activeStates.every((s) => !(endStates as readonly string[]).includes(s)) && activeStates.length + endStates.length === 16);
    assert.deepEqual([phaseOf('created'), phaseOf('unpausing'), phaseOf('needs_attention'), phaseOf('create_failed'), phaseOf('nonsense')], ['job running', 'resetting', 'needs attention', 'failed', 'ended']);
  });

  it('statesSql takes only checkpoint states', () => {
    assert.throws(() => statesSql(["created'); drop table runners; --" as never]), /checkpoint states only/);
    assert.throws(() => statesSql([]), /checkpoint states only/);
  });
});
