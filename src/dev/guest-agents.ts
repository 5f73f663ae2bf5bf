// The demo runner hosts' agents: one `e2epool agent` process per runner, each in its own process
// group. A Proxmox runner's agent lives and dies with its simulated VM (killed when the VM stops,
// started again a "boot time" after it starts), so after a rollback the controller really sees a
// new session. A bare-metal host "reboots" when its reset command leaves a marker file. An agent
// that crashes is restarted like a service manager would.
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { Logger } from '../logger.js';
import { spawnInOwnGroup, type GroupChild } from '../../temporal/process-group.js';
import type { DemoRunner } from './demo-inventory.js';

/** Longest Unix socket path we use (sun_path holds 108 bytes on Linux, 104 on macOS). */
const MAX_SOCKET_PATH = 100;
const CRASH_RESTART_DELAY_MS = 1_000;
/** An agent that exits this soon after starting, this many times in a row, is left down. */
const QUICK_EXIT_MS = 3_000;
const MAX_QUICK_EXITS = 5;
const MARKER_POLL_MS = 250;

export interface PowerSource {
  onVmPowerChange(listener: (vmid: number, status: 'running' | 'stopped') => void): () => void;
}

export interface GuestAgentsOptions {
  runners: DemoRunner[];
  /** `ws://host:port/ws/agent` of the controller. */
  controllerUrl: string;
  /** Agent configs and logs go under it. */
  devDir: string;
  /** `bin/e2epool.js`. */
  cliEntry: string;
  /** Proxmox simulator whose VM power drives the Proxmox runners' agents. */
  proxmox?: PowerSource;
  /** Delay between a VM start (or a reboot) and its agent starting. */
  bootDelayMs?: number;
  logger: Logger;
}

export interface GuestAgentInfo {
  runnerId: string;
  socketPath: string;
  configPath: string;
  logFile: string;
  /** pid of the running agent, if any. */
  pid: number | undefined;
  /** How many times an agent process was started. */
  starts: number;
}

export interface GuestAgents {
  agents(): GuestAgentInfo[];
  socketPathOf(runnerId: string): string;
  /** Synchronous: from now on nothing is (re)started. For signal handlers. */
  beginStop(): void;
  /** Stops every agent and waits until none of their processes is left. */
  stop(): Promise<void>;
}

/** The agent's environment: ours without E2EPOOL_* (they would override its config file). */
function agentEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('E2EPOOL_')) env[key] = value;
  return env;
}

class GuestAgent {
  private group: GroupChild | null = null;
  private powered = false;
  private stopping = false;
  private queue: Promise<void> = Promise.resolve();
  private quickExits = 0;
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  starts = 0;

  constructor(
    readonly runner: DemoRunner,
    readonly socketPath: string,
    readonly configPath: string,
    readonly logFile: string,
    private readonly cliEntry: string,
    private readonly bootDelayMs: number,
    private readonly logger: Logger,
  ) {}

  get pid(): number | undefined {
    return this.group ? this.group.pgid : undefined;
  }

  powerOn(reason: string): void {
    this.powered = true;
    this.enqueue(async () => {
      await sleep(this.bootDelayMs);
      if (this.powered && !this.stopping && !this.group) this.spawn(reason);
    });
  }

  powerOff(reason: string): void {
    this.powered = false;
    this.enqueue(() => this.kill(reason));
  }

  reboot(reason: string): void {
    this.powerOff(reason);
    this.powerOn(reason);
  }

  beginStop(): void {
    this.stopping = true;
    this.powered = false;
    clearTimeout(this.restartTimer);
  }

  async stop(): Promise<void> {
    this.beginStop();
    await this.queue;
    await this.kill('stopping');
  }

  private enqueue(step: () => Promise<void>): void {
    this.queue = this.queue.then(step).catch((err: unknown) => this.logger.error({ err, runnerId: this.runner.runnerId }, 'guest agent step failed'));
  }

  private spawn(reason: string): void {
    const out = openSync(this.logFile, 'a');
    let group: GroupChild;
    try {
      group = spawnInOwnGroup(process.execPath, [this.cliEntry, 'agent', '--config', this.configPath], {
        cwd: this.runner.hostDir,
        // Each start is a boot of the simulated guest: a new boot id, as a real VM would report.
        env: { ...agentEnvironment(), E2EPOOL_AGENT_BOOT_ID: randomUUID() },
        stdio: ['ignore', out, out],
      });
    } finally {
      closeSync(out);
    }
    group.child.once('error', (err) => this.logger.error({ err, runnerId: this.runner.runnerId }, 'could not start the agent'));
    this.group = group;
    this.starts += 1;
    this.startedAt = Date.now();
    this.logger.info({ runnerId: this.runner.runnerId, pid: group.pgid, reason }, 'agent started');
    void group.exited.then(({ code, signal }) => this.onExit(group, code, signal));
  }

  // An exit nobody asked for: restart after a pause, unless it keeps dying at once.
  private onExit(group: GroupChild, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.group !== group) return; // killed on purpose
    this.group = null;
    if (this.stopping || !this.powered) return;
    this.quickExits = Date.now() - this.startedAt < QUICK_EXIT_MS ? this.quickExits + 1 : 0;
    if (this.quickExits >= MAX_QUICK_EXITS) {
      this.logger.error({ runnerId: this.runner.runnerId, code, signal, log: this.logFile }, 'agent keeps exiting at start; leaving it down');
      return;
    }
    this.logger.warn({ runnerId: this.runner.runnerId, code, signal, log: this.logFile }, 'agent exited unexpectedly; restarting it');
    this.restartTimer = setTimeout(() => {
      if (this.powered && !this.stopping) this.powerOn('restart after exit');
    }, CRASH_RESTART_DELAY_MS);
  }

  private async kill(reason: string): Promise<void> {
    const group = this.group;
    if (!group) return;
    this.group = null;
    await group.stop({ timeoutMs: 5_000 });
    if (!this.stopping) this.logger.info({ runnerId: this.runner.runnerId, reason }, 'agent stopped');
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes each agent's config and starts the agents of powered hosts. */
export function startGuestAgents(opts: GuestAgentsOptions): GuestAgents {
  const bootDelayMs = opts.bootDelayMs ?? 1_000;
  const configDir = path.join(opts.devDir, 'agents');
  const logDir = path.join(opts.devDir, 'logs');
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  mkdirSync(logDir, { recursive: true });
  // Unix socket paths are short; a deep data directory gets its sockets in a temporary one.
  const longest = Math.max(...opts.runners.map((r) => r.runnerId.length));
  const socketDir = path.join(configDir, `x${'x'.repeat(longest)}.sock`).length > MAX_SOCKET_PATH ? mkdtempSync(path.join(tmpdir(), 'e2epool-dev-')) : configDir;

  const agents = opts.runners.map((runner) => {
    const socketPath = path.join(socketDir, `${runner.runnerId}.sock`);
    const configPath = path.join(configDir, `${runner.runnerId}.yml`);
    const config = {
      controller_url: opts.controllerUrl,
      runner_id: runner.runnerId,
      token: runner.token,
      socket_path: socketPath,
      socket_group: 'none',
      socket_mode: '0600',
      commands: runner.commands,
      reconnect_initial_delay: 0.5,
      reconnect_max_delay: 5,
      heartbeat_interval: 10,
      // A powered-off VM does not wait for anything.
      shutdown_grace_seconds: 0,
      kill_grace_seconds: 1,
    };
    writeFileSync(configPath, toYaml(config), { mode: 0o600 });
    return new GuestAgent(runner, socketPath, configPath, path.join(logDir, `${runner.runnerId}.log`), opts.cliEntry, bootDelayMs, opts.logger);
  });

  const byVmid = new Map<number, GuestAgent>();
  for (const agent of agents) if (agent.runner.vm) byVmid.set(agent.runner.vm.vmid, agent);
  const unsubscribe = opts.proxmox?.onVmPowerChange((vmid, status) => {
    const agent = byVmid.get(vmid);
    if (!agent) return;
    if (status === 'running') agent.powerOn(`VM ${vmid} started`);
    else agent.powerOff(`VM ${vmid} stopped`);
  });

  // Bare-metal hosts: the reset command leaves a marker; the "reboot" restarts the agent.
  const markerWatch = setInterval(() => {
    for (const agent of agents) {
      const marker = agent.runner.rebootMarker;
      if (!marker || !existsSync(marker)) continue;
      try {
        unlinkSync(marker);
      } catch {
        continue;
      }
      agent.reboot('host reboot requested by reset');
    }
  }, MARKER_POLL_MS);
  markerWatch.unref();

  for (const agent of agents) agent.powerOn('host up');

  let stopping: Promise<void> | undefined;
  const beginStop = () => {
    clearInterval(markerWatch);
    unsubscribe?.();
    for (const agent of agents) agent.beginStop();
  };
  return {
    agents: () => agents.map((a) => ({ runnerId: a.runner.runnerId, socketPath: a.socketPath, configPath: a.configPath, logFile: a.logFile, pid: a.pid, starts: a.starts })),
    socketPathOf(runnerId) {
      const agent = agents.find((a) => a.runner.runnerId === runnerId);
      if (!agent) throw new Error(`no demo agent for runner ${runnerId}`);
      return agent.socketPath;
    },
    beginStop,
    stop() {
      stopping ??= (async () => {
        beginStop();
        await Promise.all(agents.map((a) => a.stop()));
        if (socketDir !== configDir) rmSync(socketDir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
