// Child processes that lead their own process group and die with us: the whole group is signalled
// on stop(), when this process exits, on SIGINT/SIGTERM and on an uncaught exception. A group of its
// own means helpers the child forks go too, and a Ctrl-C in the terminal reaches us first, so we
// decide the order of shutdown.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

export interface GroupExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface GroupChild {
  child: ChildProcess;
  /** Process group id (= the child's pid). */
  pgid: number;
  /** Settles when the leader has exited and been reaped. */
  exited: Promise<GroupExit>;
  /** SIGTERM to the group, SIGKILL after `timeoutMs`, then waits until no member is left. Idempotent. */
  stop(opts?: { timeoutMs?: number }): Promise<GroupExit>;
}

const liveGroups = new Set<number>();
let hooksInstalled = false;

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** True while any process of the group exists (zombies included). */
export function isProcessGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killAllGroups(): void {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGTERM');
}

// Signals whose listener list shrank in this tick: a `once` listener that ran just before ours is
// already removed when we count, yet it is someone else's orderly shutdown.
const removedThisTick = new Set<string | symbol>();
function noteRemoval(event: string | symbol): void {
  if (event !== 'SIGINT' && event !== 'SIGTERM') return;
  removedThisTick.add(event);
  setImmediate(() => removedThisTick.delete(event));
}

function onSignal(signal: NodeJS.Signals): void {
  // Only our listener: keep the default meaning of the signal (terminate, taking the groups along).
  // Otherwise the owner of the other listener (a CLI command) stops things in its own order, e.g.
  // the controller before the Temporal server it talks to; the exit hook still reaps whatever is left.
  if (process.listenerCount(signal) === 1 && !removedThisTick.has(signal)) {
    killAllGroups();
    process.exit(128 + (osConstants.signals[signal] ?? 15));
  }
}

const onSigint = () => onSignal('SIGINT');
const onSigterm = () => onSignal('SIGTERM');

// The monitor variant of uncaughtException observes without changing Node's crash behaviour.
const processHooks: Array<[string, (...args: any[]) => void]> = [
  ['exit', killAllGroups],
  ['uncaughtExceptionMonitor', killAllGroups],
  ['SIGINT', onSigint],
  ['SIGTERM', onSigterm],
  ['removeListener', noteRemoval],
];

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  for (const [event, hook] of processHooks) process.on(event, hook);
}

function removeHooksWhenIdle(): void {
  if (!hooksInstalled || liveGroups.size > 0) return;
  hooksInstalled = false;
  for (const [event, hook] of processHooks) process.off(event, hook);
}

export function spawnInOwnGroup(command: string, args: string[], opts: Omit<SpawnOptions, 'detached'> = {}): GroupChild {
  const child = spawn(command, args, { ...opts, detached: true });
  if (child.pid === undefined) {
    // spawn failed synchronously (ENOENT and the like are reported through 'error').
    const exited = new Promise<GroupExit>((resolve) => child.once('error', () => resolve({ code: null, signal: null })));
    return { child, pgid: -1, exited, stop: async () => await exited };
  }
  const pgid = child.pid;
  liveGroups.add(pgid);
  installHooks();
  const exited = new Promise<GroupExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  // After the leader is gone: give the rest of the group `graceMs` to follow, then SIGKILL it.
  const reapGroup = async (graceMs: number): Promise<void> => {
    const deadline = Date.now() + graceMs;
    while (isProcessGroupAlive(pgid) && Date.now() < deadline) await sleep(25);
    if (isProcessGroupAlive(pgid)) signalGroup(pgid, 'SIGKILL');
    while (isProcessGroupAlive(pgid)) await sleep(25);
    liveGroups.delete(pgid);
    removeHooksWhenIdle();
  };

  let stopping: Promise<GroupExit> | undefined;
  const stop = (stopOpts: { timeoutMs?: number } = {}): Promise<GroupExit> => {
    stopping ??= (async () => {
      const timeoutMs = stopOpts.timeoutMs ?? 10_000;
      signalGroup(pgid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      await reapGroup(timeoutMs);
      return result;
    })();
    return stopping;
  };

  // A leader that exits on its own: the rest of its group goes too.
  void exited.then(async () => {
    if (!stopping) {
      signalGroup(pgid, 'SIGTERM');
      await reapGroup(2_000);
    }
  });

  return { child, pgid, exited, stop };
}
