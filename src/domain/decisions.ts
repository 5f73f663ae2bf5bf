// Pure decisions the checkpoint workflow takes at its branch points.
import type { FinalizeStatus } from './finalize.js';

export type SuccessAction = 'cleanup' | 'reset';
export type ResetMode = 'reboot' | 'in_place' | 'auto';

/** Success runs the runner's success action; failure and cancel always reset. */
export function pathAfterFinalize(status: FinalizeStatus, successAction: SuccessAction): 'cleanup' | 'reset' {
  return status === 'success' && successAction === 'cleanup' ? 'cleanup' : 'reset';
}

/** What the GitLab job looked like when the TTL fired. */
export type JobObservation =
  | { kind: 'running' }
  | { kind: 'terminal'; outcome: FinalizeStatus }
  | { kind: 'unknowable'; detail: string } // no project id, or GitLab says the job does not exist
  | { kind: 'error'; detail: string }; // GitLab unreachable or failing: never a reason to reset

export type TtlDecision = { action: 'extend' } | { action: 'reset' } | { action: 'needs_attention'; detail: string };

/**
 * At the TTL: a finished or unknowable job resets (gc_reset); a running job, or a GitLab error,
 * extends the TTL; past the hard maximum the checkpoint needs attention instead, with no reset.
 */
export function decideAtTtl(observation: JobObservation, ageSeconds: number, maxTtlSeconds: number): TtlDecision {
  if (observation.kind === 'terminal' || observation.kind === 'unknowable') return { action: 'reset' };
  if (ageSeconds >= maxTtlSeconds) {
    const why = observation.kind === 'running' ? 'the job is still running' : `GitLab could not be asked (${observation.detail})`;
    return { action: 'needs_attention', detail: `checkpoint reached the maximum age of ${maxTtlSeconds}s and ${why}` };
  }
  return { action: 'extend' };
}

/** One answer of "which jobs run on this runner" after pausing it. */
export type RunnerJobsObservation = { kind: 'jobs'; jobIds: string[] } | { kind: 'unknown'; detail: string };

export interface IdleProgress {
  consecutiveEmpty: number;
  ownJobSeenSeconds: number;
  foreignJobSeenSeconds: number;
  unknownSeconds: number;
}

export type IdleDecision = { action: 'idle' } | { action: 'wait'; progress: IdleProgress } | { action: 'busy'; detail: string };

export const IDLE_EMPTY_ANSWERS = 2;

/**
 * Idle means two empty answers in a row; a GitLab error is "unknown", never idle. The checkpoint's
 * own job may still be finishing (after_script, artifacts): wait up to ownGrace; another job: up
 * to foreignGrace. `elapsedSeconds` is the time since the previous observation.
 */
export function decideIdle(
  progress: IdleProgress,
  observation: RunnerJobsObservation,
  ownJobId: string,
  elapsedSeconds: number,
  graces: { ownJobGraceSeconds: number; foreignJobGraceSeconds: number },
): IdleDecision {
  const next: IdleProgress = { ...progress };
  if (observation.kind === 'unknown') {
    next.consecutiveEmpty = 0;
    next.unknownSeconds += elapsedSeconds;
    if (next.unknownSeconds > graces.foreignJobGraceSeconds) {
      return { action: 'busy', detail: `could not confirm the runner is idle for ${next.unknownSeconds}s: ${observation.detail}` };
    }
    return { action: 'wait', progress: next };
  }
  if (observation.jobIds.length === 0) {
    next.consecutiveEmpty += 1;
    return next.consecutiveEmpty >= IDLE_EMPTY_ANSWERS ? { action: 'idle' } : { action: 'wait', progress: next };
  }
  next.consecutiveEmpty = 0;
  const foreign = observation.jobIds.filter((id) => id !== ownJobId);
  if (foreign.length > 0) {
    next.foreignJobSeenSeconds += elapsedSeconds;
    if (next.foreignJobSeenSeconds > graces.foreignJobGraceSeconds) {
      return { action: 'busy', detail: `job ${foreign.join(', ')} still running on the runner after ${graces.foreignJobGraceSeconds}s` };
    }
  } else {
    next.ownJobSeenSeconds += elapsedSeconds;
    if (next.ownJobSeenSeconds > graces.ownJobGraceSeconds) {
      return { action: 'busy', detail: `own job ${ownJobId} still running on the runner after ${graces.ownJobGraceSeconds}s` };
    }
  }
  return { action: 'wait', progress: next };
}

export function initialIdleProgress(): IdleProgress {
  return { consecutiveEmpty: 0, ownJobSeenSeconds: 0, foreignJobSeenSeconds: 0, unknownSeconds: 0 };
}

/** A session proves readiness only when it began after the reset did. */
export function isSessionFresh(sessionEpoch: number | null | undefined, epochAtReset: number): boolean {
  return typeof sessionEpoch === 'number' && sessionEpoch > epochAtReset;
}

/** Whether a reset in this mode needs a session newer than the reset to prove readiness. */
export function resetNeedsFreshSession(mode: ResetMode, sessionDroppedDuringReset: boolean): boolean {
  if (mode === 'reboot') return true;
  if (mode === 'in_place') return false;
  return sessionDroppedDuringReset;
}

/** The most polls one wait of the workflow makes; with more, each history would grow without bound. */
export const MAX_POLLS_PER_WAIT = 200;

/**
 * The interval of a poll that may last `budgetSeconds`: the configured one, or longer when the budget
 * would take more than MAX_POLLS_PER_WAIT of them (a readiness budget of a day polled every second).
 */
export function boundedPollSeconds(intervalSeconds: number, budgetSeconds: number): number {
  return Math.max(intervalSeconds, Math.ceil(budgetSeconds / MAX_POLLS_PER_WAIT));
}

/** Exponential backoff with a cap, deterministic (no jitter: workflow code). */
export function backoffSeconds(attempt: number, initial: number, max: number): number {
  return Math.min(max, initial * 2 ** Math.max(0, attempt - 1));
}

/** What a reset command that was sent, and whose answer was lost, tells about the host. */
export interface LostReset {
  /** The agent speaks the legacy protocol: no boot id, no command-id memory. */
  legacy: boolean;
  /** A live gateway saw the host close the socket; not our instance draining, crashing or stalling. */
  closedByHost: boolean;
}

/**
 * Only a legacy agent in reboot mode whose host closed the session may be read as the reboot
 * (ARCHITECTURE §4.9); readiness still needs a session newer than the reset. Anything else may or
 * may not have reset the host.
 */
export function readLostReset(lost: LostReset, mode: ResetMode): 'rebooted' | 'outcome_unknown' {
  return lost.legacy && lost.closedByHost && mode === 'reboot' ? 'rebooted' : 'outcome_unknown';
}
