// What `e2epool create|finalize|status` do, as functions that return the exit code and the text
// to print, so the yargs wrappers stay thin and tests need no subprocess. Exit codes as e2epool:
// 0 ok, 1 error, 2 agent not running.
import { statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadAgentConfig } from './config.js';
import { groupNameOf } from './groups.js';
import { IpcClientError, sendIpcRequest } from './ipc-client.js';
import { AGENT_STATUS_TYPE } from './ipc-requests.js';
import { normaliseFinalizeStatus, type FinalizeStatusArg } from './finalize-status.js';

export interface CliOutcome {
  exitCode: 0 | 1 | 2;
  stdout: string;
  stderr: string;
}

export interface CliContext {
  /** `--socket`; else E2EPOOL_SOCKET_PATH, else socket_path from the config file, else the default. */
  socket?: string;
  env?: NodeJS.ProcessEnv;
  /** Overrides the client-side wait (tests). */
  timeoutMs?: number;
  /** Called every `progressIntervalMs` while a create waits, with one line for CI logs (stderr). */
  progress?: (line: string) => void;
  /** Default 10 s. */
  progressIntervalMs?: number;
}

/** Margin over the agent's own deadline so the agent's answer, not the client's timer, wins. */
const CLIENT_MARGIN_MS = 30_000;

interface Resolved {
  socketPath: string;
  createTimeoutMs: number;
  requestTimeoutMs: number;
}

function resolveContext(ctx: CliContext): Resolved {
  const env = ctx.env ?? process.env;
  try {
    // The CLI runs as the CI user, who usually cannot read the root-only config: skip it then.
    const { config } = loadAgentConfig({ env, skipUnreadableFile: true });
    return {
      socketPath: ctx.socket || config.socketPath,
      createTimeoutMs: config.createTimeout * 1000 + CLIENT_MARGIN_MS,
      requestTimeoutMs: config.requestTimeout * 1000 + CLIENT_MARGIN_MS,
    };
  } catch {
    return {
      socketPath: ctx.socket || env.E2EPOOL_SOCKET_PATH || '/var/run/e2epool-agent.sock',
      createTimeoutMs: 330_000 + CLIENT_MARGIN_MS,
      requestTimeoutMs: 30_000 + CLIENT_MARGIN_MS,
    };
  }
}

function fail(message: string, exitCode: 1 | 2 = 1): CliOutcome {
  return { exitCode, stdout: '', stderr: `Error: ${message}\n` };
}

function socketGroupName(socketPath: string): string {
  try {
    return groupNameOf(statSync(socketPath).gid);
  } catch {
    return "the socket's group";
  }
}

function transportFailure(err: unknown, socketPath: string): CliOutcome {
  if (!(err instanceof IpcClientError)) return fail(String((err as any)?.message ?? err));
  switch (err.kind) {
    case 'socket_not_found':
      return fail(`agent is not running (socket not found: ${socketPath})`, 2);
    case 'connection_refused':
      return fail(`agent is not running (connection refused on ${socketPath})`, 2);
    case 'permission_denied':
      return fail(`permission denied on ${socketPath}: add this user to group ${socketGroupName(socketPath)}`);
    default:
      return fail(err.message);
  }
}

function errorDetail(reply: Record<string, unknown>): string {
  const error = reply.error;
  if (typeof error === 'string' && error) return error;
  if (error && typeof error === 'object') {
    const detail = (error as Record<string, unknown>).detail;
    if (typeof detail === 'string' && detail) return detail;
    if (detail !== undefined) return JSON.stringify(detail);
  }
  return 'Unknown error';
}

async function call(
  ctx: CliContext,
  type: string,
  payload: Record<string, unknown>,
  wait: keyof Pick<Resolved, 'createTimeoutMs' | 'requestTimeoutMs'>,
): Promise<{ data: Record<string, unknown> } | { outcome: CliOutcome }> {
  const resolved = resolveContext(ctx);
  const request = { id: randomBytes(4).toString('hex'), type, payload };
  let reply: Record<string, unknown>;
  try {
    reply = await sendIpcRequest(resolved.socketPath, request, { timeoutMs: ctx.timeoutMs ?? resolved[wait] });
  } catch (err) {
    return { outcome: transportFailure(err, resolved.socketPath) };
  }
  if (reply.status !== 'ok') return { outcome: fail(errorDetail(reply)) };
  const data = reply.data;
  return { data: data && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : {} };
}

function ok(text: string): CliOutcome {
  return { exitCode: 0, stdout: text.endsWith('\n') ? text : `${text}\n`, stderr: '' };
}

export async function createCheckpoint(args: { jobId: string; projectId?: string }, ctx: CliContext = {}): Promise<CliOutcome> {
  const payload: Record<string, unknown> = { job_id: args.jobId };
  if (args.projectId) payload.project_id = args.projectId;
  const started = Date.now();
  const every = ctx.progressIntervalMs ?? 10_000;
  // The agent answers once, when the controller has claimed the runner and taken the snapshot:
  // until then say how long it has been, so a CI log shows where the time goes.
  const ticker = ctx.progress
    ? setInterval(() => {
        const waited = Math.round((Date.now() - started) / 1000);
        ctx.progress!(`e2epool create: waiting for the checkpoint of job ${args.jobId} (runner claim and snapshot), ${waited} s …`);
      }, every)
    : undefined;
  let result: Awaited<ReturnType<typeof call>>;
  try {
    result = await call(ctx, 'create', payload, 'createTimeoutMs');
  } finally {
    clearInterval(ticker);
  }
  if ('outcome' in result) return result.outcome;
  const name = result.data.name;
  if (typeof name !== 'string' || !name) return fail('controller reply has no checkpoint name');
  return ok(name);
}

export async function finalizeCheckpoint(args: { checkpoint: string; status: FinalizeStatusArg }, ctx: CliContext = {}): Promise<CliOutcome> {
  const payload = { checkpoint_name: args.checkpoint, status: normaliseFinalizeStatus(args.status), source: 'agent' };
  const result = await call(ctx, 'finalize', payload, 'requestTimeoutMs');
  if ('outcome' in result) return result.outcome;
  const detail = result.data.detail;
  return ok(typeof detail === 'string' && detail ? detail : 'OK');
}

export async function checkpointStatus(args: { checkpoint: string; json?: boolean }, ctx: CliContext = {}): Promise<CliOutcome> {
  const result = await call(ctx, 'status', { checkpoint_name: args.checkpoint }, 'requestTimeoutMs');
  if ('outcome' in result) return result.outcome;
  const data = result.data;
  if (args.json) return ok(JSON.stringify(data, null, 2));
  const lines = [`name:   ${String(data.name ?? args.checkpoint)}`, `state:  ${String(data.state ?? '')}`];
  if (data.finalize_status) lines.push(`result: ${String(data.finalize_status)}`);
  return ok(lines.join('\n'));
}

/** `e2epool status` without --checkpoint: the agent's own connection (answered even while offline). */
export async function agentStatus(args: { json?: boolean }, ctx: CliContext = {}): Promise<CliOutcome> {
  const result = await call(ctx, AGENT_STATUS_TYPE, {}, 'requestTimeoutMs');
  if ('outcome' in result) return result.outcome;
  const d = result.data;
  if (args.json) return ok(JSON.stringify(d, null, 2));
  const lines = [
    `runner:     ${String(d.runner_id ?? '')}`,
    `controller: ${String(d.controller_url ?? '')}`,
    `connected:  ${d.connected ? 'yes' : 'no'}`,
  ];
  if (d.connected) {
    lines.push(`protocol:   ${String(d.protocol ?? '')}`);
    if (d.session_epoch !== null && d.session_epoch !== undefined) lines.push(`session:    epoch ${String(d.session_epoch)} on ${String(d.instance_id ?? '?')}`);
  }
  lines.push(`version:    ${String(d.agent_version ?? '')}`);
  const commands = Array.isArray(d.commands) ? d.commands.join(', ') : '';
  lines.push(`commands:   ${commands || '(none declared)'}`);
  return ok(lines.join('\n'));
}
