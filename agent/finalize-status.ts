// The outcomes `e2epool finalize --status` accepts, apart from the client so that the command
// definitions load without it (every `e2epool` start reads them).

/** Accepted by `finalize --status`; `failed` is GitLab's $CI_JOB_STATUS for a failed job. */
export const FINALIZE_STATUSES = ['success', 'failure', 'canceled', 'failed'] as const;
export type FinalizeStatusArg = (typeof FINALIZE_STATUSES)[number];

export function normaliseFinalizeStatus(status: FinalizeStatusArg): 'success' | 'failure' | 'canceled' {
  return status === 'failed' ? 'failure' : status;
}
