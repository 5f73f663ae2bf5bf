import { test } from 'vitest';
import assert from 'node:assert/strict';
import { E2epoolError } from '../../src/domain/errors.js';
import { GitlabClient } from '../../src/integrations/gitlab/client.js';

// Nothing listens on this address: each case must fail on validation before any request.
const base = { baseUrl: 'http://127.0.0.1:9', token: 'glpat-secret-value', timeoutMs: 1000 };

function assertCode(fn: () => unknown, code: string, pattern?: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof E2epoolError);
    assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /glpat-secret-value/);
    return true;
  });
}

test('a client needs an http(s) base URL without credentials, a token and a positive timeout', () => {
  assertCode(() => new GitlabClient({ ...base, baseUrl: 'not a url' }), 'not_configured', /not a valid URL/);
  assertCode(() => new GitlabClient({ ...base, baseUrl: 'ftp://gitlab.example.com' }), 'not_configured', /http or https/);
  assertCode(() => new GitlabClient({ ...base, baseUrl: 'https://user:glpat-secret-value@gitlab.example.com' }), 'not_configured', /credentials/);
  assertCode(() => new GitlabClient({ ...base, baseUrl: 'https://gitlab.example.com/?private_token=x' }), 'not_configured');
  assertCode(() => new GitlabClient({ ...base, token: '' }), 'not_configured', /token is not configured/);
  assertCode(() => new GitlabClient({ ...base, timeoutMs: 0 }), 'validation', /timeout/);
  assertCode(() => new GitlabClient({ ...base, timeoutMs: Number.NaN }), 'validation', /timeout/);
});

async function assertRejectsCode(promise: Promise<unknown>, code: string, pattern: RegExp) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof E2epoolError);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

test('ids are validated before any request', async () => {
  const client = new GitlabClient(base);
  await assertRejectsCode(client.getJob(5, 'abc'), 'validation', /job id must be a positive integer/);
  await assertRejectsCode(client.getJob(5, 0), 'validation', /job id/);
  await assertRejectsCode(client.getJob(5, '12/../1'), 'validation', /job id/);
  await assertRejectsCode(client.getJob('', 1), 'validation', /project id/);
  await assertRejectsCode(client.getJob(-1, 1), 'validation', /project id/);
  await assertRejectsCode(client.getRunner(1.5), 'validation', /runner id/);
  await assertRejectsCode(client.setRunnerPaused('7x', true), 'validation', /runner id/);
  await assertRejectsCode(client.setRunnerPaused(7, 'yes' as unknown as boolean), 'validation', /paused must be a boolean/);
  await assertRejectsCode(client.listRunnerJobs(7, 'pending' as never), 'validation', /status filter/);
});
