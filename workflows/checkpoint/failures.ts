// How the checkpoint workflow reads a failed activity: its type, its message, and whether an agent
// command's failure proves the command never reached the host. The one mapping of Temporal
// failures to workflow decisions.
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import type { AgentCommandResult } from '../../activities/types.js';
import type { NeedsAttentionReason } from '../../src/domain/checkpoint-states.js';

/** Leaves the current step for needs_attention; only the reset path and create catch it. */
export class NeedsAttention extends Error {
  constructor(
    readonly reason: NeedsAttentionReason,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/** The failure's domain code (`ApplicationFailure.type`), or `timeout:<TYPE>` for a server timeout. */
export function failureType(err: unknown): string | undefined {
  if (err instanceof ActivityFailure) {
    if (err.cause instanceof ApplicationFailure) return err.cause.type ?? undefined;
    if (err.cause instanceof TimeoutFailure) return `timeout:${err.cause.timeoutType}`;
  }
  if (err instanceof ApplicationFailure) return err.type ?? undefined;
  return undefined;
}

export function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

function firstDetail(err: unknown): Record<string, unknown> | null {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const details = cause instanceof ApplicationFailure ? cause.details : undefined;
  const first = Array.isArray(details) ? details[0] : undefined;
  return typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : null;
}

/** Failure types that prove a command never reached the host; anything else may have run it. */
const NOT_DELIVERED_TYPES: ReadonlySet<string> = new Set(['agent_not_delivered', 'agent_stale_route', 'timeout:SCHEDULE_TO_START']);

export function wasNotDelivered(err: unknown): boolean {
  const type = failureType(err);
  return type !== undefined && NOT_DELIVERED_TYPES.has(type);
}

/**
 * A live gateway saw the agent's socket close while the command ran, and did not close it itself.
 * Only this is evidence about the host; an instance that drained, crashed or stalled (heartbeat and
 * start-to-close timeouts, a worker shutting down) says nothing about what the host did.
 */
export function wasClosedByHost(err: unknown): boolean {
  return failureType(err) === 'agent_not_connected' && firstDetail(err)?.draining !== true;
}

/** What an agent command's failure means when it is the command's own answer, not a delivery problem. */
export type CommandAnswer = { kind: 'result'; result: AgentCommandResult } | { kind: 'not_declared'; detail: string };

export function answerOfFailure(err: unknown): CommandAnswer | null {
  const type = failureType(err);
  const detail = failureMessage(err);
  if (type === 'command_not_declared') return { kind: 'not_declared', detail };
  // The gateway's reply deadline passed: the command ran and failed as far as anyone can know.
  if (type === 'agent_command_timeout') return { kind: 'result', result: { ok: false, exitCode: -1, stdout: '', stderr: detail, durationMs: 0 } };
  return null;
}

/** A command result as one line for a detail or an alert (stderr is redacted by the gateway). */
export function describeFailedCommand(result: AgentCommandResult): string {
  return `exit ${result.exitCode}${result.stderr ? `: ${result.stderr.slice(0, 500)}` : ''}`;
}
