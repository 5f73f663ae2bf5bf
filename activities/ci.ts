// CI activities against GitLab: pause and unpause the runner, list its running jobs, look at the
// checkpoint's job at the TTL, and watch the job until it ends. A GitLab error is never read as
// "idle" or "finished": listings answer "unknown", observations answer "error".
import { Context } from '@temporalio/activity';
import { gitlabCredentialsFor } from '../src/integrations/transport-policy.js';
import { E2epoolError } from '../src/domain/errors.js';
import type { JobObservation } from '../src/domain/decisions.js';
import type { Logger } from '../src/logger.js';
import type { Runner, RunnerRegistry } from '../src/inventory/registry.js';
import { GitlabClient } from '../src/integrations/gitlab/client.js';
import { GitlabApiError } from '../src/integrations/gitlab/errors.js';
import { mapGitlabJobStatus } from '../src/integrations/gitlab/job-status.js';
import type { CiActivities } from './types.js';

export interface CiDeps {
  registry: Pick<RunnerRegistry, 'getRunner'>;
  config: {
    /** E2EPOOL_GITLAB_URL; a runner's gitlab_url overrides it. */
    gitlabUrl?: string;
    /** E2EPOOL_GITLAB_TOKEN; a runner's gitlab_token overrides it. */
    gitlabToken?: string;
    httpTimeoutMs: number;
  };
  logger: Logger;
}

/** A short, secret-free description of a failure. */
function describe(err: unknown): string {
  if (err instanceof E2epoolError) return `${err.code}: ${err.detail}`;
  return err instanceof Error ? err.message : String(err);
}

function isNotFound(err: unknown): boolean {
  return err instanceof GitlabApiError && err.code === 'gitlab_not_found';
}

export function createCiActivities(deps: CiDeps): CiActivities {
  const { registry, logger } = deps;

  async function loadRunner(runnerId: string): Promise<Runner> {
    const runner = await registry.getRunner(runnerId);
    if (!runner) throw new E2epoolError('runner_not_found', `Runner '${runnerId}' is not registered or not active`);
    return runner;
  }

  /** GitLab client with the runner's URL and token, else the global ones. */
  function gitlabFor(runner: Runner): GitlabClient {
    const { baseUrl, token } = gitlabCredentialsFor(
      { runnerId: runner.runnerId, gitlabUrl: runner.options.gitlabUrl, gitlabToken: runner.options.gitlabToken, allowInsecureTransport: runner.options.allowInsecureTransport },
      { url: deps.config.gitlabUrl, token: deps.config.gitlabToken },
    );
    return new GitlabClient({ baseUrl, token, timeoutMs: deps.config.httpTimeoutMs });
  }

  async function setPaused(runnerId: string, checkpoint: string, paused: boolean): Promise<void> {
    const runner = await loadRunner(runnerId);
    const word = paused ? 'pause' : 'unpause';
    if (runner.gitlabRunnerId === null) {
      logger.info({ runnerId, checkpoint }, `runner has no gitlab_runner_id: nothing to ${word} in GitLab`);
      return;
    }
    await gitlabFor(runner).setRunnerPaused(runner.gitlabRunnerId, paused);
    logger.info({ runnerId, checkpoint, workflowId: checkpoint, gitlabRunnerId: runner.gitlabRunnerId }, `GitLab runner ${paused ? 'paused' : 'unpaused'}`);
  }

  return {
    pauseRunner: ({ runnerId, name }) => setPaused(runnerId, name, true),
    unpauseRunner: ({ runnerId, name }) => setPaused(runnerId, name, false),

    async listRunningJobs({ runnerId, name }) {
      const runner = await loadRunner(runnerId);
      if (runner.gitlabRunnerId === null) return { kind: 'unknown', detail: 'runner has no gitlab_runner_id' };
      try {
        const jobs = await gitlabFor(runner).listRunnerJobs(runner.gitlabRunnerId, 'running');
        return { kind: 'jobs', jobIds: jobs.map((j) => String(j.id)) };
      } catch (err) {
        const detail = describe(err);
        logger.warn({ runnerId, checkpoint: name, gitlabRunnerId: runner.gitlabRunnerId }, `could not list running jobs: ${detail}`);
        return { kind: 'unknown', detail };
      }
    },

    async observeJob({ runnerId, name, jobId, projectId }): Promise<JobObservation> {
      const runner = await loadRunner(runnerId);
      let gitlab: GitlabClient;
      try {
        gitlab = gitlabFor(runner);
      } catch (err) {
        // Nothing can ever tell us about this job: only the TTL decides.
        return { kind: 'unknowable', detail: describe(err) };
      }
      let project = projectId;
      try {
        if (!project) {
          // Learn the project from the runner's running jobs; a job not running there has ended or is gone.
          if (runner.gitlabRunnerId === null) return { kind: 'unknowable', detail: 'no project id and the runner has no gitlab_runner_id' };
          const listed = (await gitlab.listRunnerJobs(runner.gitlabRunnerId, 'running')).find((j) => String(j.id) === jobId);
          if (!listed) return { kind: 'unknowable', detail: `no project id, and job ${jobId} is not running on GitLab runner ${runner.gitlabRunnerId}` };
          if (listed.project?.id === undefined) return { kind: 'running' };
          project = String(listed.project.id);
        }
        const job = await gitlab.getJob(project, jobId);
        const meaning = mapGitlabJobStatus(job.status);
        return meaning.terminal ? { kind: 'terminal', outcome: meaning.outcome } : { kind: 'running' };
      } catch (err) {
        // GitLab says the job does not exist, or its id can never name a GitLab job.
        if (isNotFound(err) || (err instanceof E2epoolError && err.code === 'validation')) return { kind: 'unknowable', detail: describe(err) };
        const detail = describe(err);
        logger.warn({ runnerId, checkpoint: name, jobId }, `could not observe the job: ${detail}`);
        return { kind: 'error', detail };
      }
    },

    async watchJob({ runnerId, name, jobId, projectId, intervalSeconds }) {
      if (!(intervalSeconds > 0)) throw new E2epoolError('validation', 'intervalSeconds must be positive');
      const ctx = Context.current();
      const runner = await loadRunner(runnerId);
      const gitlab = gitlabFor(runner);
      for (let tick = 1; ; tick++) {
        try {
          const job = await gitlab.getJob(projectId, jobId);
          ctx.heartbeat({ jobId, tick, status: job.status });
          const meaning = mapGitlabJobStatus(job.status);
          if (meaning.terminal) {
            logger.info({ runnerId, checkpoint: name, workflowId: name, jobId, status: job.status }, `GitLab job ended: ${meaning.outcome}`);
            return { outcome: meaning.outcome };
          }
        } catch (err) {
          // A job or project id GitLab could never accept is our bug, not GitLab's: stop.
          if (err instanceof E2epoolError && err.code === 'validation') throw err;
          // Any GitLab failure waits for the next tick: an error never ends the watch.
          ctx.heartbeat({ jobId, tick, error: true });
          logger.warn({ runnerId, checkpoint: name, jobId, tick }, `GitLab job poll failed: ${describe(err)}`);
        }
        await ctx.sleep(intervalSeconds * 1000);
      }
    },
  };
}
