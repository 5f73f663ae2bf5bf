// The chaos checker on hand-made ground truth: each invariant is reported when its records show a
// broken promise, and not when they show the promise kept.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { checkInvariants } from '../../bench/chaos/checker.js';
import { emptyTruth, type CommandTruth, type FinalFacts, type GroundTruth, type RunnerTruth } from '../../bench/chaos/truth.js';

const metal: RunnerTruth = { runnerId: 'chaos-legacy-reboot-1', kind: 'legacy_reboot', gitlabRunnerId: 100, resetMode: 'reboot', resetReboots: true };
const inPlace: RunnerTruth = { runnerId: 'chaos-current-in-place-1', kind: 'current_in_place', gitlabRunnerId: 101, resetMode: 'in_place', resetReboots: false };
const vm: RunnerTruth = { runnerId: 'chaos-proxmox-1', kind: 'proxmox', gitlabRunnerId: 102, vmid: 1000, resetMode: 'reboot', resetReboots: true };
const CP = 'job-7-1700000000-0123abcd';
const CP2 = 'job-8-1700000100-4567cdef';

function command(runner: RunnerTruth, command: string, at: number, opts: Partial<CommandTruth> = {}): CommandTruth {
  return { runnerId: runner.runnerId, checkpoint: CP, command, commandId: null, sessionSerial: 1, sessionStartedAt: 0, bootId: 'b1', startedAt: at, endedAt: at + 1, exitCode: 0, replayed: false, ...opts };
}

function facts(over: Partial<FinalFacts> = {}): FinalFacts {
  return { checkpoints: [{ name: CP, runnerId: metal.runnerId, state: 'reset', needsAttentionReason: null }], workflows: [{ workflowId: CP, status: 'COMPLETED', historyLength: 100, workflowTaskFailures: 0 }], ...over };
}

function world(runner: RunnerTruth, fill: (t: GroundTruth) => void): GroundTruth {
  const t = emptyTruth([runner]);
  fill(t);
  return t;
}

const check = (t: GroundTruth, f: FinalFacts = facts()) => checkInvariants(t, f, { historyBound: 1000, startedAt: 0 });

test('a reboot reset followed by readiness on a later session and then an unpause is clean', () => {
  const t = world(metal, (t) => {
    t.pauses.push({ runnerId: metal.runnerId, paused: true, at: 1000 });
    t.commands.push(command(metal, 'reset', 2000));
    t.commands.push(command(metal, 'readiness', 4000, { sessionSerial: 2, sessionStartedAt: 3000 }));
    t.pauses.push({ runnerId: metal.runnerId, paused: false, at: 5000 });
  });
  assert.deepEqual(check(t), []);
});

test('an unpause with no reset on the host since the pause is invariant 2, matched to bug 1', () => {
  const t = world(metal, (t) => {
    t.pauses.push({ runnerId: metal.runnerId, paused: true, at: 1000 });
    t.commands.push(command(metal, 'readiness', 4000, { sessionSerial: 2, sessionStartedAt: 3000 }));
    t.pauses.push({ runnerId: metal.runnerId, paused: false, at: 5000 });
  });
  const [v, ...rest] = check(t);
  assert.equal(rest.length, 0);
  assert.equal(v!.invariant, 2);
  assert.match(v!.detail, /never ran/);
  assert.match(v!.reviewFinding!, /bug 1/);
  assert.ok(v!.events.some((line) => /unpaused/.test(line)));
});

test('readiness on the session from before a reboot reset does not prove the host came back', () => {
  const t = world(metal, (t) => {
    t.pauses.push({ runnerId: metal.runnerId, paused: true, at: 1000 });
    t.commands.push(command(metal, 'reset', 2000));
    t.commands.push(command(metal, 'readiness', 4000, { sessionStartedAt: 500 }));
    t.pauses.push({ runnerId: metal.runnerId, paused: false, at: 5000 });
  });
  assert.deepEqual(check(t).map((v) => v.invariant), [2]);
});

test('in-place resets prove readiness on the same session', () => {
  const t = world(inPlace, (t) => {
    t.pauses.push({ runnerId: inPlace.runnerId, paused: true, at: 1000 });
    t.commands.push(command(inPlace, 'reset', 2000));
    t.commands.push(command(inPlace, 'readiness', 4000, { sessionStartedAt: 500 }));
    t.pauses.push({ runnerId: inPlace.runnerId, paused: false, at: 5000 });
  });
  assert.deepEqual(check(t, facts({ checkpoints: [] , workflows: [] })), []);
});

test('an operator release unpauses by design, but not when a reset was attempted after it', () => {
  const released = world(metal, (t) => {
    t.pauses.push({ runnerId: metal.runnerId, paused: true, at: 1000 });
    t.commands.push(command(metal, 'reset', 2000, { exitCode: 1 }));
    t.operator.push({ checkpoint: CP, runnerId: metal.runnerId, action: 'release', deleteSnapshot: true, intent: 1, status: 202, at: 3000 });
    t.pauses.push({ runnerId: metal.runnerId, paused: false, at: 5000 });
  });
  assert.deepEqual(check(released), []);

  const stale = world(metal, (t) => {
    t.pauses.push({ runnerId: metal.runnerId, paused: true, at: 1000 });
    t.operator.push({ checkpoint: CP, runnerId: metal.runnerId, action: 'release', deleteSnapshot: true, intent: 1, status: 202, at: 1500 });
    t.commands.push(command(metal, 'reset', 2000, { exitCode: 1 }));
    t.pauses.push({ runnerId: metal.runnerId, paused: false, at: 5000 });
  });
  const [v] = check(stale);
  assert.equal(v!.invariant, 2);
  assert.match(v!.reviewFinding!, /bug 2/);
});

test('a second reset for one checkpoint is invariant 3 unless an operator asked for it; a double click is one request', () => {
  const twice = world(metal, (t) => {
    t.commands.push(command(metal, 'reset', 2000), command(metal, 'reset', 9000));
  });
  const [v] = check(twice).filter((x) => x.invariant === 3);
  assert.equal(v!.checkpoint, CP);
  assert.match(v!.reviewFinding!, /bug 7/);

  const retried = world(metal, (t) => {
    t.commands.push(command(metal, 'reset', 2000), command(metal, 'reset', 9000));
    t.operator.push({ checkpoint: CP, runnerId: metal.runnerId, action: 'retry', intent: 4, status: 202, at: 5000 });
  });
  assert.deepEqual(check(retried).filter((x) => x.invariant === 3), []);

  const doubleClick = world(metal, (t) => {
    t.commands.push(command(metal, 'reset', 2000), command(metal, 'reset', 9000), command(metal, 'reset', 15000));
    t.operator.push({ checkpoint: CP, runnerId: metal.runnerId, action: 'retry', intent: 4, status: 202, at: 5000 });
    t.operator.push({ checkpoint: CP, runnerId: metal.runnerId, action: 'retry', intent: 4, status: 202, at: 5010 });
  });
  const [d] = check(doubleClick).filter((x) => x.invariant === 3);
  assert.match(d!.reviewFinding!, /bug 2/);

  const replayed = world(metal, (t) => {
    t.commands.push(command(metal, 'reset', 2000), command(metal, 'reset', 9000, { replayed: true }));
  });
  assert.deepEqual(check(replayed).filter((x) => x.invariant === 3), [], 'an answer from the agent memory is not a second run');
});

test('a job snapshot left behind is invariant 4 unless its checkpoint needs attention', () => {
  const left = world(vm, (t) => t.snapshotsLeft.push({ runnerId: vm.runnerId, vmid: 1000, name: CP }));
  assert.deepEqual(check(left).map((v) => v.invariant), [4]);
  const kept = facts({ checkpoints: [{ name: CP, runnerId: vm.runnerId, state: 'needs_attention', needsAttentionReason: 'reset_failed' }] });
  assert.deepEqual(check(left, kept), []);
});

test('invariant 5: checkpoints that never end, needs attention without a reason, wedged and oversized workflows', () => {
  const t = world(metal, () => undefined);
  const v = check(
    t,
    facts({
      checkpoints: [
        { name: CP, runnerId: metal.runnerId, state: 'created', needsAttentionReason: null },
        { name: CP2, runnerId: metal.runnerId, state: 'needs_attention', needsAttentionReason: null },
      ],
      workflows: [
        { workflowId: CP, status: 'RUNNING', historyLength: 40, workflowTaskFailures: 3, workflowTaskFailure: 'Cannot convert object to primitive value' },
        { workflowId: CP2, status: 'RUNNING', historyLength: 5000, workflowTaskFailures: 0 },
      ],
    }),
  );
  assert.deepEqual(v.map((x) => x.invariant), [5, 5, 5, 5]);
  assert.ok(v.some((x) => x.reviewFinding?.startsWith('bug 8')));
  assert.ok(v.some((x) => /5000 events/.test(x.detail)));
});

test('invariant 1: an older checkpoint rolling the VM back after a newer one took its snapshot', () => {
  const t = world(vm, (t) => {
    t.tasks.push({ runnerId: vm.runnerId, vmid: 1000, type: 'qmsnapshot', snapname: CP, upid: 'u1', startedAt: 1000, endedAt: 1100, exitstatus: 'OK' });
    t.tasks.push({ runnerId: vm.runnerId, vmid: 1000, type: 'qmsnapshot', snapname: CP2, upid: 'u2', startedAt: 5000, endedAt: 5100, exitstatus: 'OK' });
    t.tasks.push({ runnerId: vm.runnerId, vmid: 1000, type: 'qmrollback', snapname: CP, upid: 'u3', startedAt: 6000, endedAt: 6100, exitstatus: 'OK' });
  });
  const v = check(t, facts({ checkpoints: [], workflows: [] }));
  assert.deepEqual(v.map((x) => x.invariant), [1]);
  assert.match(v[0]!.detail, new RegExp(CP2));
  // The same rollback before the newer snapshot is fine.
  t.tasks[2]!.startedAt = 3000;
  assert.deepEqual(check(t, facts({ checkpoints: [], workflows: [] })), []);
});
