// The checkpoint timings the tests run with, in one place. Real-clock tests want short waits;
// time-skipping workflow tests want the production shape (the test server skips the waits).
import type { CheckpointTimings } from '../../workflows/messages.js';

/** For tests on a real clock (dev server, real activities): every wait a second or a few. */
export const realClockTimings: CheckpointTimings = {
  createAcceptWindowSeconds: 120,
  createWaitForCleanupSeconds: 5,
  cooldownSeconds: 0,
  ttlSeconds: 3600,
  maxTtlSeconds: 86400,
  pollerEnabled: false,
  pollerIntervalSeconds: 20,
  pollerMinAgeSeconds: 120,
  readinessTimeoutSeconds: 30,
  readinessPollIntervalSeconds: 1,
  readinessStableSeconds: 0,
  resetSettleSeconds: 1,
  ownJobGraceSeconds: 30,
  foreignJobGraceSeconds: 30,
  idlePollSeconds: 1,
  pauseBudgetSeconds: 30,
  unpauseAlertAfterSeconds: 600,
  agentRouteAttempts: 3,
  commandTimeoutSeconds: 30,
  backendStepTimeoutSeconds: 30,
};

/** For workflow tests on the time-skipping server: waits of the size production has. */
export const timeSkippingTimings: CheckpointTimings = {
  createAcceptWindowSeconds: 120,
  createWaitForCleanupSeconds: 10,
  cooldownSeconds: 0,
  ttlSeconds: 1800,
  maxTtlSeconds: 86400,
  pollerEnabled: true,
  pollerIntervalSeconds: 20,
  pollerMinAgeSeconds: 120,
  readinessTimeoutSeconds: 120,
  readinessPollIntervalSeconds: 5,
  readinessStableSeconds: 0,
  resetSettleSeconds: 2,
  ownJobGraceSeconds: 60,
  foreignJobGraceSeconds: 90,
  idlePollSeconds: 5,
  pauseBudgetSeconds: 60,
  unpauseAlertAfterSeconds: 600,
  agentRouteAttempts: 3,
  commandTimeoutSeconds: 30,
  backendStepTimeoutSeconds: 60,
};
