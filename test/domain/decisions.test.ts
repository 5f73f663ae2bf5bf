import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { backoffSeconds, decideAtTtl, decideIdle, initialIdleProgress, isSessionFresh, pathAfterFinalize, resetNeedsFreshSession, type IdleDecision, type RunnerJobsObservation, readLostReset, boundedPollSeconds, MAX_POLLS_PER_WAIT } from '../../src/domain/decisions.js';
import { parseFinalizeStatus } from '../../src/domain/finalize.js';
import { checkJobIdFitsName, isValidCheckpointName, jobIdOfName, MAX_JOB_ID_LENGTH, mintCheckpointName } from '../../src/domain/checkpoint-name.js';

const graces = { ownJobGraceSeconds: 600, foreignJobGraceSeconds: 900 };

function feed(observations: Array<[RunnerJobsObservation, number]>): IdleDecision {
  let progress = initialIdleProgress();
  let decision: IdleDecision = { action: 'wait', progress };
  for (const [obs, elapsed] of observations) {
    decision = decideIdle(progress, obs, '42', elapsed, graces);
    if (decision.action !== 'wait') return decision;
    progress = decision.progress;
  }
  return decision;
}

const empty: RunnerJobsObservation = { kind: 'jobs', jobIds: [] };

describe('decisions', () => {
  it('chooses cleanup only for success with the cleanup action', () => {
    assert.equal(pathAfterFinalize('success', 'cleanup'), 'cleanup');
    assert.equal(pathAfterFinalize('success', 'reset'), 'reset');
    assert.equal(pathAfterFinalize('failure', 'cleanup'), 'reset');
    assert.equal(pathAfterFinalize('canceled', 'cleanup'), 'reset');
  });

  it('at the TTL resets finished or unknowable jobs and extends running ones or errors', () => {
    assert.deepEqual(decideAtTtl({ kind: 'terminal', outcome: 'success' }, 1800, 86400), { action: 'reset' });
    assert.deepEqual(decideAtTtl({ kind: 'unknowable', detail: 'no project' }, 1800, 86400), { action: 'reset' });
    assert.deepEqual(decideAtTtl({ kind: 'running' }, 1800, 86400), { action: 'extend' });
    assert.deepEqual(decideAtTtl({ kind: 'error', detail: '502' }, 1800, 86400), { action: 'extend' });
    const max = decideAtTtl({ kind: 'running' }, 86400, 86400);
    assert.equal(max.action, 'needs_attention');
    assert.equal(decideAtTtl({ kind: 'error', detail: '502' }, 90000, 86400).action, 'needs_attention');
    // A finished job past the maximum still resets: nothing is running any more.
    assert.equal(decideAtTtl({ kind: 'terminal', outcome: 'failure' }, 90000, 86400).action, 'reset');
  });

  it('needs two empty answers in a row to call a runner idle', () => {
    assert.equal(feed([[empty, 0]]).action, 'wait');
    assert.equal(feed([[empty, 0], [empty, 5]]).action, 'idle');
    assert.equal(feed([[empty, 0], [{ kind: 'unknown', detail: '500' }, 5], [empty, 5]]).action, 'wait');
  });

  it('never treats a GitLab error as idle, and gives up after the foreign grace', () => {
    const errors = Array.from({ length: 200 }, () => [{ kind: 'unknown', detail: '503' } as RunnerJobsObservation, 5] as [RunnerJobsObservation, number]);
    const d = feed(errors);
    assert.equal(d.action, 'busy');
  });

  it('waits for the own job up to its grace and for a foreign job up to its own', () => {
    const own = (n: number) => Array.from({ length: n }, () => [{ kind: 'jobs', jobIds: ['42'] } as RunnerJobsObservation, 5] as [RunnerJobsObservation, number]);
    assert.equal(feed(own(120)).action, 'wait'); // 600 s
    assert.equal(feed(own(121)).action, 'busy');
    const foreign = (n: number) => Array.from({ length: n }, () => [{ kind: 'jobs', jobIds: ['7'] } as RunnerJobsObservation, 5] as [RunnerJobsObservation, number]);
    assert.equal(feed(foreign(180)).action, 'wait'); // 900 s
    const busy = feed(foreign(181));
    assert.equal(busy.action, 'busy');
    assert.match((busy as { detail: string }).detail, /job 7/);
    assert.equal(feed([...own(3), [empty, 5], [empty, 5]]).action, 'idle');
  });

  it('counts a session fresh only when its epoch exceeds the reset watermark', () => {
    assert.equal(isSessionFresh(11, 10), true);
    assert.equal(isSessionFresh(10, 10), false);
    assert.equal(isSessionFresh(3, 10), false);
    assert.equal(isSessionFresh(null, 10), false);
  });

  it('requires a fresh session for reboot resets and for auto when the session dropped', () => {
    assert.equal(resetNeedsFreshSession('reboot', false), true);
    assert.equal(resetNeedsFreshSession('in_place', true), false);
    assert.equal(resetNeedsFreshSession('auto', false), false);
    assert.equal(resetNeedsFreshSession('auto', true), true);
  });

  it('backs off exponentially up to a cap', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffSeconds(a, 2, 30)), [2, 4, 8, 16, 30, 30]);
  });

  it('parses finalize statuses with GitLab failed as failure', () => {
    assert.equal(parseFinalizeStatus('success'), 'success');
    assert.equal(parseFinalizeStatus('failed'), 'failure');
    assert.equal(parseFinalizeStatus('canceled'), 'canceled');
    assert.equal(parseFinalizeStatus('cancelled'), null);
    assert.equal(parseFinalizeStatus('bogus'), null);
    assert.equal(parseFinalizeStatus(undefined), null);
  });
});

describe('checkpoint names', () => {
  it('mints valid Proxmox snapshot names', () => {
    const name = mintCheckpointName('12345', 1739451000, 'a1b2c3d4');
    assert.equal(name, 'job-12345-1739451000-a1b2c3d4');
    assert.equal(isValidCheckpointName(name), true);
    assert.equal(jobIdOfName(name), '12345');
  });

  it('fits the longest allowed job id in 40 characters and refuses a longer one', () => {
    const longest = '9'.repeat(MAX_JOB_ID_LENGTH);
    assert.equal(mintCheckpointName(longest, 1739451000, 'a1b2c3d4').length, 40);
    const tooLong = checkJobIdFitsName('9'.repeat(MAX_JOB_ID_LENGTH + 1));
    assert.equal(tooLong.ok, false);
  });

  it('refuses job ids that cannot form a snapshot name', () => {
    for (const bad of ['', 'a.b', 'ABC', 'job 1', 'ü']) assert.equal(checkJobIdFitsName(bad).ok, false, bad);
    for (const good of ['1', 'abc_def-9']) assert.equal(checkJobIdFitsName(good).ok, true, good);
  });

  it('rejects names that are not ours', () => {
    for (const bad of ['current', 'job-1-2-zzzzzzzz', 'Job-1-1739451000-a1b2c3d4', `job-${'1'.repeat(30)}-1739451000-a1b2c3d4`]) {
      assert.equal(isValidCheckpointName(bad), false, bad);
    }
  });
});

describe('readLostReset', () => {
  it('takes a lost session for the reboot only from a legacy agent in reboot mode whose host closed it', () => {
    assert.equal(readLostReset({ legacy: true, closedByHost: true }, 'reboot'), 'rebooted');
    assert.equal(readLostReset({ legacy: true, closedByHost: false }, 'reboot'), 'outcome_unknown', 'our instance drained or died');
    assert.equal(readLostReset({ legacy: true, closedByHost: true }, 'auto'), 'outcome_unknown');
    assert.equal(readLostReset({ legacy: true, closedByHost: true }, 'in_place'), 'outcome_unknown');
    assert.equal(readLostReset({ legacy: false, closedByHost: true }, 'reboot'), 'outcome_unknown', 'current agents report boot ids instead');
  });
});

describe('boundedPollSeconds', () => {
  it('keeps the configured interval unless the budget would need more than MAX_POLLS_PER_WAIT polls', () => {
    assert.equal(boundedPollSeconds(5, 120), 5);
    assert.equal(boundedPollSeconds(1, 86_400), 432);
    assert.ok(86_400 / boundedPollSeconds(1, 86_400) <= MAX_POLLS_PER_WAIT);
  });
});
