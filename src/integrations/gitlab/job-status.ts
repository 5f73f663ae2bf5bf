// GitLab job statuses and what each means for a checkpoint. Pure: imported by workflows and parsers.

/** Every status GitLab documents for a CI job (`Ci::HasStatus`), plus the newer transient `canceling`. */
export const GITLAB_JOB_STATUSES = [
  'created',
  'waiting_for_resource',
  'preparing',
  'pending',
  'running',
  'success',
  'failed',
  'canceled',
  'skipped',
  'manual',
  'scheduled',
  'canceling',
] as const;

export type GitlabJobStatus = (typeof GITLAB_JOB_STATUSES)[number];

export type JobOutcome = 'success' | 'failure' | 'canceled';

export type JobStatusMeaning = { terminal: false } | { terminal: true; outcome: JobOutcome };

const NOT_TERMINAL: JobStatusMeaning = { terminal: false };

const meanings: Record<GitlabJobStatus, JobStatusMeaning> = {
  created: NOT_TERMINAL,
  waiting_for_resource: NOT_TERMINAL,
  preparing: NOT_TERMINAL,
  pending: NOT_TERMINAL,
  running: NOT_TERMINAL,
  // Blocked: waiting for a person or a schedule; the job has not finished.
  manual: NOT_TERMINAL,
  scheduled: NOT_TERMINAL,
  // Still stopping: after_script may run on the machine.
  canceling: NOT_TERMINAL,
  success: { terminal: true, outcome: 'success' },
  failed: { terminal: true, outcome: 'failure' },
  canceled: { terminal: true, outcome: 'canceled' },
  // Should not happen once a checkpoint exists; roll back to be safe.
  skipped: { terminal: true, outcome: 'failure' },
};

export function isGitlabJobStatus(value: unknown): value is GitlabJobStatus {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(meanings, value);
}

/** Maps a GitLab job status to terminal/outcome. Unknown values (future GitLab) are non-terminal. */
export function mapGitlabJobStatus(status: unknown): JobStatusMeaning {
  return isGitlabJobStatus(status) ? meanings[status] : NOT_TERMINAL;
}
