// The activity interfaces the checkpoint workflow calls. Workflows import these as types only.
// Inputs carry ids, never configuration or secrets: activities look the runner up themselves.
import type { CheckpointState, NeedsAttentionReason } from '../src/domain/checkpoint-states.js';
import type { JobObservation, ResetMode, RunnerJobsObservation, SuccessAction } from '../src/domain/decisions.js';
import type { FinalizeStatus } from '../src/domain/finalize.js';

export interface CheckpointRef {
  name: string;
  runnerId: string;
}

export type ClaimResult =
  /** `plan` when the input asked for it: one database round trip for both. */
  | { ok: true; createdAtMs: number; plan?: RunnerPlan }
  | { ok: false; code: 'conflict' | 'cooldown' | 'maintenance' | 'draining' | 'runner_not_found'; detail: string; holderCleaning?: boolean };

export interface ClaimInput extends CheckpointRef {
  jobId: string;
  projectId?: string;
  backend: 'proxmox' | 'bare_metal';
  caller?: string;
  cooldownSeconds: number;
  includePlan?: boolean;
}

export interface ProjectionInput extends CheckpointRef {
  /** Workflow-assigned sequence number: re-projecting the same seq is a no-op. */
  seq: number;
  from: CheckpointState | null;
  to: CheckpointState;
  event: string;
  detail?: string;
  fields?: {
    finalizeStatus?: FinalizeStatus;
    finalizeSource?: string;
    finalizeQueuedAtMs?: number;
    needsAttentionReason?: NeedsAttentionReason | null;
    ttlExtensions?: number;
    epochAtReset?: number;
    vmid?: number;
  };
}

/** Facts about a runner that decide the workflow's path; no secrets, no connection details. */
export interface RunnerPlan {
  exists: boolean;
  active: boolean;
  backend: 'proxmox' | 'bare_metal';
  successAction: SuccessAction;
  resetMode: ResetMode;
  pauseMethod: 'gitlab' | 'agent' | 'none';
  hasReadinessCommand: boolean;
  hasCleanupCommand: boolean;
  vmid: number | null;
}

/** One transition to project, as the workflow numbered it. */
export interface ProjectedTransition {
  seq: number;
  from: CheckpointState | null;
  to: CheckpointState;
  event: string;
  detail?: string;
  fields?: ProjectionInput['fields'];
  /** Clears holds_claim in the same transaction. */
  releaseClaim?: boolean;
}

/**
 * Everything the workflow has to tell the database at one await point, in one local activity:
 * transitions in order, alerts raised and resolved, and optionally a new epoch watermark.
 */
export interface ProgressInput extends CheckpointRef {
  transitions: ProjectedTransition[];
  raiseAlerts?: AlertInput[];
  resolveAlerts?: string[];
  /** Take an epoch watermark (after the transitions) and record it as the row's epoch_at_reset. */
  takeEpochWatermark?: boolean;
}

export interface ProgressResult {
  epochWatermark: number | null;
}

export interface AlertInput {
  key: string;
  severity: 'info' | 'warning' | 'critical';
  message: string;
  runnerId?: string;
  checkpointName?: string;
}

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
