// Running a command on a runner host through its live session: `run` by name for current agents,
// e2epool's raw `exec` for legacy ones, with every failure mapped to a stable error code.
import { randomBytes } from 'node:crypto';
import { E2epoolError } from '../domain/errors.js';
import { sanitizeOutput } from '../redaction.js';
import { parseCommandReply } from './envelope.js';
import type { AgentSession } from './session.js';

export interface AgentCommandRequest {
  /** `reset`, `cleanup`, `readiness` or any name the agent declares. */
  name: string;
  /** Deterministic id (`<workflowId>:<step>:<attempt>`): current agents de-duplicate on it. */
  commandId: string;
  timeoutSeconds: number;
  /** When given, the live session must carry exactly this epoch (else `agent_stale_route`). */
  expectedEpoch?: number;
  /** The inventory's raw command, sent to legacy agents only. */
  legacyCmd?: string;
}

export interface AgentCommandOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** How long after the command's own timeout we still wait for its reply. */
export const DEFAULT_REPLY_GRACE_SECONDS = 30;

const DETAIL_OUTPUT_CHARS = 300;

export function newMessageId(): string {
  return randomBytes(6).toString('hex');
}

/** Checks the request against the session and builds the frame to send, or throws. */
export function commandFrame(session: AgentSession | undefined, runnerId: string, request: AgentCommandRequest): { id: string; frame: string } {
  if (!session || !session.isOpen) throw new E2epoolError('agent_not_delivered', `Agent ${runnerId} not connected`);
  if (request.expectedEpoch !== undefined && request.expectedEpoch !== session.sessionEpoch) {
    throw new E2epoolError(
      'agent_stale_route',
      `Agent ${runnerId} session is epoch ${session.sessionEpoch} here, expected ${request.expectedEpoch}`,
      { sessionEpoch: session.sessionEpoch, expectedEpoch: request.expectedEpoch },
    );
  }
  const id = newMessageId();
  if (session.kind === 'current') {
    if (!session.declaredCommands?.includes(request.name)) {
      throw new E2epoolError('command_not_declared', `Agent of runner ${runnerId} does not declare command '${request.name}'`, { command: request.name });
    }
    const frame = { id, type: 'run', payload: { command: request.name, command_id: request.commandId, timeout: request.timeoutSeconds } };
    return { id, frame: JSON.stringify(frame) };
  }
  if (!request.legacyCmd?.trim()) {
    throw new E2epoolError(
      'command_not_declared',
      `Runner ${runnerId} has a legacy agent and no '${request.name}' command configured in the inventory`,
      { command: request.name, legacy: true },
    );
  }
  const frame = { id, type: 'exec', payload: { cmd: request.legacyCmd, timeout: request.timeoutSeconds } };
  return { id, frame: JSON.stringify(frame) };
}

export async function runAgentCommand(
  session: AgentSession | undefined,
  runnerId: string,
  request: AgentCommandRequest,
  opts: { replyGraceSeconds: number },
): Promise<AgentCommandOutput> {
  validateRequest(request);
  const { id, frame } = commandFrame(session, runnerId, request);
  const live = session as AgentSession;
  const started = performance.now();
  const waitMs = (request.timeoutSeconds + opts.replyGraceSeconds) * 1000;
  const reply = await live.request(id, frame, waitMs, () =>
    new E2epoolError('agent_command_timeout', `Agent ${runnerId} did not answer command '${request.name}' within ${request.timeoutSeconds + opts.replyGraceSeconds}s`, {
      command: request.name,
      commandId: request.commandId,
    }),
  );
  const durationMs = Math.round(performance.now() - started);
  const outcome = parseCommandReply(reply);
  const stdout = sanitizeOutput(outcome.stdout);
  const stderr = sanitizeOutput(outcome.stderr);
  if (outcome.ok) return { exitCode: outcome.exitCode, stdout, stderr, durationMs };
  if (outcome.agentError?.detail === 'command_not_declared') {
    // Our declared list and the agent's config disagree (config changed without a reconnect).
    throw new E2epoolError('command_not_declared', `Agent of runner ${runnerId} does not declare command '${request.name}'`, {
      command: request.name,
      reportedByAgent: true,
    });
  }
  const excerpt = (stderr.trim() || stdout.trim()).slice(0, DETAIL_OUTPUT_CHARS);
  throw new E2epoolError(
    'agent_command_failed',
    `Command '${request.name}' failed on runner ${runnerId} (exit ${outcome.exitCode})${excerpt ? `: ${excerpt}` : ''}`,
    { command: request.name, commandId: request.commandId, exitCode: outcome.exitCode, stdout, stderr, durationMs },
  );
}

function validateRequest(request: AgentCommandRequest): void {
  if (typeof request.name !== 'string' || !/^[A-Za-z][\w.-]{0,63}$/.test(request.name)) {
    throw new E2epoolError('bad_request', 'command name must be 1-64 letters, digits, _ . - starting with a letter');
  }
  if (typeof request.commandId !== 'string' || request.commandId.length === 0 || request.commandId.length > 512) {
    throw new E2epoolError('bad_request', 'commandId must be a string of 1-512 characters');
  }
  if (!Number.isFinite(request.timeoutSeconds) || request.timeoutSeconds <= 0) {
    throw new E2epoolError('bad_request', 'timeoutSeconds must be a positive number');
  }
}
