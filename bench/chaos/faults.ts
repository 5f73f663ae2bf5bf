// The seeded fault scheduler: at random times (mean 60 / faultsPerMinute s) it picks a fault by
// weight and injects it into the world; faults that last undo themselves. An operator loop answers
// needs-attention checkpoints the way a hurried person would: retry, release, double clicks.
import type { Client } from '@temporalio/client';
import { sleep } from '../lib/stack.js';
import type { Random } from './random.js';
import type { ChaosRunner, ChaosWorld } from './world.js';
import { Counter } from '../lib/summary.js';

type FaultFn = (world: ChaosWorld, r: Random, ctx: FaultContext) => Promise<string | null> | string | null;

interface FaultContext {
  temporal: () => Client | undefined;
  /** True while a process fault (instance or Temporal restart) is still being undone. */
  busy: { processes: boolean };
  background: (work: Promise<unknown>) => void;
  log: (line: string) => void;
}

const proxmoxOps = ['snapshot-create', 'snapshot-rollback', 'snapshot-delete', 'stop', 'start', 'task-status', 'snapshot-list', 'status'] as const;

function someRunner(world: ChaosWorld, r: Random, filter: (x: ChaosRunner) => boolean = () => true): ChaosRunner | undefined {
  const candidates = world.runners.filter(filter);
  return candidates.length ? r.pick(candidates) : undefined;
}

async function restartController(world: ChaosWorld, index: number, signal: 'SIGKILL' | 'SIGTERM', downMs: number, log: (line: string) => void): Promise<void> {
  const controller = world.stack.controllers[index]!;
  await controller.stop(signal, 30_000);
  await sleep(downMs);
  try {
    await controller.start();
  } catch (err) {
    log(`restart of ${controller.name} failed (${(err as Error).message}); trying once more`);
    await sleep(2000);
    await controller.start();
  }
}

/** One process fault at a time: runs `work` (stop, wait, start) in the background; false when busy. */
function processFault(ctx: FaultContext, work: () => Promise<void>): boolean {
  if (ctx.busy.processes) return false;
  ctx.busy.processes = true;
  ctx.background(work().finally(() => (ctx.busy.processes = false)));
  return true;
}

export const FAULTS: Record<string, { weight: number; run: FaultFn }> = {
  instance_kill: {
    weight: 3,
    run: (world, r, ctx) => {
      if (ctx.busy.processes) return null; // before drawing: the seeded sequence stays as it was
      const i = r.int(world.stack.controllers.length);
      return processFault(ctx, () => restartController(world, i, 'SIGKILL', 1000 + r.int(4000), ctx.log)) ? `controller-${i + 1}` : null;
    },
  },
  instance_drain: {
    weight: 3,
    run: (world, r, ctx) => {
      if (ctx.busy.processes) return null; // before drawing: the seeded sequence stays as it was
      const i = r.int(world.stack.controllers.length);
      return processFault(ctx, () => restartController(world, i, 'SIGTERM', 500 + r.int(2000), ctx.log)) ? `controller-${i + 1}` : null;
    },
  },
  temporal_restart: {
    weight: 1,
    run: (world, r, ctx) => {
      const started = processFault(ctx, async () => {
        await world.stack.temporal.stop('SIGTERM', 20_000);
        await sleep(1000 + r.int(3000));
        await world.stack.temporal.start();
      });
      return started ? 'temporal' : null;
    },
  },
  agent_disconnect_before: {
    weight: 4,
    run: (world, r) => {
      const runner = someRunner(world, r, (x) => x.kind !== 'proxmox' || x.agent.connected);
      if (!runner) return null;
      runner.agent.disconnect(r.int(4000));
      return runner.runnerId;
    },
  },
  agent_disconnect_during: {
    weight: 4,
    run: (world, r) => {
      const runner = someRunner(world, r);
      if (!runner) return null;
      runner.faults.armed = { command: r.pick(['reset', 'readiness', 'any'] as const), behaviour: { ms: 800, disconnectAfterMs: 300 } };
      return runner.runnerId;
    },
  },
  agent_lost_before_run: {
    weight: 3,
    run: (world, r) => {
      // The command frame reaches the host, whose session drops before it runs anything. Not on
      // legacy reboot-mode hosts: with no boot id to tell, the design takes a session lost during
      // their reset for the reboot (ARCHITECTURE §4.9), so this one case is a known limit.
      const runner = someRunner(world, r, (x) => x.kind !== 'legacy_reboot');
      if (!runner) return null;
      runner.faults.armed = { command: r.pick(['reset', 'reset', 'any'] as const), behaviour: { dropBeforeRun: true } };
      return runner.runnerId;
    },
  },
  instance_drain_mid_reset: {
    weight: 2,
    run: (world, r, ctx) => {
      // A slow reset; as it starts, the instance holding the agent's session drains (SIGTERM).
      const runner = someRunner(world, r, (x) => x.kind !== 'proxmox');
      if (!runner) return null;
      runner.faults.armed = {
        command: 'reset',
        behaviour: {
          ms: 6000,
          onStart: () => {
            const i = world.stack.wsUrls.indexOf(runner.agent.url);
            if (i < 0) return;
            if (processFault(ctx, () => restartController(world, i, 'SIGTERM', 500, ctx.log))) {
              world.truth.faults.push({ kind: 'instance_drain_mid_reset:drain', target: `controller-${i + 1}`, at: Date.now() });
            }
          },
        },
      };
      return runner.runnerId;
    },
  },
  agent_disconnect_after: {
    weight: 3,
    run: (world, r) => {
      const runner = someRunner(world, r);
      if (!runner) return null;
      runner.faults.armed = { command: r.pick(['reset', 'any'] as const), behaviour: { disconnectAfterReply: true } };
      return runner.runnerId;
    },
  },
  agent_reply_late: {
    weight: 2,
    run: (world, r) => {
      // Past the gateway's reply deadline (command timeout + 30 s) and the activity's timeout.
      const runner = someRunner(world, r);
      if (!runner) return null;
      runner.faults.armed = { command: r.pick(['reset', 'any'] as const), behaviour: { replyDelayMs: 50_000 } };
      return runner.runnerId;
    },
  },
  readiness_broken: {
    weight: 3,
    run: (world, r) => {
      const runner = someRunner(world, r);
      if (!runner) return null;
      runner.faults.readinessBrokenUntil = Date.now() + 15_000 + r.int(60_000);
      return runner.runnerId;
    },
  },
  reset_fails: {
    weight: 2,
    run: (world, r) => {
      const runner = someRunner(world, r, (x) => x.kind !== 'proxmox');
      if (!runner) return null;
      runner.faults.nextResetFails = true;
      return runner.runnerId;
    },
  },
  proxmox_5xx: {
    weight: 3,
    run: (world, r) => {
      const runner = someRunner(world, r, (x) => x.kind === 'proxmox');
      if (!runner) return null;
      world.proxmox.sim.inject({ type: 'http-error', op: r.pick(proxmoxOps), vmid: runner.vmid!, status: r.pick([500, 502, 503]), message: 'proxy error', times: 1 + r.int(3) });
      return runner.runnerId;
    },
  },
  proxmox_lock: {
    weight: 2,
    run: (world, r, ctx) => {
      const runner = someRunner(world, r, (x) => x.kind === 'proxmox');
      if (!runner) return null;
      world.proxmox.sim.inject({ type: 'stuck-lock', vmid: runner.vmid!, lock: 'backup' });
      ctx.background(sleep(3000 + r.int(15_000)).then(() => world.proxmox.sim.state.setLock(runner.vmid!, undefined)));
      return runner.runnerId;
    },
  },
  proxmox_slow: {
    weight: 2,
    run: (world, r) => {
      const runner = someRunner(world, r, (x) => x.kind === 'proxmox');
      if (!runner) return null;
      world.proxmox.sim.inject({ type: 'slow', op: r.pick(['snapshot-create', 'snapshot-rollback', 'start', 'stop'] as const), vmid: runner.vmid!, durationMs: 3000 + r.int(30_000), times: 1 });
      return runner.runnerId;
    },
  },
  proxmox_task_fails: {
    weight: 2,
    run: (world, r) => {
      const runner = someRunner(world, r, (x) => x.kind === 'proxmox');
      if (!runner) return null;
      const op = r.pick(['snapshot-rollback', 'snapshot-delete', 'stop', 'start', 'snapshot-create'] as const);
      const exitstatus = op === 'snapshot-delete' && r.chance(0.5) ? "storage 'local-zfs' does not exist" : 'command failed: exit code 1';
      world.proxmox.sim.inject({ type: 'task-fail', op, vmid: runner.vmid!, exitstatus, times: 1 + r.int(5) });
      return runner.runnerId;
    },
  },
  gitlab_errors: {
    weight: 3,
    run: (world, r) => {
      const target = r.pick(['updateRunner', 'listRunnerJobs', 'getJob'] as const);
      const status = r.pick([500, 502, 503, 429]);
      world.gitlab.api.injectFault(target, { kind: 'status', status, times: 1 + r.int(6) });
      return `gitlab:${target}:${status}`;
    },
  },
  webhook_late_duplicate: {
    weight: 2,
    run: (world, r) => {
      const deliveries = world.gitlab.api.deliveries();
      if (deliveries.length === 0) return null;
      const old = deliveries[r.int(deliveries.length)]!;
      void world.gitlab.api.resendWebhook(old.uuid);
      return `webhook:${old.jobId}`;
    },
  },
  finalize_duplicate: {
    weight: 3,
    run: async (world, r) => {
      const runner = someRunner(world, r, (x) => x.current !== null);
      if (!runner) return null;
      await world.httpFinalize(runner, runner.current!, r.pick(['success', 'failure', 'canceled']));
      return runner.runnerId;
    },
  },
  operator_misclick: {
    weight: 1,
    run: async (world, r) => {
      const runner = someRunner(world, r, (x) => x.current !== null);
      if (!runner) return null;
      await world.operatorClick(runner.current!, runner.runnerId, r.chance(0.5) ? 'retry' : 'release', world.newIntent());
      return runner.runnerId;
    },
  },
  malformed_signal: {
    weight: 2,
    run: async (world, r, ctx) => {
      const client = ctx.temporal();
      // Aimed at live workflows: the runners' current checkpoints.
      const names = world.runners.map((x) => x.current).filter((n): n is string => n !== null);
      if (!client || names.length === 0) return null;
      const name = r.pick(names);
      const [signal, payload] = r.pick([
        ['retryReset', { actor: { toString: 1 } }],
        ['release', { actor: { toString: 1 }, deleteSnapshot: 'yes' }],
        ['finalize', { status: 42, source: { nested: true } }],
        ['finalize', null],
        ['retryReset', 'not an object'],
      ] as const);
      try {
        await client.workflow.getHandle(name).signal(signal, payload);
      } catch {
        // closed workflow or server restarting: nothing was sent
      }
      return `${name}:${signal}`;
    },
  },
};

export interface FaultScheduler {
  counts: Counter;
  stop(): Promise<void>;
}

export function startFaultScheduler(world: ChaosWorld, r: Random, opts: { faultsPerMinute: number; temporal: () => Client | undefined; log: (line: string) => void }): FaultScheduler {
  const counts = new Counter();
  const pending = new Set<Promise<unknown>>();
  const ctx: FaultContext = {
    temporal: opts.temporal,
    busy: { processes: false },
    log: opts.log,
    background: (work) => {
      const p = work.catch((err) => opts.log(`fault undo failed: ${(err as Error).message}`)).finally(() => pending.delete(p));
      pending.add(p);
    },
  };
  const entries = Object.entries(FAULTS);
  const totalWeight = entries.reduce((s, [, f]) => s + f.weight, 0);
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await sleep(r.exponential(60_000 / opts.faultsPerMinute));
      if (stopped) break;
      let roll = r.next() * totalWeight;
      const [kind, fault] = entries.find(([, f]) => (roll -= f.weight) < 0) ?? entries[0]!;
      try {
        const target = await fault.run(world, r, ctx);
        if (target === null) continue;
        counts.add(kind);
        world.truth.faults.push({ kind, target, at: Date.now() });
      } catch (err) {
        opts.log(`fault ${kind} could not be injected: ${(err as Error).message}`);
      }
    }
  })();
  return {
    counts,
    stop: async () => {
      stopped = true;
      await loop;
      await Promise.all(pending);
    },
  };
}

/** Answers needs-attention checkpoints: fix the host sometimes, then retry or release, sometimes twice. */
export function startOperator(world: ChaosWorld, r: Random): { counts: Counter; stop(): Promise<void> } {
  const counts = new Counter();
  const lastActed = new Map<string, number>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await sleep(2000 + r.int(3000));
      if (stopped) break;
      const { status, json } = await world.admin('GET', '/api/checkpoints?state=needs_attention&limit=50');
      if (status !== 200 || !Array.isArray(json?.items)) continue;
      for (const item of json.items as Array<{ name: string; runner_id: string }>) {
        if (Date.now() - (lastActed.get(item.name) ?? 0) < 8000 || !r.chance(0.6)) continue;
        lastActed.set(item.name, Date.now());
        const runner = world.runnerOf(item.runner_id);
        if (runner && r.chance(0.6)) runner.faults.readinessBrokenUntil = 0; // the operator fixed the host
        const intent = world.newIntent();
        const roll = r.next();
        const click = (action: 'retry' | 'release') => world.operatorClick(item.name, item.runner_id, action, intent);
        if (roll < 0.45) {
          counts.add('retry');
          await click('retry');
        } else if (roll < 0.6) {
          counts.add('retry_double_click');
          await Promise.all([click('retry'), click('retry')]);
        } else if (roll < 0.75) {
          counts.add('release');
          await click('release');
        } else if (roll < 0.85) {
          counts.add('release_double_click');
          await Promise.all([click('release'), click('release')]);
        } else {
          counts.add('retry_and_release_at_once');
          await Promise.all([click('retry'), click('release')]);
        }
      }
    }
  })();
  return {
    counts,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
