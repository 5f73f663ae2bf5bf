// CI activities against the GitLab simulator with runners from the registry (PGlite): pause and
// unpause, running jobs (errors are "unknown"), job observations for every outcome, and the
// heartbeating watch that survives GitLab failures.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, beforeEach, describe, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledFailure } from '@temporalio/common';
import { createCiActivities } from '../../activities/ci.js';
import { withFailureMapping } from '../../activities/failure-mapping.js';
import type { CiActivities } from '../../activities/types.js';
import type { RunnerRegistry } from '../../src/inventory/registry.js';
import { startGitlabSimulator, type GitlabSimulator } from '../../sim/gitlab/index.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { failureOf, newRegistry, runActivity } from '../helpers/activities-harness.js';
import { eventually } from '../helpers/eventually.js';
import { captureLogs } from '../helpers/log-capture.js';

const GLOBAL_TOKEN = 'glpat-global-Secret1';
const RUNNER_TOKEN = 'glpat-runner-Secret2';

let sim: GitlabSimulator;
let other: GitlabSimulator;
let database: TestDatabase;
let registry: RunnerRegistry;
let ci: CiActivities;
const log = captureLogs();
let projectId: number;

function activities(config: { gitlabUrl?: string; gitlabToken?: string } = { gitlabUrl: sim.url, gitlabToken: GLOBAL_TOKEN }): CiActivities {
  return withFailureMapping(createCiActivities({ registry, logger: log.logger, config: { httpTimeoutMs: 500, ...config } }) as any) as unknown as CiActivities;
}

const ref = (runnerId: string) => ({ runnerId, name: 'job-1-1700000000-abcd0001' });

beforeAll(async () => {
  sim = await startGitlabSimulator({ tokens: [GLOBAL_TOKEN], seed: { runners: [{ id: 7, contacted: true }, { id: 8, contacted: true }] } });
  // A second GitLab only the per-runner override points at.
  other = await startGitlabSimulator({ tokens: [RUNNER_TOKEN] });
  database = await createPgliteDatabase();
  registry = newRegistry(database.db);
  await registry.createRunner({ runner_id: 'gl-7', backend: 'bare_metal', reset_cmd: 'reset', gitlab_runner_id: 7 });
  await registry.createRunner({ runner_id: 'no-gitlab-id', backend: 'bare_metal', reset_cmd: 'reset' });
  await registry.createRunner({ runner_id: 'own-gitlab', backend: 'bare_metal', reset_cmd: 'reset', gitlab_runner_id: 3, gitlab_url: other.url, gitlab_token: RUNNER_TOKEN });
  await registry.createRunner({ runner_id: 'own-url-no-token', backend: 'bare_metal', reset_cmd: 'reset', gitlab_runner_id: 4, gitlab_url: other.url });
  other.api.addRunner({ id: 3, contacted: true });
  other.api.addRunner({ id: 4, contacted: true });
  projectId = sim.api.addProject({ path: 'grp/app' }).id;
  ci = activities();
});

afterAll(async () => {
  await sim?.stop();
  await other?.stop();
  await database?.drop();
});

beforeEach(() => {
  sim.api.clearFaults();
  sim.api.clearCalls();
  for (const id of [7, 8]) if (sim.api.getRunner(id).paused) sim.api.setRunnerPaused(id, false);
});

describe('pause and unpause', () => {
  it('pause sends paused=true, unpause paused=false, to the runner’s GitLab runner id', async () => {
    await runActivity(ci.pauseRunner, [ref('gl-7')]).result;
    assert.equal(sim.api.getRunner(7).paused, true);
    await runActivity(ci.unpauseRunner, [ref('gl-7')]).result;
    assert.equal(sim.api.getRunner(7).paused, false);
    const puts = sim.api.calls({ endpoint: 'updateRunner' });
    assert.deepEqual(puts.map((c) => c.body), [{ paused: true }, { paused: false }]);
    assert.ok(puts.every((c) => c.path === '/api/v4/runners/7' && c.authenticated));
  });

  it('a runner without gitlab_runner_id is a no-op', async () => {
    await runActivity(ci.pauseRunner, [ref('no-gitlab-id')]).result;
    await runActivity(ci.unpauseRunner, [ref('no-gitlab-id')]).result;
    assert.equal(sim.api.calls().length, 0);
  });

  it('the runner’s own gitlab_url and gitlab_token override the global ones', async () => {
    await runActivity(ci.pauseRunner, [ref('own-gitlab')]).result;
    assert.equal(other.api.getRunner(3).paused, true);
    assert.equal(sim.api.calls().length, 0);
    await runActivity(ci.unpauseRunner, [ref('own-gitlab')]).result;
  });

  it('a runner with its own gitlab_url and no gitlab_token never receives the global token', async () => {
    other.api.clearCalls();
    const f = await failureOf(runActivity(ci.pauseRunner, [ref('own-url-no-token')]).result);
    assert.equal(f.type, 'not_configured');
    assert.match(f.message, /own gitlab_url .* but no gitlab_token/);
    assert.equal(other.api.calls().length, 0, 'no request reached the other GitLab');
    assert.equal(other.api.getRunner(4).paused, false);
  });

  it('GitLab failures are thrown with their code: 5xx retried, 401 not; no token in the failure or logs', async () => {
    sim.api.injectFault('updateRunner', { kind: 'status', status: 502, times: 1 });
    let f = await failureOf(runActivity(ci.pauseRunner, [ref('gl-7')]).result);
    assert.equal(f.type, 'gitlab_unavailable');
    assert.equal(f.nonRetryable, false);
    sim.api.injectFault('updateRunner', { kind: 'status', status: 401, times: 1 });
    f = await failureOf(runActivity(ci.pauseRunner, [ref('gl-7')]).result);
    assert.equal(f.type, 'gitlab_auth');
    assert.equal(f.nonRetryable, true);
    f = await failureOf(runActivity(activities({}).pauseRunner, [ref('gl-7')]).result);
    assert.equal(f.type, 'not_configured');
    f = await failureOf(runActivity(ci.pauseRunner, [ref('ghost')]).result);
    assert.equal(f.type, 'runner_not_found');
    assert.equal(f.nonRetryable, true);
    assert.ok(!log.lines.some((l) => l.includes(GLOBAL_TOKEN) || l.includes(RUNNER_TOKEN)));
  });
});

describe('listRunningJobs', () => {
  it('lists the running job ids; any GitLab error is unknown, never an empty list', async () => {
    assert.deepEqual(await runActivity(ci.listRunningJobs, [ref('gl-7')]).result, { kind: 'jobs', jobIds: [] });
    const job = sim.api.createJob({ projectId, runnerId: 7, status: 'running' });
    sim.api.createJob({ projectId, runnerId: 8, status: 'running' });
    assert.deepEqual(await runActivity(ci.listRunningJobs, [ref('gl-7')]).result, { kind: 'jobs', jobIds: [String(job.id)] });
    for (const fault of [{ kind: 'status', status: 500 }, { kind: 'status', status: 403 }, { kind: 'disconnect' }, { kind: 'hang' }] as const) {
      sim.api.injectFault('listRunnerJobs', { ...fault, times: 1 });
      const seen = await runActivity(ci.listRunningJobs, [ref('gl-7')]).result;
      assert.equal(seen.kind, 'unknown', JSON.stringify(fault));
    }
    assert.equal((await runActivity(ci.listRunningJobs, [ref('no-gitlab-id')]).result).kind, 'unknown');
    sim.api.setJobStatus(job.id, 'success');
  });
});

describe('observeJob', () => {
  it('running, each terminal outcome, unknowable (404, no project id and not running) and error', async () => {
    const job = sim.api.createJob({ projectId, runnerId: 7, status: 'running' });
    const id = String(job.id);
    const observe = (extra: { projectId?: string; runnerId?: string } = {}) =>
      runActivity(ci.observeJob, [{ ...ref(extra.runnerId ?? 'gl-7'), jobId: id, ...(extra.projectId !== undefined ? { projectId: extra.projectId } : {}) }]).result;

    assert.deepEqual(await observe({ projectId: String(projectId) }), { kind: 'running' });
    // No project id: learned from the runner's running jobs.
    assert.deepEqual(await observe(), { kind: 'running' });
    assert.ok(sim.api.calls({ endpoint: 'getJob' }).some((c) => c.path === `/api/v4/projects/${projectId}/jobs/${id}`), 'the learned project was asked');
    for (const [status, outcome] of [['success', 'success'], ['failed', 'failure'], ['canceled', 'canceled'], ['skipped', 'failure']] as const) {
      sim.api.setJobStatus(job.id, status);
      assert.deepEqual(await observe({ projectId: String(projectId) }), { kind: 'terminal', outcome }, status);
    }
    // The job ended, so it is no longer among the runner's running jobs: without a project id it is unknowable.
    assert.equal((await observe()).kind, 'unknowable');
    assert.equal((await observe({ runnerId: 'no-gitlab-id' })).kind, 'unknowable');
    assert.equal((await runActivity(ci.observeJob, [{ ...ref('gl-7'), jobId: '999999', projectId: String(projectId) }]).result).kind, 'unknowable', 'GitLab 404');
    sim.api.injectFault('getJob', { kind: 'status', status: 503, times: 1 });
    const error = await observe({ projectId: String(projectId) });
    assert.equal(error.kind, 'error');
    sim.api.injectFault('listRunnerJobs', { kind: 'status', status: 500, times: 1 });
    assert.equal((await observe()).kind, 'error', 'learning the project failed: an error, not unknowable');
    sim.api.injectFault('getJob', { kind: 'status', status: 401, times: 1 });
    assert.equal((await observe({ projectId: String(projectId) })).kind, 'error');
  });
});

describe('watchJob', () => {
  it('polls until the job is terminal, heartbeating, and survives 5xx and dropped connections', async () => {
    const job = sim.api.createJob({ projectId, runnerId: 7, status: 'running' });
    sim.api.injectFault('getJob', { kind: 'status', status: 502, times: 2 });
    sim.api.injectFault('getJob', { kind: 'disconnect', times: 1 });
    const watch = runActivity(ci.watchJob, [{ ...ref('gl-7'), jobId: String(job.id), projectId: String(projectId), intervalSeconds: 0.02 }]);
    await eventually('two successful getJob calls', () => sim.api.calls({ endpoint: 'getJob' }).filter((c) => c.status === 200).length >= 2, { timeoutMs: 5000, intervalMs: 5 });
    assert.ok(watch.heartbeats.length >= 4, `a heartbeat per tick: ${watch.heartbeats.length}`);
    sim.api.setJobStatus(job.id, 'failed');
    assert.deepEqual(await watch.result, { outcome: 'failure' });
    assert.ok(log.lines.some((l) => l.includes('GitLab job poll failed')), 'errors are logged');
  });

  it('is cancellable while it sleeps between polls', async () => {
    const job = sim.api.createJob({ projectId, runnerId: 7, status: 'running' });
    const watch = runActivity(ci.watchJob, [{ ...ref('gl-7'), jobId: String(job.id), projectId: String(projectId), intervalSeconds: 30 }]);
    await eventually('a first heartbeat of watchJob', () => watch.heartbeats.length >= 1, { timeoutMs: 5000, intervalMs: 5 });
    await sleep(20);
    watch.env.cancel();
    await assert.rejects(watch.result, (err: unknown) => err instanceof CancelledFailure || (err as Error).name === 'CancelledFailure' || /cancel/i.test(String(err)));
    sim.api.setJobStatus(job.id, 'success');
  });
});
