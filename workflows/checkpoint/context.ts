// What every part of one checkpoint run shares: its input, its state, its activities.
import type { CheckpointRef, RunnerPlan } from '../../activities/types.js';
import type { CheckpointTimings, CheckpointWorkflowInput } from '../messages.js';
import type { CheckpointActivityProxies } from './activities.js';
import type { AgentCommands } from './agent-commands.js';
import type { CheckpointRun } from './state.js';

export interface CheckpointContext {
  input: CheckpointWorkflowInput;
  t: CheckpointTimings;
  ref: CheckpointRef;
  run: CheckpointRun;
  acts: CheckpointActivityProxies;
  agent: AgentCommands;
}

/** After the claim: the runner's plan and the VM the snapshot was taken on. */
export interface ClaimedContext extends CheckpointContext {
  plan: RunnerPlan;
  vmid: number | null;
}
