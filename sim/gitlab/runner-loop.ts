// A stand-in for gitlab-runner with `concurrent = 1`: it polls the simulator every
// `pollIntervalMs` (refreshing contacted_at, so the runner stays online), picks up the next job when
// it is idle and not paused, runs it through `runJob`, and reports the outcome. The demo wires
// `runJob` to what a real job would do on the runner host (e2epool create, work, finalize).
import type { GitlabSimulatorApi } from './simulator.js';
import type { SimJob } from './state.js';

export type SimJobResult = 'success' | 'failed' | 'canceled';

export interface SimRunnerLoopOptions {
  runnerId: number;
  /** gitlab-runner's `check_interval` (3 s by default). */
  pollIntervalMs?: number;
  /** Runs one job; a throw counts as `failed` with `runner_system_failure`. */
  runJob: (job: SimJob, signal: AbortSignal) => Promise<SimJobResult>;
  onError?: (err: unknown) => void;
}

export interface SimRunnerLoop {
  /** The job being run, if any. */
  readonly current: SimJob | null;
  stop(): Promise<void>;
}

export function startSimRunnerLoop(api: GitlabSimulatorApi, opts: SimRunnerLoopOptions): SimRunnerLoop {
  const pollIntervalMs = opts.pollIntervalMs ?? 3000;
  const abort = new AbortController();
  let current: SimJob | null = null;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const finish = (job: SimJob, result: SimJobResult, failureReason?: string) => {
    // Someone else (a cancel from a test, say) already ended it: keep their status.
    if (api.getJob(job.id).status !== 'running') return;
    api.setJobStatus(job.id, result, result === 'failed' ? { failureReason: failureReason ?? 'script_failure' } : {});
  };

  const poll = async () => {
    if (abort.signal.aborted) return;
    try {
      api.contactRunner(opts.runnerId);
      if (current === null) {
        const job = api.assignNextJob(opts.runnerId);
        if (job) {
          current = job;
          try {
            finish(job, await opts.runJob(job, abort.signal));
          } catch (err) {
            if (!abort.signal.aborted) {
              opts.onError?.(err);
              finish(job, 'failed', 'runner_system_failure');
            }
          } finally {
            current = null;
          }
        }
      }
    } catch (err) {
      opts.onError?.(err);
    }
    if (!abort.signal.aborted) timer = setTimeout(tick, pollIntervalMs);
  };
  const tick = () => {
    running = poll();
  };
  tick();

  return {
    get current() {
      return current;
    },
    async stop() {
      abort.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
