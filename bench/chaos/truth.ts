// Ground truth of a chaos run: what really happened on the simulated hosts, hypervisor and GitLab,
// and what the harness itself did. The checker judges the controller by these records alone.
import type { CommandRecord } from '../lib/sim-agents.js';

export type RunnerKind = 'proxmox' | 'legacy_auto' | 'legacy_reboot' | 'current_reboot' | 'current_in_place';

export interface RunnerTruth {
  runnerId: string;
  kind: RunnerKind;
  gitlabRunnerId: number;
  vmid?: number;
  /** Reset mode as the controller is configured for it. */
  resetMode: 'reboot' | 'in_place' | 'auto';
  /** Whether its reset really reboots the host (the session drops and comes back). */
  resetReboots: boolean;
}

/** A command that ran on a host (replays from the agent's memory are marked). */
export type CommandTruth = CommandRecord;

export interface SessionTruth {
  runnerId: string;
  serial: number;
  bootId: string;
  open: boolean;
  at: number;
}

/** A Proxmox task as the simulator ran it. */
export interface TaskTruth {
  runnerId: string;
  vmid: number;
  type: string;
  snapname: string | null;
  upid: string;
  startedAt: number;
  endedAt: number | null;
  /** `OK` or the error text; null while running. */
  exitstatus: string | null;
}

/** A successful pause or unpause PUT that the GitLab simulator answered. */
export interface PauseTruth {
  runnerId: string;
  paused: boolean;
  at: number;
}

export type OperatorAction = 'retry' | 'release';

export interface OperatorTruth {
  checkpoint: string;
  runnerId: string;
  action: OperatorAction;
  deleteSnapshot?: boolean;
  /** Clicks of one intent (a double click) share it. */
  intent: number;
  status: number;
  at: number;
}

export interface CheckpointTruth {
  name: string;
  runnerId: string;
  jobId: number;
  /** When the agent's create was answered (null: the create was never answered to the agent). */
  createdAt: number | null;
}

export interface FaultTruth {
  kind: string;
  target: string;
  at: number;
}

export interface GroundTruth {
  runners: RunnerTruth[];
  commands: CommandTruth[];
  sessions: SessionTruth[];
  tasks: TaskTruth[];
  pauses: PauseTruth[];
  operator: OperatorTruth[];
  checkpoints: CheckpointTruth[];
  faults: FaultTruth[];
  /** At the end of the run: the `job-*` snapshots each VM still has. */
  snapshotsLeft: Array<{ runnerId: string; vmid: number; name: string }>;
}

/** The controller's final word on each checkpoint, and Temporal's facts on each workflow. */
export interface FinalFacts {
  checkpoints: Array<{ name: string; runnerId: string; state: string; needsAttentionReason: string | null }>;
  workflows: Array<{ workflowId: string; status: string; historyLength: number; workflowTaskFailures: number; workflowTaskFailure?: string }>;
}

export function emptyTruth(runners: RunnerTruth[]): GroundTruth {
  return { runners, commands: [], sessions: [], tasks: [], pauses: [], operator: [], checkpoints: [], faults: [], snapshotsLeft: [] };
}
