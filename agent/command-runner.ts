// Runs one shell command the way e2epool's agent did (/bin/sh -c, output as UTF-8, exit -1 with a
// message on timeout or spawn failure) but in its own process group, so a timeout kills the whole
// tree, and with output capped while it is read.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

export interface RunCommandOptions {
  /** Seconds; the whole process group is killed when it runs longer. */
  timeoutSeconds: number;
  /** Bytes kept per stream; the rest is read and dropped. */
  maxOutputBytes: number;
  /** Seconds between SIGTERM and SIGKILL of the group on timeout. */
  killGraceSeconds: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** e2epool truncated each stream to this many characters. */
export const MAX_OUTPUT_CHARS = 65536;
/** After the shell exits, how long to wait for pipes held open by background children. */
const PIPE_DRAIN_MS = 300;

/** Collects a stream up to a byte cap without ever buffering more than the cap. */
class CappedBuffer {
  private parts: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  add(chunk: Buffer): void {
    const room = this.cap - this.size;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (part.length < chunk.length) this.truncated = true;
    this.parts.push(Buffer.from(part));
    this.size += part.length;
  }
  text(): string {
    const s = Buffer.concat(this.parts, this.size).toString('utf8');
    return s.length > MAX_OUTPUT_CHARS ? s.slice(0, MAX_OUTPUT_CHARS) : s;
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** Every process group started by this module and still running, for shutdown. */
const liveGroups = new Set<ChildProcess>();

/** Kills every running command's process group (agent shutdown). */
export function killAllCommandGroups(signal: NodeJS.Signals = 'SIGKILL'): number {
  for (const child of liveGroups) killGroup(child, signal);
  return liveGroups.size;
}

export function runShellCommand(cmd: string, opts: RunCommandOptions): Promise<CommandResult> {
  const started = Date.now();
  if (!cmd || !cmd.trim()) {
    return Promise.resolve({ exitCode: -1, stdout: '', stderr: 'Empty command', durationMs: 0, timedOut: false });
  }
  return new Promise((resolve) => {
    const stdout = new CappedBuffer(opts.maxOutputBytes);
    const stderr = new CappedBuffer(opts.maxOutputBytes);
    let settled = false;
    let timedOut = false;
    let exitCode: number | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    let child: ChildProcess;
    try {
      child = spawn('/bin/sh', ['-c', cmd], {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: opts.env ?? process.env,
        cwd: opts.cwd,
      });
    } catch (err: any) {
      resolve({ exitCode: -1, stdout: '', stderr: String(err?.message ?? err), durationMs: Date.now() - started, timedOut: false });
      return;
    }
    liveGroups.add(child);

    const finish = (result: Omit<CommandResult, 'durationMs' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeoutTimer);
      clearTimeout(drainTimer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({ ...result, durationMs: Date.now() - started, timedOut });
    };

    child.stdout!.on('data', (c: Buffer) => stdout.add(c));
    child.stderr!.on('data', (c: Buffer) => stderr.add(c));

    const timeoutTimer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), opts.killGraceSeconds * 1000);
      killTimer.unref();
      finish({ exitCode: -1, stdout: stdout.text(), stderr: `Command timed out after ${opts.timeoutSeconds}s` });
    }, opts.timeoutSeconds * 1000);

    child.on('error', (err) => {
      liveGroups.delete(child);
      finish({ exitCode: -1, stdout: stdout.text(), stderr: err.message });
    });
    child.on('exit', (code, signal) => {
      liveGroups.delete(child);
      // Like Python's returncode: killed by a signal → minus the signal number.
      exitCode = code ?? (signal ? -(osConstants.signals[signal] ?? 1) : 0);
      // Background children may keep the pipes open; do not wait on them for long.
      drainTimer = setTimeout(() => {
        finish({ exitCode: exitCode ?? -1, stdout: stdout.text(), stderr: stderr.text() });
      }, PIPE_DRAIN_MS);
    });
    child.on('close', () => {
      if (exitCode !== null) finish({ exitCode, stdout: stdout.text(), stderr: stderr.text() });
    });
  });
}
