// Demo CI traffic for `e2epool dev`: jobs are queued on the GitLab simulator for each demo runner,
// and one gitlab-runner stand-in per runner picks them up while the runner is not paused. A job does
// what a real one does on the runner host: `e2epool create` through the agent's socket (as a
// pre_build_script would), some work in the workspace, then it ends as success or failure at
// random. Ending the job makes the simulator send the job webhook that finalizes the checkpoint;
// some jobs also call `e2epool finalize` themselves, so two finalize sources race.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { spawnInOwnGroup } from '../../temporal/process-group.js';
import { startSimRunnerLoop, type GitlabSimulatorApi, type SimJob, type SimJobResult, type SimRunnerLoop } from '../../sim/gitlab/index.js';
import { sleepUnlessAborted } from '../util/sleep.js';

export interface DemoJobRunner {
  runnerId: string;
  gitlabRunnerId: number;
  socketPath: string;
  workspaceDir: string;
}

export interface DemoJobsOptions {
  gitlab: GitlabSimulatorApi;
  projectId: number;
  runners: DemoJobRunner[];
  /** `bin/e2epool.js`. */
  cliEntry: string;
  logger: Logger;
  /** First job id to use (kept across `--keep-state` runs so ids never repeat). */
  firstJobId?: number;
  onJobCreated?: (jobId: number) => void;
  /** How often each idle runner gets a new pending job when it has none. */
  enqueueIntervalMs?: number;
  /** gitlab-runner's check interval. */
  pollIntervalMs?: number;
  /** A job "runs" for a random time in this range. */
  jobDurationMs?: [number, number];
  failureRate?: number;
  /** Share of jobs that also call `e2epool finalize` themselves. */
  jobFinalizeRate?: number;
  /**
   * Outcome of each runner's first job, by runner position (default: first success, then failures,
   * so the first minute shows the cleanup path and both kinds of reset). Later jobs are random.
   */
  firstOutcomes?: SimJobResult[];
  createAttempts?: number;
  createRetryDelayMs?: number;
  random?: () => number;
}

export interface DemoJobStats {
  queued: number;
  started: number;
  checkpoints: number;
  succeeded: number;
  failed: number;
  createFailures: number;
  jobFinalizes: number;
}

export interface DemoJobs {
  stats(): DemoJobStats;
  /** Synchronous: no new job is queued or started from now on. */
  beginStop(): void;
  stop(): Promise<void>;
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one `e2epool` CLI verb in its own process group; an abort stops the group. */
async function runCli(cliEntry: string, args: string[], signal: AbortSignal): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('E2EPOOL_')) env[key] = value;
  const group = spawnInOwnGroup(process.execPath, [cliEntry, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  group.child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  group.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const onAbort = () => void group.stop({ timeoutMs: 2_000 });
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const { code } = await group.exited;
    return { code, stdout: stdout.trim(), stderr: stderr.trim() };
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}


const firstLine = (text: string) => text.split('\n').find((l) => l.trim())?.slice(0, 300) ?? '';

export function startDemoJobs(opts: DemoJobsOptions): DemoJobs {
  const { gitlab, logger } = opts;
  const random = opts.random ?? Math.random;
  const [minMs, maxMs] = opts.jobDurationMs ?? [3_000, 8_000];
  const failureRate = opts.failureRate ?? 0.4;
  const jobFinalizeRate = opts.jobFinalizeRate ?? 0.3;
  const firstOutcomes = opts.firstOutcomes ?? ['success', 'failed', 'failed'];
  const finishedOnce = new Set<string>();
  const createAttempts = opts.createAttempts ?? 6;
  const createRetryDelayMs = opts.createRetryDelayMs ?? 3_000;
  const abort = new AbortController();
  const stats: DemoJobStats = { queued: 0, started: 0, checkpoints: 0, succeeded: 0, failed: 0, createFailures: 0, jobFinalizes: 0 };
  const racing = new Set<Promise<void>>();
  let nextJobId = opts.firstJobId ?? 1;
  const lastQueued = new Map<number, number>();

  // One pending job per runner at most: runners that are paused (being reset) keep theirs queued.
  const enqueue = () => {
    if (abort.signal.aborted) return;
    for (const runner of opts.runners) {
      const last = lastQueued.get(runner.gitlabRunnerId);
      if (last !== undefined && gitlab.getJob(last).status === 'pending') continue;
      const job = gitlab.createJob({ id: nextJobId++, projectId: opts.projectId, runnerId: runner.gitlabRunnerId, name: 'e2e-tests', stage: 'test' });
      lastQueued.set(runner.gitlabRunnerId, job.id);
      stats.queued += 1;
      opts.onJobCreated?.(job.id);
    }
  };

  async function createCheckpoint(runner: DemoJobRunner, job: SimJob, signal: AbortSignal): Promise<string> {
    const args = ['create', '--job-id', String(job.id), '--project-id', String(opts.projectId), '--socket', runner.socketPath];
    let last = '';
    for (let attempt = 1; attempt <= createAttempts && !signal.aborted; attempt++) {
      const result = await runCli(opts.cliEntry, args, signal);
      if (result.code === 0 && result.stdout) return firstLine(result.stdout);
      last = firstLine(result.stderr) || `exit code ${result.code}`;
      // A cooldown (429), an agent that is reconnecting (exit 2): a pre_build_script would retry.
      if (attempt < createAttempts && !signal.aborted) {
        logger.info({ runnerId: runner.runnerId, jobId: job.id, attempt, error: last }, 'demo job: create did not succeed yet; retrying');
        await sleepUnlessAborted(createRetryDelayMs, signal);
      }
    }
    throw new Error(`e2epool create failed: ${last}`);
  }

  async function finalizeFromJob(runner: DemoJobRunner, checkpoint: string, result: SimJobResult): Promise<void> {
    const status = result === 'success' ? 'success' : 'failure';
    const outcome = await runCli(opts.cliEntry, ['finalize', '--checkpoint', checkpoint, '--status', status, '--socket', runner.socketPath], abort.signal);
    if (outcome.code === 0) logger.info({ runnerId: runner.runnerId, checkpoint, answer: firstLine(outcome.stdout) }, 'demo job: e2epool finalize');
    else if (!abort.signal.aborted) logger.warn({ runnerId: runner.runnerId, checkpoint, error: firstLine(outcome.stderr) }, 'demo job: e2epool finalize failed');
  }

  async function runJob(runner: DemoJobRunner, job: SimJob, loopSignal: AbortSignal): Promise<SimJobResult> {
    // Our own stop (a signal) ends the job at once, before the runner loop is stopped.
    const signal = AbortSignal.any([loopSignal, abort.signal]);
    if (signal.aborted) return 'canceled';
    stats.started += 1;
    let checkpoint: string;
    try {
      checkpoint = await createCheckpoint(runner, job, signal);
    } catch (err) {
      stats.createFailures += 1;
      if (!signal.aborted) logger.warn({ runnerId: runner.runnerId, jobId: job.id, error: (err as Error).message }, 'demo job: no checkpoint; the job fails');
      throw err;
    }
    stats.checkpoints += 1;
    const durationMs = Math.round(minMs + random() * Math.max(0, maxMs - minMs));
    logger.info({ runnerId: runner.runnerId, jobId: job.id, checkpoint, seconds: durationMs / 1000 }, 'demo job: checkpoint created; running tests');
    // What the tests leave behind: cleanup or the reset must remove it.
    await writeFile(path.join(runner.workspaceDir, `job-${job.id}.log`), `job ${job.id} on ${runner.runnerId}\n`).catch(() => undefined);
    await sleepUnlessAborted(durationMs, signal);
    if (signal.aborted) return 'canceled';
    const position = opts.runners.indexOf(runner);
    const first = finishedOnce.has(runner.runnerId) ? undefined : firstOutcomes[position % Math.max(1, firstOutcomes.length)];
    finishedOnce.add(runner.runnerId);
    const result: SimJobResult = first ?? (random() < failureRate ? 'failed' : 'success');
    if (result === 'success') stats.succeeded += 1;
    else stats.failed += 1;
    const alsoFinalize = random() < jobFinalizeRate;
    logger.info({ runnerId: runner.runnerId, jobId: job.id, checkpoint, result, jobFinalize: alsoFinalize }, 'demo job: finished');
    if (alsoFinalize) {
      // Not awaited: the job's finalize races the webhook the simulator sends when the job ends.
      stats.jobFinalizes += 1;
      const race = finalizeFromJob(runner, checkpoint, result).catch((err: unknown) => logger.warn({ err }, 'demo job: finalize error'));
      racing.add(race);
      void race.finally(() => racing.delete(race));
    }
    return result;
  }

  const loops: SimRunnerLoop[] = [];
  enqueue();
  const enqueueTimer = setInterval(enqueue, opts.enqueueIntervalMs ?? 2_000);
  for (const runner of opts.runners) {
    loops.push(
      startSimRunnerLoop(gitlab, {
        runnerId: runner.gitlabRunnerId,
        pollIntervalMs: opts.pollIntervalMs ?? 2_000,
        runJob: (job, signal) => runJob(runner, job, signal),
        onError: (err) => {
          if (!abort.signal.aborted) logger.debug({ err, runnerId: runner.runnerId }, 'demo runner loop error');
        },
      }),
    );
  }

  let stopping: Promise<void> | undefined;
  const beginStop = () => {
    abort.abort();
    clearInterval(enqueueTimer);
  };
  return {
    stats: () => ({ ...stats }),
    beginStop,
    stop() {
      stopping ??= (async () => {
        beginStop();
        await Promise.all(loops.map((l) => l.stop()));
        await Promise.all([...racing]);
      })();
      return stopping;
    },
  };
}
