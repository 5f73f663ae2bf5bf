import { test } from 'vitest';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import {
  parseGithubWorkflowJobEvent,
  parseGitlabJobEvent,
  verifyGithubSignature,
  verifyGitlabToken,
} from '../../src/integrations/gitlab/webhooks.js';

const uuid = '6c8a0d0e-2f39-4b57-9d2a-6d1f1a9e0c11';
const gitlabHeaders = { 'x-gitlab-event': 'Job Hook', 'x-gitlab-token': 's3cret', 'x-gitlab-event-uuid': uuid };

function jobHook(overrides: Record<string, unknown> = {}) {
  return {
    object_kind: 'build',
    build_id: 12345,
    build_status: 'success',
    build_name: 'e2e',
    project_id: 42,
    runner: { id: 7, description: 'vm-7', active: true, is_shared: false, runner_type: 'project_type', tags: [] },
    ...overrides,
  };
}

// --- GitLab token ---

test('verifyGitlabToken accepts the configured secret', () => {
  assert.deepEqual(verifyGitlabToken('s3cret', 's3cret'), { ok: true });
});

test('verifyGitlabToken rejects a wrong token, including prefixes, longer values and case changes', () => {
  for (const wrong of ['s3cre', 's3cret!', 'S3CRET', 'x', 's3cret '.repeat(40)]) {
    assert.deepEqual(verifyGitlabToken('s3cret', wrong), { ok: false, reason: 'mismatch' }, wrong);
  }
});

test('verifyGitlabToken rejects a missing or empty header when a secret is configured', () => {
  assert.deepEqual(verifyGitlabToken('s3cret', undefined), { ok: false, reason: 'missing' });
  assert.deepEqual(verifyGitlabToken('s3cret', ''), { ok: false, reason: 'missing' });
});

test('verifyGitlabToken fails closed without a configured secret (the old controller accepted anything)', () => {
  assert.deepEqual(verifyGitlabToken(undefined, undefined), { ok: false, reason: 'not_configured' });
  assert.deepEqual(verifyGitlabToken('', ''), { ok: false, reason: 'not_configured' });
  assert.deepEqual(verifyGitlabToken(undefined, 'anything'), { ok: false, reason: 'not_configured' });
});

// --- GitLab job events ---

for (const [buildStatus, status] of [['success', 'success'], ['failed', 'failure'], ['canceled', 'canceled'], ['skipped', 'failure']] as const) {
  test(`a ${buildStatus} job event finalizes with ${status}`, () => {
    assert.deepEqual(parseGitlabJobEvent(gitlabHeaders, jobHook({ build_status: buildStatus })), {
      kind: 'finalize',
      eventId: uuid,
      jobId: '12345',
      projectId: '42',
      status,
      runnerId: 7,
      providerStatus: buildStatus,
    });
  });
}

for (const buildStatus of ['created', 'waiting_for_resource', 'preparing', 'pending', 'running', 'manual', 'scheduled', 'canceling', 'some_future_status']) {
  test(`a ${buildStatus} job event is ignored as non-terminal`, () => {
    const result = parseGitlabJobEvent(gitlabHeaders, jobHook({ build_status: buildStatus }));
    assert.equal(result.kind, 'ignore');
    assert.match((result as { reason: string }).reason, /not terminal/);
  });
}

test('the raw body (Buffer or string) parses the same as an already parsed object', () => {
  const body = jobHook({ build_status: 'failed' });
  const fromObject = parseGitlabJobEvent(gitlabHeaders, body);
  assert.deepEqual(parseGitlabJobEvent(gitlabHeaders, Buffer.from(JSON.stringify(body))), fromObject);
  assert.deepEqual(parseGitlabJobEvent(gitlabHeaders, JSON.stringify(body)), fromObject);
});

test('without X-Gitlab-Event-UUID the event id is the sha256 of the raw body, stable across redeliveries', () => {
  const raw = Buffer.from(JSON.stringify(jobHook()));
  const headers = { 'x-gitlab-event': 'Job Hook' };
  const first = parseGitlabJobEvent(headers, raw);
  const again = parseGitlabJobEvent({ ...headers, 'x-gitlab-event-uuid': '   ' }, raw);
  assert.equal(first.kind, 'finalize');
  const expected = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
  assert.equal((first as { eventId: string }).eventId, expected);
  assert.equal((again as { eventId: string }).eventId, expected);
  const other = parseGitlabJobEvent(headers, Buffer.from(JSON.stringify(jobHook({ build_status: 'failed' }))));
  assert.notEqual((other as { eventId: string }).eventId, expected);
});

test('header names are matched case-insensitively and array values use the first', () => {
  const result = parseGitlabJobEvent({ 'X-Gitlab-Event-UUID': [uuid, 'other'] }, jobHook());
  assert.equal((result as { eventId: string }).eventId, uuid);
});

test('a job event before runner assignment (runner null) finalizes without a runner id', () => {
  const result = parseGitlabJobEvent(gitlabHeaders, jobHook({ runner: null, build_status: 'canceled' }));
  assert.equal(result.kind, 'finalize');
  assert.equal('runnerId' in result, false);
});

test('the project id falls back to project.id, and string ids are accepted', () => {
  const result = parseGitlabJobEvent(gitlabHeaders, jobHook({ project_id: undefined, project: { id: 9 }, build_id: '777' }));
  assert.equal(result.kind, 'finalize');
  assert.equal((result as { projectId: string }).projectId, '9');
  assert.equal((result as { jobId: string }).jobId, '777');
});

test('other kinds, missing fields and malformed bodies are ignored with a reason, never thrown', () => {
  const cases: Array<[unknown, RegExp]> = [
    [jobHook({ object_kind: 'pipeline' }), /not a job event/],
    [jobHook({ object_kind: undefined }), /not a job event/],
    [jobHook({ build_id: undefined }), /build_id/],
    [jobHook({ build_id: 0 }), /build_id/],
    [jobHook({ build_id: -3 }), /build_id/],
    [jobHook({ build_id: 1.5 }), /build_id/],
    [jobHook({ build_id: '12; DROP' }), /build_id/],
    [jobHook({ build_status: undefined }), /build_status/],
    [jobHook({ build_status: '' }), /build_status/],
    [jobHook({ build_status: 7 }), /build_status/],
    ['{not json', /not valid JSON/],
    [Buffer.from('[1,2]'), /not a JSON object/],
    ['null', /not a JSON object/],
    [null, /not a JSON object/],
    [undefined, /not a JSON object/],
    [42, /not a JSON object/],
  ];
  for (const [body, reason] of cases) {
    const result = parseGitlabJobEvent(gitlabHeaders, body);
    assert.equal(result.kind, 'ignore', JSON.stringify(body));
    assert.match((result as { reason: string }).reason, reason, JSON.stringify(body));
  }
});

test('a malformed runner or project id is dropped, the event still finalizes', () => {
  const result = parseGitlabJobEvent(gitlabHeaders, jobHook({ runner: { id: 'abc' }, project_id: 'x/y' }));
  assert.equal(result.kind, 'finalize');
  assert.equal('runnerId' in result, false);
  assert.equal('projectId' in result, false);
});

// --- GitHub ---

const githubSecret = 'gh-secret';
const sign = (body: Buffer, secret = githubSecret) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

test('verifyGithubSignature accepts the HMAC of the raw body', () => {
  const body = Buffer.from('{"action":"completed"}');
  assert.deepEqual(verifyGithubSignature(githubSecret, body, sign(body)), { ok: true });
});

test('verifyGithubSignature rejects a wrong secret, a changed body, a bad format and a missing header', () => {
  const body = Buffer.from('{"action":"completed"}');
  assert.deepEqual(verifyGithubSignature(githubSecret, body, sign(body, 'other')), { ok: false, reason: 'mismatch' });
  assert.deepEqual(verifyGithubSignature(githubSecret, Buffer.from('{"action":"completed" }'), sign(body)), { ok: false, reason: 'mismatch' });
  assert.deepEqual(verifyGithubSignature(githubSecret, body, 'sha256=invalidsignature'), { ok: false, reason: 'mismatch' });
  assert.deepEqual(verifyGithubSignature(githubSecret, body, sign(body).slice('sha256='.length)), { ok: false, reason: 'mismatch' });
  assert.deepEqual(verifyGithubSignature(githubSecret, body, undefined), { ok: false, reason: 'missing' });
});

test('verifyGithubSignature fails closed without a secret', () => {
  const body = Buffer.from('{}');
  assert.deepEqual(verifyGithubSignature(undefined, body, sign(body, '')), { ok: false, reason: 'not_configured' });
  assert.deepEqual(verifyGithubSignature('', body, sign(body, '')), { ok: false, reason: 'not_configured' });
});

const githubHeaders = { 'x-github-event': 'workflow_job', 'x-github-delivery': 'd-123' };
const workflowJob = (overrides: Record<string, unknown> = {}, job: Record<string, unknown> = {}) => ({
  action: 'completed',
  workflow_job: { id: 987654, conclusion: 'success', runner_id: 3, ...job },
  repository: { full_name: 'acme/app' },
  ...overrides,
});

for (const [conclusion, status] of [['success', 'success'], ['failure', 'failure'], ['cancelled', 'canceled'], ['timed_out', 'failure']] as const) {
  test(`a workflow_job completed with ${conclusion} finalizes with ${status}`, () => {
    assert.deepEqual(parseGithubWorkflowJobEvent(githubHeaders, workflowJob({}, { conclusion })), {
      kind: 'finalize',
      eventId: 'd-123',
      jobId: '987654',
      projectId: 'acme/app',
      status,
      runnerId: 3,
      providerStatus: conclusion,
    });
  });
}

test('GitHub events that do not finalize are ignored with a reason', () => {
  const cases: Array<[Record<string, string>, unknown, RegExp]> = [
    [{ 'x-github-event': 'check_run' }, workflowJob(), /not a workflow_job event/],
    [{}, workflowJob(), /not a workflow_job event/],
    [githubHeaders, workflowJob({ action: 'in_progress' }), /not completed/],
    [githubHeaders, workflowJob({ action: 'queued' }), /not completed/],
    ...['skipped', 'neutral', 'action_required', 'stale', 'constructor'].map(
      (c) => [githubHeaders, workflowJob({}, { conclusion: c }), /does not finalize/] as [Record<string, string>, unknown, RegExp],
    ),
    [githubHeaders, workflowJob({}, { conclusion: null }), /conclusion is missing/],
    [githubHeaders, workflowJob({}, { id: undefined }), /workflow_job.id/],
    [githubHeaders, workflowJob({ workflow_job: 'x' }), /workflow_job is missing/],
    [githubHeaders, '{oops', /not valid JSON/],
  ];
  for (const [headers, body, reason] of cases) {
    const result = parseGithubWorkflowJobEvent(headers, body);
    assert.equal(result.kind, 'ignore', JSON.stringify(body));
    assert.match((result as { reason: string }).reason, reason);
  }
});

test('without X-GitHub-Delivery the GitHub event id is the body digest', () => {
  const raw = Buffer.from(JSON.stringify(workflowJob()));
  const result = parseGithubWorkflowJobEvent({ 'x-github-event': 'workflow_job' }, raw);
  assert.equal((result as { eventId: string }).eventId, `sha256:${createHash('sha256').update(raw).digest('hex')}`);
});
