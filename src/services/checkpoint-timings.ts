// Every timing of the checkpoint workflow, filled from config when the API starts a workflow. The
// workflow reads nothing else, so tests shorten any wait through config alone.
import type { Config } from '../config.js';
import type { CheckpointTimings } from '../../workflows/messages.js';

export type TimingConfig = Pick<
  Config,
  | 'CREATE_WAIT_FOR_CLEANUP_SECONDS'
  | 'FINALIZE_COOLDOWN_SECONDS'
  | 'CHECKPOINT_TTL_SECONDS'
  | 'CHECKPOINT_MAX_TTL_SECONDS'
  | 'POLLER_ENABLED'
  | 'POLLER_INTERVAL_SECONDS'
  | 'POLLER_MIN_AGE_SECONDS'
  | 'READINESS_TIMEOUT_SECONDS'
  | 'READINESS_POLL_INTERVAL_SECONDS'
  | 'READINESS_STABLE_SECONDS'
  | 'RESET_SETTLE_SECONDS'
  | 'OWN_JOB_GRACE_SECONDS'
  | 'FOREIGN_JOB_GRACE_SECONDS'
  | 'AGENT_ROUTE_ATTEMPTS'
  | 'COMMAND_TIMEOUT_SECONDS'
>;

/** Fixed timings that have no setting (ARCHITECTURE §4.2, §4.6, §4.8, §5). */
export const FIXED_TIMINGS = {
  /** A started workflow without an accepted create ends `abandoned` after this long. */
  createAcceptWindowSeconds: 120,
  /** Idle confirmation: two empty job lists this far apart. */
  idlePollSeconds: 5,
  /** A GitLab pause failing for this long is needs attention (`pause_failed`). */
  pauseBudgetSeconds: 300,
  /** A clean runner that still cannot be unpaused raises an alert after this long. */
  unpauseAlertAfterSeconds: 600,
  /** One Proxmox step (snapshot, stop, rollback, start, delete). */
  backendStepTimeoutSeconds: 600,
} as const;

export function checkpointTimingsFromConfig(config: TimingConfig): CheckpointTimings {
  return {
    createAcceptWindowSeconds: FIXED_TIMINGS.createAcceptWindowSeconds,
    createWaitForCleanupSeconds: config.CREATE_WAIT_FOR_CLEANUP_SECONDS,
    cooldownSeconds: config.FINALIZE_COOLDOWN_SECONDS,
    ttlSeconds: config.CHECKPOINT_TTL_SECONDS,
    maxTtlSeconds: config.CHECKPOINT_MAX_TTL_SECONDS,
    pollerEnabled: config.POLLER_ENABLED,
    pollerIntervalSeconds: config.POLLER_INTERVAL_SECONDS,
    pollerMinAgeSeconds: config.POLLER_MIN_AGE_SECONDS,
    readinessTimeoutSeconds: config.READINESS_TIMEOUT_SECONDS,
    readinessPollIntervalSeconds: config.READINESS_POLL_INTERVAL_SECONDS,
    readinessStableSeconds: config.READINESS_STABLE_SECONDS,
    resetSettleSeconds: config.RESET_SETTLE_SECONDS,
    ownJobGraceSeconds: config.OWN_JOB_GRACE_SECONDS,
    foreignJobGraceSeconds: config.FOREIGN_JOB_GRACE_SECONDS,
    idlePollSeconds: FIXED_TIMINGS.idlePollSeconds,
    pauseBudgetSeconds: FIXED_TIMINGS.pauseBudgetSeconds,
    unpauseAlertAfterSeconds: FIXED_TIMINGS.unpauseAlertAfterSeconds,
    agentRouteAttempts: config.AGENT_ROUTE_ATTEMPTS,
    commandTimeoutSeconds: config.COMMAND_TIMEOUT_SECONDS,
    backendStepTimeoutSeconds: FIXED_TIMINGS.backendStepTimeoutSeconds,
  };
}
