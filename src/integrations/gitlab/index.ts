// Public surface of the GitLab integration.
export { GitlabClient, createGitlabClient, type GitlabClientOptions } from './client.js';
export { GitlabApiError, GitlabAuthError, GitlabNotFoundError, GitlabUnavailableError, type GitlabErrorInfo } from './errors.js';
export {
  GITLAB_JOB_STATUSES,
  isGitlabJobStatus,
  mapGitlabJobStatus,
  type GitlabJobStatus,
  type JobOutcome,
  type JobStatusMeaning,
} from './job-status.js';
export { RUNNER_JOB_FILTER_STATUSES, type GitlabJob, type GitlabRunner, type RunnerJobFilterStatus } from './types.js';
export {
  parseGithubWorkflowJobEvent,
  parseGitlabJobEvent,
  verifyGithubSignature,
  verifyGitlabToken,
  type IncomingHeaders,
  type WebhookEvent,
  type WebhookFinalize,
  type WebhookIgnore,
  type WebhookVerification,
} from './webhooks.js';
