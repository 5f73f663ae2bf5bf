// The simulated gitlab-runner loop: picks up jobs only when unpaused, one at a time, and keeps
// the runner online.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { GitlabClient } from '../../src/integrations/gitlab/client.js';
import { DEFAULT_SIM_TOKEN, startGitlabSimulator, startSimRunnerLoop, type SimJob, type SimJobResult } from '../../sim/gitlab/index.js';
import { eventually } from '../helpers/eventually.js';

/** Polls as the loops do: often, for up to 3 s. */
const polling = { timeoutMs: 3000, intervalMs: 5 };

test('the runner loop runs pending jobs one at a time, and a pause over the REST API stops pickups', async () => {
  const sim = await startGitlabSimulator({ seed: { projects: [{ id: 1 }], runners: [{ id: 7 }] } });
  const client = new GitlabClient({ baseUrl: sim.url, token: DEFAULT_SIM_TOKEN, timeoutMs: 500 });
  const results: Record<number, SimJobResult> = {};
  const started: number[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  let release: (() => void) | undefined;
  const loop = startSimRunnerLoop(sim.api, {
    runnerId: 7,
    pollIntervalMs: 10,
    runJob: async (job: SimJob) => {
      started.push(job.id);
      maxConcurrent = Math.max(maxConcurrent, ++concurrent);
      await new Promise<void>((resolve) => (release = resolve));
      concurrent--;
      return results[job.id] ?? 'success';
    },
  });
  try {
    const a = sim.api.createJob({ projectId: 1 });
    const b = sim.api.createJob({ projectId: 1 });
    results[b.id] = 'failed';
    await eventually('job a to start', () => started.length === 1, polling);
    assert.equal(loop.current?.id, a.id);
    assert.equal((await client.getRunner(7)).online, true, 'polling keeps the runner online');
    assert.deepEqual((await client.listRunnerJobs(7, 'running')).map((j) => j.id), [a.id]);
    await sleep(40);
    assert.equal(started.length, 1, 'concurrent = 1: b waits while a runs');

    await client.setRunnerPaused(7, true);
    release!();
    await eventually('job a to finish', () => sim.api.getJob(a.id).status === 'success', polling);
    await sleep(60);
    assert.equal(sim.api.getJob(b.id).status, 'pending', 'a paused runner picks up nothing');

    await client.setRunnerPaused(7, false);
    await eventually('job b to start', () => started.length === 2, polling);
    release!();
    await eventually('job b to fail', () => sim.api.getJob(b.id).status === 'failed', polling);
    assert.equal(sim.api.getJob(b.id).failureReason, 'script_failure');
    assert.equal(maxConcurrent, 1);
  } finally {
    await loop.stop();
    await sim.stop();
  }
});

test('a throwing job fails with runner_system_failure, and an externally canceled job stays canceled', async () => {
  const sim = await startGitlabSimulator({ seed: { projects: [{ id: 1 }], runners: [{ id: 3 }] } });
  const errors: unknown[] = [];
  let cancelNext = false;
  const loop = startSimRunnerLoop(sim.api, {
    runnerId: 3,
    pollIntervalMs: 5,
    onError: (err) => errors.push(err),
    runJob: async (job) => {
      if (cancelNext) {
        sim.api.setJobStatus(job.id, 'canceled');
        return 'success';
      }
      throw new Error('vm exploded');
    },
  });
  try {
    const broken = sim.api.createJob({ projectId: 1 });
    await eventually('the broken job to fail', () => sim.api.getJob(broken.id).status === 'failed', polling);
    assert.equal(sim.api.getJob(broken.id).failureReason, 'runner_system_failure');
    assert.equal(errors.length, 1);
    cancelNext = true;
    const canceled = sim.api.createJob({ projectId: 1 });
    await eventually('the job to be picked up', () => sim.api.getJob(canceled.id).status !== 'pending', polling);
    await sleep(30);
    assert.equal(sim.api.getJob(canceled.id).status, 'canceled');
  } finally {
    await loop.stop();
    await sim.stop();
  }
});
