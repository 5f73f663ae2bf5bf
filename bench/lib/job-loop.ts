// What a runner does all day, as the bench drives it: create a checkpoint, "run" the job, finalize
// with success or failure, then poll the status until the checkpoint ends. Latencies and errors go to
// a recorder that only counts while the measurement window is open.
import type { AgentReply, SimAgent } from './sim-agents.js';
import { Counter } from './summary.js';
import { sleep } from './stack.js';

const END_STATES = new Set(['deleted', 'reset', 'gc_reset', 'create_failed', 'released']);

export class LoadRecorder {
  recording = false;
  readonly createMs: number[] = [];
  readonly finalizeAckMs: number[] = [];
  readonly turnaroundMs: number[] = [];
  readonly errors = new Counter();
  readonly ends = new Counter();
  lifecycles = 0;
  /** Everything since the start, for progress lines. */
  totalLifecycles = 0;
  totalErrors = 0;

  error(type: string, reply: AgentReply): void {
    this.totalErrors += 1;
    if (this.recording) this.errors.add(`${type}:${errorKey(reply)}`);
  }
}

export function errorKey(reply: AgentReply): string {
  const err = reply.error;
  if (err && typeof err === 'object') {
    if (err.code === 504 && err.detail === 'Controller did not respond in time') return 'timeout';
    if (err.code === 503 && (err.detail === 'Connection lost' || err.detail === 'Not connected to controller')) return 'disconnected';
    return String(err.code ?? 'error');
  }
  return typeof err === 'string' ? err.slice(0, 40) : 'error';
}

export interface JobLoopOptions {
  agent: SimAgent;
  recorder: LoadRecorder;
  jobMs: number;
  successRatio: number;
  pollMs: number;
  /** How long the agent waits for a create answer (legacy e2epool agents: 30 s). */
  createTimeoutMs: number;
  requestTimeoutMs: number;
  random: () => number;
  nextJobId: () => number;
  /** True once no new lifecycle may start (the loop finishes the one in flight). */
  stopping: () => boolean;
  /** Give up polling a checkpoint after this long (it is reported as not ended). */
  endTimeoutMs: number;
  projectId?: string;
  onCreated?: (name: string, jobId: number) => void;
  onEnded?: (name: string, state: string) => void;
}

/** Runs lifecycles until `stopping()`; resolves when the last one has ended or given up. */
export async function runJobLoop(o: JobLoopOptions): Promise<void> {
  while (!o.stopping()) {
    if (!o.agent.connected) {
      await o.agent.waitConnected(1000);
      continue;
    }
    const jobId = o.nextJobId();
    const started = performance.now();
    const created = await o.agent.request('create', { job_id: jobId, ...(o.projectId ? { project_id: o.projectId } : {}) }, o.createTimeoutMs);
    const createMs = performance.now() - started;
    if (created.status !== 'ok' || typeof created.data?.name !== 'string') {
      o.recorder.error('create', created);
      await sleep(1000);
      continue;
    }
    if (o.recorder.recording) o.recorder.createMs.push(createMs);
    const name: string = created.data.name;
    o.agent.currentCheckpoint = name;
    o.onCreated?.(name, jobId);
    if (o.jobMs > 0) await sleep(o.jobMs);

    const status = o.random() < o.successRatio ? 'success' : 'failure';
    let finalizedAt: number;
    for (let attempt = 0; ; attempt++) {
      finalizedAt = performance.now();
      const ack = await o.agent.request('finalize', { checkpoint_name: name, status }, o.requestTimeoutMs);
      if (ack.status === 'ok') {
        if (o.recorder.recording) o.recorder.finalizeAckMs.push(performance.now() - finalizedAt);
        break;
      }
      o.recorder.error('finalize', ack);
      // A finalize must get through eventually: the runner would otherwise wait for the TTL.
      if (attempt >= 20) break;
      await sleep(500);
    }

    const deadline = performance.now() + o.endTimeoutMs;
    let state = 'unknown';
    while (performance.now() < deadline) {
      const reply = await o.agent.request('status', { checkpoint_name: name }, o.requestTimeoutMs);
      if (reply.status === 'ok' && typeof reply.data?.state === 'string') {
        state = reply.data.state;
        if (END_STATES.has(state)) break;
      }
      await sleep(o.pollMs);
    }
    const ended = END_STATES.has(state);
    o.recorder.totalLifecycles += 1;
    if (o.recorder.recording) {
      o.recorder.ends.add(ended ? state : `not_ended:${state}`);
      if (ended) {
        o.recorder.lifecycles += 1;
        o.recorder.turnaroundMs.push(performance.now() - finalizedAt);
      }
    }
    o.onEnded?.(name, state);
    if (!ended) return; // a runner whose checkpoint never ends cannot take the next job
  }
}
