// Controller → agent commands. `run` (current protocol) names a command declared in this agent's
// config and carries a command id for de-duplication; `exec` (e2epool's raw shell command) runs
// only when the operator set allow_remote_commands: true.
import { runShellCommand, type CommandResult } from './command-runner.js';
import { CommandDedupeStore, DEFAULT_COMMAND_MEMORY_MS } from './command-dedupe.js';
import type { AgentLogger } from './log.js';

export const DEFAULT_COMMAND_TIMEOUT_SECONDS = 120;
export const REMOTE_COMMANDS_DISABLED =
  'remote commands are disabled on this agent (allow_remote_commands: false)';

export interface CommandHandlerOptions {
  commands: Record<string, string>;
  allowRemoteCommands: boolean;
  maxOutputBytes: number;
  killGraceSeconds: number;
  commandMemoryMs?: number;
  logger: AgentLogger;
  /** The environment commands run with (minimal and declared, not the agent's own). */
  env?: NodeJS.ProcessEnv;
  /** Values removed from command output wherever they appear (the agent's own token). */
  secrets?: string[];
}

/** PATH, HOME and LANG from the agent's environment, plus what the config declares. */
export function commandEnvironment(declared: Record<string, string>, from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    PATH: from.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: from.HOME || '/',
    LANG: from.LANG || 'C.UTF-8',
    ...declared,
  };
}

function stripSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out;
}

type ReplyError = { code: number; detail: string } | null;
export type CommandReply = Record<string, unknown> & { id: string; status: 'ok' | 'error' };

function readTimeout(value: unknown): number | null {
  if (value === undefined || value === null) return DEFAULT_COMMAND_TIMEOUT_SECONDS;
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value;
  return null;
}

function asPayload(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

export class CommandHandler {
  private readonly dedupe: CommandDedupeStore<CommandResult>;
  private inFlight = 0;

  constructor(private readonly opts: CommandHandlerOptions) {
    this.dedupe = new CommandDedupeStore(opts.commandMemoryMs ?? DEFAULT_COMMAND_MEMORY_MS);
  }

  /** Commands currently running (shutdown waits for them within the grace time). */
  get running(): number {
    return this.inFlight;
  }

  get declaredCommands(): string[] {
    return Object.keys(this.opts.commands).sort();
  }

  /** True for the message types this handler answers. */
  static handles(message: Record<string, unknown>): boolean {
    return message.type === 'run' || message.type === 'exec';
  }

  async handle(message: Record<string, unknown>): Promise<CommandReply> {
    const id = typeof message.id === 'string' ? message.id : '';
    const payload = asPayload(message.payload);
    return message.type === 'exec' ? this.handleExec(id, payload) : this.handleRun(id, payload);
  }

  private async execute(cmd: string, timeoutSeconds: number): Promise<CommandResult> {
    this.inFlight += 1;
    try {
      const result = await runShellCommand(cmd, {
        timeoutSeconds,
        maxOutputBytes: this.opts.maxOutputBytes,
        killGraceSeconds: this.opts.killGraceSeconds,
        env: this.opts.env ?? commandEnvironment({}),
      });
      const secrets = this.opts.secrets ?? [];
      return secrets.length ? { ...result, stdout: stripSecrets(result.stdout, secrets), stderr: stripSecrets(result.stderr, secrets) } : result;
    } finally {
      this.inFlight -= 1;
    }
  }

  private async handleRun(id: string, payload: Record<string, unknown>): Promise<CommandReply> {
    const name = payload.command;
    const commandId = payload.command_id;
    const timeout = readTimeout(payload.timeout);
    if (typeof name !== 'string' || !name || (commandId !== undefined && (typeof commandId !== 'string' || !commandId)) || timeout === null) {
      return runReply(id, null, { code: 400, detail: 'run needs payload.command (string), payload.command_id (string) and a positive payload.timeout' });
    }
    const cmd = Object.prototype.hasOwnProperty.call(this.opts.commands, name) ? this.opts.commands[name] : undefined;
    if (cmd === undefined) {
      this.opts.logger.warn({ command: name, commandId }, 'controller asked for a command this agent does not declare');
      return runReply(id, { exitCode: -1, stdout: '', stderr: `command '${name}' is not declared in this agent's config`, durationMs: 0, timedOut: false }, { code: 404, detail: 'command_not_declared' });
    }
    if (typeof commandId !== 'string') {
      return runReply(id, await this.logged(name, undefined, () => this.execute(cmd, timeout)), null);
    }
    const outcome = await this.dedupe.runOnce(commandId, name, () => this.logged(name, commandId, () => this.execute(cmd, timeout)));
    if ('conflict' in outcome) return runReply(id, null, { code: 409, detail: outcome.conflict });
    if (outcome.replayed) this.opts.logger.info({ command: name, commandId }, 'repeated command id: answered with the same run');
    return runReply(id, outcome.result, null);
  }

  private async handleExec(id: string, payload: Record<string, unknown>): Promise<CommandReply> {
    if (!this.opts.allowRemoteCommands) {
      this.opts.logger.warn('refused a raw exec command from the controller (allow_remote_commands is false)');
      return execReply(id, { exitCode: -1, stdout: '', stderr: REMOTE_COMMANDS_DISABLED });
    }
    const cmd = typeof payload.cmd === 'string' ? payload.cmd : '';
    const timeout = readTimeout(payload.timeout) ?? DEFAULT_COMMAND_TIMEOUT_SECONDS;
    const result = await this.logged('exec', undefined, () => this.execute(cmd, timeout));
    return execReply(id, result);
  }

  private async logged(command: string, commandId: string | undefined, fn: () => Promise<CommandResult>): Promise<CommandResult> {
    this.opts.logger.info({ command, commandId }, 'running command');
    const result = await fn();
    this.opts.logger.info(
      { command, commandId, exitCode: result.exitCode, durationMs: result.durationMs, timedOut: result.timedOut },
      'command finished',
    );
    return result;
  }
}

function runReply(id: string, result: CommandResult | null, error: ReplyError): CommandReply {
  return {
    id,
    status: result && result.exitCode === 0 && !error ? 'ok' : 'error',
    data: result
      ? { exit_code: result.exitCode, stdout: result.stdout, stderr: result.stderr, duration_ms: result.durationMs }
      : null,
    error,
  };
}

/** e2epool's exec reply: status ok iff exit code 0. */
function execReply(id: string, result: Pick<CommandResult, 'exitCode' | 'stdout' | 'stderr'>): CommandReply {
  return {
    id,
    status: result.exitCode === 0 ? 'ok' : 'error',
    data: { exit_code: result.exitCode, stdout: result.stdout, stderr: result.stderr },
  };
}
