// yargs definitions of the runner-host verbs (agent, create, finalize, status). Shared by the full
// `e2epool` CLI (src/cli/commands) and the standalone agent entry (agent/main.ts). The handlers load
// the client when they run, so that other verbs (admin, serve) do not pay for it at start.
import type { Argv } from 'yargs';
import type { CliOutcome } from './cli.js';
import { FINALIZE_STATUSES, type FinalizeStatusArg } from './finalize-status.js';

export interface RunnerHostCommand<A = any> {
  command: string;
  describe: string;
  builder: (y: Argv) => Argv<A>;
  handler: (args: A) => Promise<void>;
}

function emit(outcome: CliOutcome): void {
  if (outcome.stdout) process.stdout.write(outcome.stdout);
  if (outcome.stderr) process.stderr.write(outcome.stderr);
  // Let stdout drain instead of process.exit(): the exit code is applied when the loop ends.
  process.exitCode = outcome.exitCode;
}

const socketOption = {
  type: 'string',
  describe: 'IPC socket of the agent (default: E2EPOOL_SOCKET_PATH, socket_path of the config, /var/run/e2epool-agent.sock)',
} as const;

export const agentVerb: RunnerHostCommand<{ config?: string }> = {
  command: 'agent',
  describe: 'Run the runner-host agent daemon in the foreground',
  builder: (y) =>
    y.option('config', {
      type: 'string',
      describe: 'Agent YAML config (default: E2EPOOL_AGENT_CONFIG, else /etc/e2epool/agent.yml)',
    }),
  handler: async (args) => {
    const { runAgentProcess } = await import('./daemon.js');
    const code = await runAgentProcess({ configPath: args.config });
    // The daemon's timers and sockets are closed; exit now so nothing else keeps the process up.
    process.exit(code);
  },
};

export const createVerb: RunnerHostCommand<{ 'job-id': string; 'project-id'?: string; socket?: string }> = {
  command: 'create',
  describe: "Create a checkpoint for this runner's CI job (through the local agent); prints its name",
  builder: (y) =>
    y
      .option('job-id', { type: 'string', demandOption: true, describe: 'CI job id ($CI_JOB_ID)' })
      .option('project-id', { type: 'string', describe: 'CI project id (default: $CI_PROJECT_ID)' })
      .option('socket', socketOption),
  handler: async (args) => {
    const projectId = args['project-id'] || process.env.CI_PROJECT_ID || undefined;
    // Progress goes to stderr: stdout is the checkpoint name alone (CI captures it).
    const progress = (line: string) => void process.stderr.write(`${line}\n`);
    const { createCheckpoint } = await import('./cli.js');
    emit(await createCheckpoint({ jobId: String(args['job-id']), projectId }, { socket: args.socket, progress }));
  },
};

export const finalizeVerb: RunnerHostCommand<{ checkpoint: string; status: FinalizeStatusArg; socket?: string }> = {
  command: 'finalize',
  describe: 'Finalize a checkpoint (through the local agent); `failed` is read as `failure`',
  builder: (y) =>
    y
      .option('checkpoint', { type: 'string', demandOption: true, describe: 'Checkpoint name printed by create' })
      .option('status', { type: 'string', choices: FINALIZE_STATUSES, demandOption: true, describe: 'Job outcome ($CI_JOB_STATUS)' })
      .option('socket', socketOption) as Argv<any>,
  handler: async (args) => {
    const { finalizeCheckpoint } = await import('./cli.js');
    emit(await finalizeCheckpoint({ checkpoint: String(args.checkpoint), status: args.status }, { socket: args.socket }));
  },
};

export const statusVerb: RunnerHostCommand<{ checkpoint?: string; json?: boolean; socket?: string }> = {
  command: 'status',
  describe: "Show a checkpoint's state (through the local agent); without --checkpoint, the agent's own connection",
  builder: (y) =>
    y
      .option('checkpoint', { type: 'string', describe: 'Checkpoint name' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the JSON record' })
      .option('socket', socketOption),
  handler: async (args) => {
    const ctx = { socket: args.socket };
    const { agentStatus, checkpointStatus } = await import('./cli.js');
    emit(
      args.checkpoint
        ? await checkpointStatus({ checkpoint: args.checkpoint, json: args.json }, ctx)
        : await agentStatus({ json: args.json }, ctx),
    );
  },
};

export const runnerHostVerbs = [agentVerb, createVerb, finalizeVerb, statusVerb];
