// Finalize statuses and sources.

export const finalizeStatuses = ['success', 'failure', 'canceled'] as const;
export type FinalizeStatus = (typeof finalizeStatuses)[number];

export const finalizeSources = ['hook', 'agent', 'webhook', 'poller', 'ttl', 'cancel', 'operator'] as const;
/** Known sources; HTTP callers may send any `^[\w.-]{1,50}$` string as e2epool allowed. */
export type FinalizeSource = string;
export const FINALIZE_SOURCE_PATTERN = /^[\w.-]{1,50}$/;

/** Accepts e2epool's three statuses plus GitLab's `failed` ($CI_JOB_STATUS) as `failure`. */
export function parseFinalizeStatus(value: unknown): FinalizeStatus | null {
  if (value === 'failed') return 'failure';
  return typeof value === 'string' && (finalizeStatuses as readonly string[]).includes(value) ? (value as FinalizeStatus) : null;
}

export interface FinalizeIntent {
  status: FinalizeStatus;
  source: FinalizeSource;
  /** Epoch milliseconds when the controller received it. */
  at: number;
}
