// The activity interfaces the checkpoint workflow calls. Workflows import these as types only.
// Inputs carry ids, never configuration or secrets: activities look the runner up themselves.
import type { JobObservation, RunnerJobsObservation } from '../src/domain/decisions.js';
import type { FinalizeStatus } from '../src/domain/finalize.js';
import type {
  AlertInput,
  CheckpointRef,
  ClaimInput,
  ClaimResult,
  ProgressInput,
  ProgressResult,
  ProjectionInput,
  RunnerPlan,
} from '../src/store/types.js';

// The store's records are part of the activity interfaces: workflows import them from here.
export type * from '../src/store/types.js';

export interface StoreActivities {
  claimRunner(input: ClaimInput): Promise<ClaimResult>;
  projectTransition(input: ProjectionInput): Promise<void>;
  /** Projects releasing_claim and clears holds_claim in one transaction. */
  releaseClaim(input: ProjectionInput): Promise<void>;
  loadRunnerPlan(input: { runnerId: string }): Promise<RunnerPlan>;
  /** A session epoch greater than every epoch issued so far: sessions newer than the reset exceed it. */
  takeEpochWatermark(input: CheckpointRef): Promise<number>;
  raiseAlert(input: AlertInput): Promise<void>;
  resolveAlert(input: { key: string }): Promise<void>;
  recordProgress(input: ProgressInput): Promise<ProgressResult>;
}

export interface BackendActivities {
  /** Proxmox: ensure the snapshot exists (attaching to a running task). Bare metal: nothing to do. */
  takeSnapshot(input: CheckpointRef): Promise<{ vmid: number | null }>;
  /** With `snapshotTasksSinceMs`, snapshot tasks started since then are waited for first (compensation). */
  deleteSnapshot(input: CheckpointRef & { snapshotTasksSinceMs?: number }): Promise<void>;
  /** Guard before destructive calls: the VM is still the one recorded at create. */
  assertVmUnchanged(input: CheckpointRef & { vmid: number | null }): Promise<void>;
  stopVm(input: CheckpointRef): Promise<void>;
  rollbackVm(input: CheckpointRef): Promise<void>;
  startVm(input: CheckpointRef): Promise<void>;
}

export interface CiActivities {
  pauseRunner(input: CheckpointRef): Promise<void>;
  unpauseRunner(input: CheckpointRef): Promise<void>;
  listRunningJobs(input: CheckpointRef): Promise<RunnerJobsObservation>;
  observeJob(input: CheckpointRef & { jobId: string; projectId?: string }): Promise<JobObservation>;
  /** Heartbeating: polls the job until it is terminal, then returns its outcome. */
  watchJob(input: CheckpointRef & { jobId: string; projectId: string; intervalSeconds: number }): Promise<{ outcome: FinalizeStatus }>;
}

export interface AgentRoute {
  instanceId: string;
  /** The task queue of the instance holding the session (absent in routes recorded by older runs). */
  taskQueue?: string;
  sessionEpoch: number;
  legacy: boolean;
  connectedForSeconds: number;
  declaredCommands: string[] | null;
  /** What the agent reported in its hello (null for legacy agents or when unknown). */
  bootId?: string | null;
}

export interface RouteActivities {
  resolveAgentRoute(input: { runnerId: string }): Promise<AgentRoute | null>;
}

export interface AgentCommandInput {
  runnerId: string;
  name: 'reset' | 'cleanup' | 'readiness' | 'pause_runner' | 'unpause_runner';
  commandId: string;
  timeoutSeconds: number;
  expectedEpoch: number;
}

export type AgentCommandResult =
  | { ok: true; exitCode: 0; stdout: string; stderr: string; durationMs: number }
  | { ok: false; exitCode: number; stdout: string; stderr: string; durationMs: number };

/** Runs on the task queue of the instance that holds the agent's socket. */
export interface AgentActivities {
  runAgentCommand(input: AgentCommandInput): Promise<AgentCommandResult>;
}

export type CheckpointActivities = StoreActivities & BackendActivities & CiActivities & RouteActivities;

export const gatewayTaskQueue = (instanceId: string) => `e2epool-gw-${instanceId}`;
