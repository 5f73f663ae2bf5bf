// In-memory stand-ins behind the activity interfaces, for workflow tests on the time-skipping
// server. They keep just enough state (claims, projections, VM and agent session) to check what
// the workflow did, and they fail on demand.
import { Context } from '@temporalio/activity';
import { E2epoolError, type ErrorCode } from '../../src/domain/errors.js';
import { withFailureMapping } from '../../activities/failure-mapping.js';
import type {
  AgentActivities,
  AgentCommandInput,
  AgentCommandResult,
  AgentRoute,
  BackendActivities,
  CheckpointActivities,
  CiActivities,
  ClaimResult,
  ProjectionInput,
  RouteActivities,
  RunnerPlan,
  StoreActivities,
} from '../../activities/types.js';
import { gatewayTaskQueue } from '../../activities/types.js';
import type { JobObservation, RunnerJobsObservation } from '../../src/domain/decisions.js';
import type { FinalizeStatus } from '../../src/domain/finalize.js';

export const GATEWAY_INSTANCE = 'gw-test';


interface Failure {
  code: ErrorCode;
  message: string;
  /** How many calls fail; undefined = every call. */
  times?: number;
}

export class FakeWorld {
  rows = new Map<string, { state: string; holdsClaim: boolean; finalizeStatus?: string; finalizeSource?: string; needsAttentionReason?: string | null; epochAtReset?: number }>();
  projections: ProjectionInput[] = [];
  calls: Array<{ name: string; attempt: number; ref?: string }> = [];
  alerts: Array<{ key: string; severity: string; resolved: boolean }> = [];
  plan: RunnerPlan = {
    exists: true,
    active: true,
    backend: 'proxmox',
    successAction: 'cleanup',
    resetMode: 'reboot',
    pauseMethod: 'gitlab',
    hasReadinessCommand: true,
    hasCleanupCommand: false,
    vmid: 100,
  };
  claimResult: ClaimResult | null = null;
  failures = new Map<string, Failure>();
  jobObservation: JobObservation = { kind: 'running' };
  /** Set to make the poller report the job finished. */
  watchOutcome: FinalizeStatus | null = null;
  runningJobs: RunnerJobsObservation[] = [];
  paused = false;
  snapshotExists = false;
  /** Rollbacks started on the "hypervisor": a retried activity must attach, not start another. */
  rollbacksStarted = 0;
  rollbackInProgress = false;
  epochCounter = 100;
  agent: { epoch: number; legacy: boolean; declared: string[] | null; bootId?: string | null } | null = { epoch: 1, legacy: false, declared: ['reset', 'cleanup', 'readiness'], bootId: 'boot-1' };
  reconnectDuringStop = false;
  /** Whether the agent comes back with a new session after a reset. */
  agentReconnectsAfterReset = true;
  commandResults = new Map<string, AgentCommandResult | 'lose_session'>();
  /**
   * One-shot outcomes per command name, used before `commandResults`: `not_delivered` (never sent),
   * `lost` (sent, the session drops, the command did not run), `ran_then_lost` (it ran, then the
   * session dropped: same boot id), `rebooted` (it ran and the host rebooted: new boot id).
   */
  commandScript = new Map<string, Array<'not_delivered' | 'lost' | 'ran_then_lost' | 'rebooted' | 'rebooted_hello_late' | 'ran_then_worker_failed' | 'lost_by_drain' | 'ran_then_instance_died'>>();
  /** Route lookups that see the new session before its hello is recorded (no boot id, no commands). */
  routesBeforeHello = 0;
  /** Commands that really ran on the host (not the ones that were lost or never sent). */
  commandsExecuted: AgentCommandInput[] = [];
  /** Real-time delay of a projection, by event type (a slow database). */
  projectionDelayMs = new Map<string, number>();
  private bootCounter = 1;
  /** Real-time duration of takeSnapshot. */
  takeSnapshotDelayMs = 0;
  commandsRun: AgentCommandInput[] = [];
  /** Makes the first rollback attempt hang until cancelled (a worker dying mid-reset). */
  hangFirstRollback = false;
  rollbackHanging: Promise<void> | null = null;
  private signalRollbackHanging: (() => void) | null = null;

  constructor() {
    this.rollbackHanging = new Promise((resolve) => (this.signalRollbackHanging = resolve));
  }

  private record(name: string, ref?: string) {
    let attempt = 1;
    try {
      attempt = Context.current().info.attempt;
    } catch {
      /* not in an activity */
    }
    this.calls.push({ name, attempt, ref });
  }

  private maybeFail(name: string) {
    const failure = this.failures.get(name);
    if (!failure) return;
    if (failure.times !== undefined) {
      if (failure.times <= 0) return;
      failure.times -= 1;
    }
    throw new E2epoolError(failure.code, failure.message);
  }

  callCount(name: string) {
    return this.calls.filter((c) => c.name === name).length;
  }

  statesOf(name: string): string[] {
    return this.projections.filter((p) => p.name === name && !p.event.endsWith('_ignored')).map((p) => p.to);
  }

  private newSession() {
    if (this.agent && this.agentReconnectsAfterReset) this.agent = { ...this.agent, epoch: ++this.epochCounter };
  }

  activities(): CheckpointActivities {
    const store: StoreActivities = {
      claimRunner: async (input) => {
        this.record('claimRunner', input.name);
        this.maybeFail('claimRunner');
        if (this.claimResult) return this.claimResult;
        for (const [name, row] of this.rows) {
          if (row.holdsClaim && name !== input.name) return { ok: false, code: 'conflict', detail: `Active checkpoint '${name}' already exists for runner '${input.runnerId}'` };
        }
        if (!this.rows.has(input.name)) this.rows.set(input.name, { state: 'creating', holdsClaim: true });
        return { ok: true, createdAtMs: Date.now(), ...(input.includePlan ? { plan: { ...this.plan } } : {}) };
      },
      recordProgress: async (input) => {
        this.record('recordProgress', input.name);
        for (const t of input.transitions) {
          await this.project({ name: input.name, runnerId: input.runnerId, seq: t.seq, from: t.from, to: t.to, event: t.event, detail: t.detail, fields: t.fields }, t.releaseClaim === true);
        }
        for (const key of input.resolveAlerts ?? []) for (const a of this.alerts) if (a.key === key) a.resolved = true;
        for (const a of input.raiseAlerts ?? []) if (!this.alerts.some((x) => x.key === a.key && !x.resolved)) this.alerts.push({ key: a.key, severity: a.severity, resolved: false });
        if (!input.takeEpochWatermark) return { epochWatermark: null };
        const epoch = ++this.epochCounter;
        const row = this.rows.get(input.name);
        if (row) row.epochAtReset = epoch;
        return { epochWatermark: epoch };
      },
      projectTransition: async (p) => this.project(p, false),
      releaseClaim: async (p) => this.project(p, true),
      loadRunnerPlan: async () => ({ ...this.plan }),
      takeEpochWatermark: async () => ++this.epochCounter,
      raiseAlert: async (a) => {
        if (!this.alerts.some((x) => x.key === a.key && !x.resolved)) this.alerts.push({ key: a.key, severity: a.severity, resolved: false });
      },
      resolveAlert: async ({ key }) => {
        for (const a of this.alerts) if (a.key === key) a.resolved = true;
      },
    };
    const backend: BackendActivities = {
      takeSnapshot: async (ref) => {
        this.record('takeSnapshot', ref.name);
        if (this.takeSnapshotDelayMs) await new Promise((resolve) => setTimeout(resolve, this.takeSnapshotDelayMs));
        this.maybeFail('takeSnapshot');
        this.snapshotExists = true;
        return { vmid: this.plan.vmid };
      },
      deleteSnapshot: async (ref) => {
        this.record('deleteSnapshot', ref.name);
        this.maybeFail('deleteSnapshot');
        this.snapshotExists = false;
      },
      assertVmUnchanged: async (ref) => {
        this.record('assertVmUnchanged', ref.name);
        this.maybeFail('assertVmUnchanged');
      },
      stopVm: async (ref) => {
        this.record('stopVm', ref.name);
        this.maybeFail('stopVm');
        // The old boot's agent reconnects (a network blip) just before the VM goes down.
        if (this.agent && this.reconnectDuringStop) this.agent = { ...this.agent, epoch: ++this.epochCounter };
      },
      rollbackVm: async (ref) => {
        this.record('rollbackVm', ref.name);
        this.maybeFail('rollbackVm');
        if (!this.rollbackInProgress) {
          this.rollbacksStarted += 1;
          this.rollbackInProgress = true;
        }
        if (this.hangFirstRollback && Context.current().info.attempt === 1) {
          this.signalRollbackHanging?.();
          await new Promise<void>((_, reject) => Context.current().cancellationSignal.addEventListener('abort', () => reject(new Error('worker died'))));
        }
        this.rollbackInProgress = false;
      },
      startVm: async (ref) => {
        this.record('startVm', ref.name);
        this.maybeFail('startVm');
        this.newSession();
      },
    };
    const ci: CiActivities = {
      pauseRunner: async (ref) => {
        this.record('pauseRunner', ref.name);
        this.maybeFail('pauseRunner');
        this.paused = true;
      },
      unpauseRunner: async (ref) => {
        this.record('unpauseRunner', ref.name);
        this.maybeFail('unpauseRunner');
        this.paused = false;
      },
      listRunningJobs: async (ref) => {
        this.record('listRunningJobs', ref.name);
        return this.runningJobs.shift() ?? { kind: 'jobs', jobIds: [] };
      },
      observeJob: async (ref) => {
        this.record('observeJob', ref.name);
        this.maybeFail('observeJob');
        return this.jobObservation;
      },
      watchJob: async (input) => {
        this.record('watchJob', input.name);
        for (;;) {
          if (this.watchOutcome) return { outcome: this.watchOutcome };
          Context.current().heartbeat();
          await Context.current().sleep(50);
        }
      },
    };
    const routes: RouteActivities = {
      resolveAgentRoute: async (): Promise<AgentRoute | null> => {
        if (!this.agent) return null;
        if (this.routesBeforeHello > 0) {
          this.routesBeforeHello -= 1;
          return { instanceId: GATEWAY_INSTANCE, taskQueue: gatewayTaskQueue(GATEWAY_INSTANCE), sessionEpoch: this.agent.epoch, legacy: true, connectedForSeconds: 0, declaredCommands: null, bootId: null };
        }
        return { instanceId: GATEWAY_INSTANCE, taskQueue: gatewayTaskQueue(GATEWAY_INSTANCE), sessionEpoch: this.agent.epoch, legacy: this.agent.legacy, connectedForSeconds: 3600, declaredCommands: this.agent.declared, bootId: this.agent.bootId ?? null };
      },
    };
    return withFailureMapping({ ...store, ...backend, ...ci, ...routes } as any) as CheckpointActivities;
  }

  agentActivities(): AgentActivities {
    return withFailureMapping({
      runAgentCommand: async (input: AgentCommandInput): Promise<AgentCommandResult> => {
        this.commandsRun.push(input);
        if (!this.agent) throw new E2epoolError('agent_not_delivered', 'agent not connected');
        if (input.expectedEpoch !== this.agent.epoch) throw new E2epoolError('agent_stale_route', 'session changed');
        if (this.agent.declared && !this.agent.declared.includes(input.name)) throw new E2epoolError('command_not_declared', `command '${input.name}' is not declared`);
        const scripted = this.commandScript.get(input.name)?.shift();
        if (scripted === 'not_delivered') throw new E2epoolError('agent_not_delivered', 'the session closed before the command was sent');
        if (scripted === 'lost') {
          this.agent = { ...this.agent, epoch: ++this.epochCounter };
          throw new E2epoolError('agent_not_connected', 'session lost before the command ran', { lost: true });
        }
        if (scripted === 'lost_by_drain') {
          // Sent; the instance drains and closes the session while the host still runs it.
          this.commandsExecuted.push(input);
          this.agent = { ...this.agent, epoch: ++this.epochCounter };
          throw new E2epoolError('agent_not_connected', 'controller instance is shutting down', { lost: true, draining: true });
        }
        if (scripted === 'ran_then_worker_failed') {
          // The host ran it; the instance failed before answering (a shutdown, a crash).
          this.commandsExecuted.push(input);
          throw new E2epoolError('internal', 'worker shutting down');
        }
        if (scripted === 'ran_then_instance_died') {
          // The host ran it (no reboot); the instance holding the session died, so the agent
          // reconnected elsewhere with a new session while the activity failed.
          this.commandsExecuted.push(input);
          this.agent = { ...this.agent, epoch: ++this.epochCounter };
          throw new E2epoolError('internal', 'worker shutting down');
        }
        if (scripted === 'rebooted_hello_late') {
          this.commandsExecuted.push(input);
          this.agent = { ...this.agent, epoch: ++this.epochCounter, bootId: `boot-${++this.bootCounter}` };
          this.routesBeforeHello = 2;
          throw new E2epoolError('agent_not_connected', 'session lost while the command ran', { lost: true });
        }
        if (scripted === 'ran_then_lost' || scripted === 'rebooted') {
          this.commandsExecuted.push(input);
          this.agent = { ...this.agent, epoch: ++this.epochCounter, ...(scripted === 'rebooted' ? { bootId: `boot-${++this.bootCounter}` } : {}) };
          throw new E2epoolError('agent_not_connected', 'session lost while the command ran', { lost: true });
        }
        const result = this.commandResults.get(input.name);
        if (result === 'lose_session') {
          this.newSession();
          throw new E2epoolError('agent_not_connected', 'session lost while the command ran', { lost: true });
        }
        if (input.name === 'reset') this.newSession();
        this.commandsExecuted.push(input);
        return result ?? { ok: true, exitCode: 0, stdout: '', stderr: '', durationMs: 1 };
      },
    }) as AgentActivities;
  }

  private async project(p: ProjectionInput, release: boolean) {
    const delay = this.projectionDelayMs.get(p.event);
    if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
    if (this.projections.some((x) => x.name === p.name && x.seq === p.seq)) return;
    this.projections.push(p);
    const row = this.rows.get(p.name) ?? { state: 'creating', holdsClaim: true };
    row.state = p.to;
    if (release) row.holdsClaim = false;
    if (p.fields?.finalizeStatus) row.finalizeStatus = p.fields.finalizeStatus;
    if (p.fields?.finalizeSource) row.finalizeSource = p.fields.finalizeSource;
    if (p.fields?.needsAttentionReason !== undefined) row.needsAttentionReason = p.fields.needsAttentionReason;
    if (p.fields?.epochAtReset !== undefined) row.epochAtReset = p.fields.epochAtReset;
    this.rows.set(p.name, row);
  }
}
