import { test } from 'vitest';
import assert from 'node:assert/strict';
import { GITLAB_JOB_STATUSES, isGitlabJobStatus, mapGitlabJobStatus } from '../../src/integrations/gitlab/job-status.js';

// Every documented status with the meaning the controller must give it (integrations.md §2).
const expected = {
  created: { terminal: false },
  waiting_for_resource: { terminal: false },
  preparing: { terminal: false },
  pending: { terminal: false },
  running: { terminal: false },
  manual: { terminal: false },
  scheduled: { terminal: false },
  canceling: { terminal: false },
  success: { terminal: true, outcome: 'success' },
  failed: { terminal: true, outcome: 'failure' },
  canceled: { terminal: true, outcome: 'canceled' },
  skipped: { terminal: true, outcome: 'failure' },
} as const;

test('the status list is exactly GitLab\'s documented statuses plus canceling', () => {
  assert.deepEqual([...GITLAB_JOB_STATUSES].sort(), Object.keys(expected).sort());
});

for (const [status, meaning] of Object.entries(expected)) {
  test(`${status} maps to ${JSON.stringify(meaning)}`, () => {
    assert.deepEqual(mapGitlabJobStatus(status), meaning);
    assert.equal(isGitlabJobStatus(status), true);
  });
}

test('unknown, empty and non-string statuses are non-terminal', () => {
  for (const value of ['archived', '', 'SUCCESS', 'Success', ' success', 'failed ', undefined, null, 42, {}, ['success'], 'constructor', '__proto__', 'toString']) {
    assert.deepEqual(mapGitlabJobStatus(value), { terminal: false }, `status ${JSON.stringify(value)}`);
    assert.equal(isGitlabJobStatus(value), false, `isGitlabJobStatus(${JSON.stringify(value)})`);
  }
});

test('only the four completed statuses are terminal, and each terminal one has an outcome', () => {
  const terminal = GITLAB_JOB_STATUSES.filter((s) => mapGitlabJobStatus(s).terminal);
  assert.deepEqual(terminal.sort(), ['canceled', 'failed', 'skipped', 'success']);
  for (const s of terminal) assert.ok('outcome' in mapGitlabJobStatus(s));
});
