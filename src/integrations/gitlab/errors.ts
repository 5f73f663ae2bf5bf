// Errors raised by the GitLab client. Messages carry GitLab's own message and the HTTP status,
// never the token or request headers.
import { E2epoolError } from '../../domain/errors.js';

type GitlabErrorCode = 'gitlab_auth' | 'gitlab_not_found' | 'gitlab_unavailable' | 'gitlab_bad_request';

export interface GitlabErrorInfo {
  /** HTTP status when GitLab answered; absent for timeouts and connection failures. */
  status?: number;
  /** GitLab's `message`/`error` text, when it sent one. */
  gitlabMessage?: string;
  /** e.g. `GET /api/v4/runners/7` (no host, no query secrets). */
  request: string;
}

export class GitlabApiError extends E2epoolError {
  readonly status: number | undefined;
  readonly gitlabMessage: string | undefined;
  readonly request: string;

  constructor(code: GitlabErrorCode, detail: string, info: GitlabErrorInfo) {
    super(code, detail, { status: info.status, gitlabMessage: info.gitlabMessage, request: info.request });
    this.name = new.target.name;
    this.status = info.status;
    this.gitlabMessage = info.gitlabMessage;
    this.request = info.request;
  }
}

/** 401/403: the token is wrong, expired or lacks a scope (read_api, manage_runner). */
export class GitlabAuthError extends GitlabApiError {
  constructor(detail: string, info: GitlabErrorInfo) {
    super('gitlab_auth', detail, info);
  }
}

/** 404: the job, project or runner does not exist or is not visible to this token. */
export class GitlabNotFoundError extends GitlabApiError {
  constructor(detail: string, info: GitlabErrorInfo) {
    super('gitlab_not_found', detail, info);
  }
}

/** 5xx, 429, timeouts, connection failures and unreadable answers: worth retrying. */
export class GitlabUnavailableError extends GitlabApiError {
  constructor(detail: string, info: GitlabErrorInfo) {
    super('gitlab_unavailable', detail, info);
  }
}

/** GitLab rejected the request itself (400, 409, 422): retrying the same request cannot help. */
export class GitlabBadRequestError extends GitlabApiError {
  constructor(detail: string, info: GitlabErrorInfo) {
    super('gitlab_bad_request', detail, info);
  }
}
