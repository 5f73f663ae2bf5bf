// The world a chaos run plays in: two controller instances on one PostgreSQL and one Temporal dev
// server, the Proxmox and GitLab simulators in this process, and runners of every kind (Proxmox VMs
// whose agent follows the VM's power, bare-metal hosts with legacy and current agents in auto,
// reboot and in-place reset modes). Each runner plays gitlab-runner: it takes a job only while
// unpaused, creates a checkpoint, runs the job, ends it in GitLab (webhook) and finalizes from one or
// more sources. Everything that really happens is written to the ground truth.
import { startStack, newToken, sleep, type RunnerEntry, type Stack } from '../lib/stack.js';
import { SimAgent, type CommandBehaviour, type CommandRecord } from '../lib/sim-agents.js';
import { startProxmoxBackend, type ProxmoxBackend } from '../lib/proxmox-backend.js';
import { startGitlabSimulator, type GitlabSimulator } from '../../sim/gitlab/index.js';
import type { SimTaskType } from '../../sim/proxmox/index.js';
import { emptyTruth, type GroundTruth, type RunnerKind, type RunnerTruth } from './truth.js';
import type { Random } from './random.js';

export const RUNNER_KINDS: RunnerKind[] = ['proxmox', 'legacy_auto', 'legacy_reboot', 'current_reboot', 'current_in_place'];
const LEGACY_COMMANDS = { 'sim-reset': 'reset', 'sim-readiness': 'readiness', 'sim-cleanup': 'cleanup' };
const PROJECT = { id: 1, path: 'chaos/app' };

/** Short timings so a few minutes hold many lifecycles; every one is an ordinary setting. */
export const CHAOS_SETTINGS = {
  FINALIZE_COOLDOWN_SECONDS: 0,
  CHECKPOINT_TTL_SECONDS: 120,
  POLLER_ENABLED: true,
  POLLER_MIN_AGE_SECONDS: 5,
  POLLER_INTERVAL_SECONDS: 5,
  READINESS_TIMEOUT_SECONDS: 20,
  READINESS_POLL_INTERVAL_SECONDS: 1,
  READINESS_STABLE_SECONDS: 1,
  RESET_SETTLE_SECONDS: 2,
  OWN_JOB_GRACE_SECONDS: 30,
  FOREIGN_JOB_GRACE_SECONDS: 30,
  COMMAND_TIMEOUT_SECONDS: 15,
  WS_HEARTBEAT_INTERVAL: 5,
  WS_HEARTBEAT_TIMEOUT: 15,
  SHUTDOWN_GRACE_SECONDS: 3,
  HTTPX_TIMEOUT: 10,
  ALERT_CHECK_INTERVAL_SECONDS: 30,
};

/** One-shot and lasting misbehaviour of a host, set by the fault scheduler. */
export interface HostFaults {
  readinessBrokenUntil: number;
  nextResetFails: boolean;
  /** Applies to the next command of that name (or any). */
  armed: { command: 'reset' | 'readiness' | 'any'; behaviour: Partial<CommandBehaviour> } | null;
}

export interface ChaosRunner extends RunnerTruth {
  token: string;
  agent: SimAgent;
  faults: HostFaults;
  /** The checkpoint the runner's job loop is on, if any. */
  current: string | null;
}

export interface ChaosWorldOptions {
  workDir: string;
  runnersPerKind: number;
  random: Random;
  log: (line: string) => void;
}

export class ChaosWorld {
  readonly truth: GroundTruth;
  readonly runners: ChaosRunner[] = [];
  readonly startedAt = Date.now();
  stack!: Stack;
  gitlab!: GitlabSimulator;
  proxmox!: ProxmoxBackend;
  readonly webhookSecret = newToken();
  private readonly gitlabToken = `glpat-${newToken()}`;
  private stopping = false;
  private loops: Promise<void>[] = [];
  private nextIntent = 1;

  constructor(private readonly opts: ChaosWorldOptions) {
    this.truth = emptyTruth([]);
  }

  async start(): Promise<void> {
    const { runnersPerKind } = this.opts;
    const plan: Array<{ id: string; kind: RunnerKind; gitlabRunnerId: number }> = [];
    let gitlabId = 100;
    for (const kind of RUNNER_KINDS) for (let i = 1; i <= runnersPerKind; i++) plan.push({ id: `chaos-${kind.replace(/_/g, '-')}-${i}`, kind, gitlabRunnerId: gitlabId++ });

    this.gitlab = await startGitlabSimulator({
      tokens: [this.gitlabToken],
      seed: { projects: [PROJECT], runners: plan.map((p) => ({ id: p.gitlabRunnerId, description: p.id, contacted: true })) },
    });
    this.proxmox = await startProxmoxBackend(plan.filter((p) => p.kind === 'proxmox').map((p) => p.id), { profile: 'fast', bootMs: 400 });
    this.recordProxmoxTasks();

    const inventory: RunnerEntry[] = [];
    for (const [i, p] of plan.entries()) {
      const token = newToken();
      const resetMode = p.kind === 'proxmox' ? 'reboot' : p.kind === 'legacy_auto' ? 'auto' : p.kind === 'current_in_place' ? 'in_place' : 'reboot';
      const withCleanup = i % 2 === 0;
      const common = { runner_id: p.id, token, gitlab_runner_id: p.gitlabRunnerId, readiness_cmd: 'sim-readiness', ...(withCleanup ? { cleanup_cmd: 'sim-cleanup' } : {}) };
      inventory.push(
        p.kind === 'proxmox'
          ? { ...common, ...this.proxmox.inventoryFields(p.id) }
          : { ...common, backend: 'bare_metal', reset_cmd: 'sim-reset', reset_mode: resetMode },
      );
      const runner: ChaosRunner = {
        runnerId: p.id,
        kind: p.kind,
        gitlabRunnerId: p.gitlabRunnerId,
        ...(p.kind === 'proxmox' ? { vmid: this.proxmox.vmidOf(p.id) } : {}),
        resetMode,
        resetReboots: resetMode === 'reboot',
        token,
        faults: { readinessBrokenUntil: 0, nextResetFails: false, armed: null },
        current: null,
        agent: undefined as unknown as SimAgent,
      };
      this.runners.push(runner);
      this.truth.runners.push({ runnerId: runner.runnerId, kind: runner.kind, gitlabRunnerId: runner.gitlabRunnerId, ...(runner.vmid ? { vmid: runner.vmid } : {}), resetMode, resetReboots: runner.resetReboots });
    }

    this.stack = await startStack(
      {
        workDir: this.opts.workDir,
        instances: 2,
        inventory,
        dbPrefix: 'e2epool_chaos',
        settings: { ...CHAOS_SETTINGS, GITLAB_URL: this.gitlab.url, GITLAB_TOKEN: this.gitlabToken, GITLAB_WEBHOOK_SECRET: this.webhookSecret },
      },
      this.opts.log,
    );
    for (const url of this.stack.urls) this.gitlab.api.addWebhook({ url: `${url}/webhooks/gitlab`, token: this.webhookSecret, maxAttempts: 6, retryDelayMs: 500 });

    for (const [i, runner] of this.runners.entries()) {
      runner.agent = new SimAgent({
        runnerId: runner.runnerId,
        token: runner.token,
        kind: runner.kind.startsWith('legacy') ? 'legacy' : 'current',
        urls: this.stack.wsUrls,
        firstUrl: i % 2,
        legacyCommandNames: LEGACY_COMMANDS,
        reconnectDelayMs: 300,
        behaviour: (_agent, command) => this.behaviourOf(runner, command),
        onCommand: (record) => this.recordCommand(record),
        onSession: (event) => this.truth.sessions.push(event),
      });
      if (runner.kind === 'proxmox') this.proxmox.attachAgent(runner.agent);
      runner.agent.start();
    }
    const ok = await Promise.all(this.runners.map((r) => r.agent.waitConnected(30_000)));
    if (ok.some((c) => !c)) throw new Error('some agents could not connect');
  }

  private behaviourOf(runner: ChaosRunner, command: string): CommandBehaviour {
    let behaviour: CommandBehaviour;
    if (command === 'reset') {
      // A reset script that fails exits non-zero without rebooting the host.
      const fails = runner.faults.nextResetFails;
      behaviour = { exitCode: fails ? 1 : 0, ms: 300, ...(runner.resetReboots && !fails ? { reboot: { downMs: 1500 } } : {}) };
      runner.faults.nextResetFails = false;
    } else if (command === 'readiness') {
      behaviour = { exitCode: Date.now() < runner.faults.readinessBrokenUntil ? 1 : 0, ms: 30 };
    } else {
      behaviour = { exitCode: 0, ms: 100 };
    }
    const armed = runner.faults.armed;
    if (armed && (armed.command === 'any' || armed.command === command)) {
      runner.faults.armed = null;
      behaviour = { ...behaviour, ...armed.behaviour };
    }
    return behaviour;
  }

  private recordCommand(record: CommandRecord): void {
    this.truth.commands.push({ ...record });
  }

  /** Records every Proxmox task with its snapshot name and its real start and end (ms). */
  private recordProxmoxTasks(): void {
    const state = this.proxmox.sim.state;
    const runnerOfVm = (vmid: number) => this.runners.find((r) => r.vmid === vmid)?.runnerId ?? `vm-${vmid}`;
    let snapname: string | null = null;
    for (const method of ['createSnapshot', 'rollback', 'deleteSnapshot'] as const) {
      const original = (state[method] as (...a: any[]) => any).bind(state);
      (state as any)[method] = (vm: unknown, user: unknown, name: string, ...rest: unknown[]) => {
        snapname = name;
        try {
          return original(vm, user, name, ...rest);
        } finally {
          snapname = null;
        }
      };
    }
    const runTask = state.runTask.bind(state);
    state.runTask = (vm, type: SimTaskType, user, work, taskOpts) => {
      const record = { runnerId: runnerOfVm(vm.vmid), vmid: vm.vmid, type, snapname, upid: '', startedAt: Date.now(), endedAt: null as number | null, exitstatus: null as string | null };
      const done = (status: string) => {
        record.endedAt = Date.now();
        record.exitstatus = status;
      };
      const task = runTask(
        vm,
        type,
        user,
        {
          ...work,
          finish: () => {
            const error = work.finish();
            done(error ?? 'OK');
            return error;
          },
          abort: () => {
            work.abort?.();
            done(taskOpts?.failWith ?? 'aborted');
          },
        },
        taskOpts,
      );
      record.upid = task.upid;
      this.truth.tasks.push(record);
      return task;
    };
  }

  /** Starts every runner's job loop. */
  startJobs(): void {
    this.loops = this.runners.map((r) => this.jobLoop(r));
  }

  /** No new jobs; resolves when every loop has finished its current lifecycle (or gave up). */
  async stopJobs(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private isPaused(runner: ChaosRunner): boolean {
    return this.gitlab.api.state.runners.get(runner.gitlabRunnerId)?.paused ?? false;
  }

  private async jobLoop(runner: ChaosRunner): Promise<void> {
    const r = this.opts.random;
    const agent = runner.agent;
    while (!this.stopping) {
      // gitlab-runner takes no job while paused, nor without its agent.
      if (this.isPaused(runner) || !agent.connected) {
        await sleep(300);
        continue;
      }
      const job = this.gitlab.api.createJob({ projectId: PROJECT.id, runnerId: runner.gitlabRunnerId, status: 'running' });
      agent.currentCheckpoint = `pending:job-${job.id}`;
      runner.current = null;
      const reply = await agent.request('create', { job_id: job.id, project_id: PROJECT.id }, agent.kind === 'legacy' ? 30_000 : 330_000);
      if (reply.status !== 'ok' || typeof reply.data?.name !== 'string') {
        // pre_build_script failed: the CI job fails, and GitLab says so.
        this.gitlab.api.setJobStatus(job.id, 'failed', { failureReason: 'script_failure' });
        await sleep(500 + r.int(1500));
        continue;
      }
      const name: string = reply.data.name;
      agent.currentCheckpoint = name;
      runner.current = name;
      this.truth.checkpoints.push({ name, runnerId: runner.runnerId, jobId: job.id, createdAt: Date.now() });
      await sleep(200 + r.int(1500));
      const outcome = r.chance(0.5) ? 'success' : 'failed';
      this.gitlab.api.setJobStatus(job.id, outcome, outcome === 'failed' ? { failureReason: 'script_failure' } : {});
      const status = outcome === 'success' ? 'success' : 'failure';
      // Finalize from one or more sources (the webhook already went out).
      if (r.chance(0.8)) await agent.request('finalize', { checkpoint_name: name, status }, 30_000);
      if (r.chance(0.3)) await this.httpFinalize(runner, name, status);
      if (r.chance(0.2)) await agent.request('finalize', { checkpoint_name: name, status: r.chance(0.5) ? 'success' : 'canceled' }, 30_000);
      await this.waitForEnd(runner, name);
    }
  }

  /** Polls until the checkpoint ends; in needs attention it waits for the operator (or the stop). */
  private async waitForEnd(runner: ChaosRunner, name: string): Promise<void> {
    for (;;) {
      const reply = await runner.agent.request('status', { checkpoint_name: name }, 30_000);
      const state = reply.status === 'ok' ? String(reply.data?.state) : 'unknown';
      if (['deleted', 'reset', 'gc_reset', 'create_failed', 'released'].includes(state)) return;
      if (this.stopping && state === 'needs_attention') return;
      await sleep(500);
    }
  }

  liveUrl(): string | undefined {
    const i = this.stack.controllers.findIndex((c) => c.running);
    return i >= 0 ? this.stack.urls[i] : undefined;
  }

  async httpFinalize(runner: ChaosRunner, name: string, status: string): Promise<number> {
    const url = this.liveUrl();
    if (!url) return 0;
    try {
      const res = await fetch(`${url}/checkpoint/finalize`, {
        method: 'POST',
        headers: { authorization: `Bearer ${runner.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ checkpoint_name: name, status, source: 'hook' }),
        signal: AbortSignal.timeout(30_000),
      });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return 0;
    }
  }

  async admin(method: 'GET' | 'POST', route: string, body?: unknown): Promise<{ status: number; json: any }> {
    const url = this.liveUrl();
    if (!url) return { status: 0, json: null };
    try {
      const res = await fetch(`${url}${route}`, {
        method,
        headers: { authorization: `Bearer ${this.stack.adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : null };
    } catch {
      return { status: 0, json: null };
    }
  }

  newIntent(): number {
    return this.nextIntent++;
  }

  /** One operator click: retry or release, recorded with its answer. */
  async operatorClick(name: string, runnerId: string, action: 'retry' | 'release', intent: number, deleteSnapshot = true): Promise<number> {
    const at = Date.now();
    const route = action === 'retry' ? `/api/checkpoints/${name}/retry-reset` : `/api/checkpoints/${name}/release`;
    const { status } = await this.admin('POST', route, action === 'release' ? { deleteSnapshot } : undefined);
    this.truth.operator.push({ checkpoint: name, runnerId, action, ...(action === 'release' ? { deleteSnapshot } : {}), intent, status, at });
    return status;
  }

  runnerOf(runnerId: string): ChaosRunner | undefined {
    return this.runners.find((r) => r.runnerId === runnerId);
  }

  /** Ground truth that is read at the end: GitLab pause calls and snapshots left on the VMs. */
  collectEndTruth(): void {
    const byGitlabId = new Map(this.runners.map((r) => [r.gitlabRunnerId, r.runnerId]));
    for (const call of this.gitlab.api.calls({ endpoint: 'updateRunner' })) {
      const id = Number(call.path.split('/').pop());
      const body = call.body as { paused?: unknown } | undefined;
      if (call.status !== 200 || typeof body?.paused !== 'boolean' || !byGitlabId.has(id)) continue;
      const paused = body.paused === true || String(body.paused) === 'true';
      this.truth.pauses.push({ runnerId: byGitlabId.get(id)!, paused, at: Date.parse(call.at) });
    }
    for (const runner of this.runners) {
      if (!runner.vmid) continue;
      for (const name of this.proxmox.sim.state.vm(runner.vmid).snapshots.keys()) this.truth.snapshotsLeft.push({ runnerId: runner.runnerId, vmid: runner.vmid, name });
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.runners.map((r) => r.agent?.stop()));
    await this.stack?.stop();
    await this.gitlab?.stop();
    await this.proxmox?.stop();
  }
}
