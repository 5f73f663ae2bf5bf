// Typed GitLab REST client: the only code that knows GitLab's URLs and headers. It reads jobs,
// pauses and unpauses runners (`paused`, never the deprecated `active`) and lists a runner's jobs.
// Retries are the caller's business (Temporal activities), so got's own retry is off.
import { got, RequestError, type Response } from 'got';
import type { z } from 'zod';
import { E2epoolError } from '../../domain/errors.js';
import {
  GitlabApiError,
  GitlabAuthError,
  GitlabNotFoundError,
  GitlabUnavailableError,
  GitlabBadRequestError,
  type GitlabErrorInfo,
} from './errors.js';
import {
  gitlabJobSchema,
  gitlabRunnerSchema,
  RUNNER_JOB_FILTER_STATUSES,
  type GitlabJob,
  type GitlabRunner,
  type RunnerJobFilterStatus,
} from './types.js';

export interface GitlabClientOptions {
  /** GitLab's base URL without `/api/v4`, e.g. `https://gitlab.example.com`. Global or per runner. */
  baseUrl: string;
  /** Token with `read_api` (jobs) and `manage_runner` (pause). Global or per runner. */
  token: string;
  /** Whole-request timeout in milliseconds. */
  timeoutMs: number;
}

/** Upper bound on pages read from a listing, so a misbehaving server cannot loop us forever. */
const MAX_PAGES = 20;
const PER_PAGE = 100;

type Method = 'GET' | 'PUT';

export class GitlabClient {
  private readonly apiBase: string;
  private readonly token: string;
  private readonly timeoutMs: number;

  constructor(opts: GitlabClientOptions) {
    this.apiBase = `${normalizeBaseUrl(opts.baseUrl)}/api/v4`;
    if (typeof opts.token !== 'string' || opts.token.length === 0) {
      throw new E2epoolError('not_configured', 'GitLab token is not configured (E2EPOOL_GITLAB_TOKEN or the runner\'s gitlab_token)');
    }
    if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
      throw new E2epoolError('validation', `GitLab timeout must be a positive number of milliseconds, got ${String(opts.timeoutMs)}`);
    }
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs;
  }

  /** `GET /projects/:id/jobs/:job_id`; the project may be a numeric id or a path (`group/project`). */
  async getJob(projectId: string | number, jobId: string | number): Promise<GitlabJob> {
    const project = encodeURIComponent(requireProjectId(projectId));
    const job = requirePositiveInt(jobId, 'job id');
    const res = await this.request('GET', `/projects/${project}/jobs/${job}`);
    return parseBody(gitlabJobSchema, res, `GET /api/v4/projects/${project}/jobs/${job}`);
  }

  /** `GET /runners/:id`: details including `paused`, `online` and `status`. */
  async getRunner(runnerId: string | number): Promise<GitlabRunner> {
    const id = requirePositiveInt(runnerId, 'runner id');
    const res = await this.request('GET', `/runners/${id}`);
    return parseBody(gitlabRunnerSchema, res, `GET /api/v4/runners/${id}`);
  }

  /**
   * `PUT /runners/:id {"paused": bool}`. Pausing only stops new pickups; a running job keeps
   * running, so callers confirm idleness with `listRunnerJobs(id, 'running')` afterwards.
   */
  async setRunnerPaused(runnerId: string | number, paused: boolean): Promise<GitlabRunner> {
    const id = requirePositiveInt(runnerId, 'runner id');
    if (typeof paused !== 'boolean') throw new E2epoolError('validation', 'paused must be a boolean');
    const res = await this.request('PUT', `/runners/${id}`, { paused });
    const runner = parseBody(gitlabRunnerSchema, res, `PUT /api/v4/runners/${id}`);
    if (runner.paused !== paused) {
      throw new GitlabUnavailableError(`GitLab answered the ${paused ? 'pause' : 'unpause'} of runner ${id} with paused=${runner.paused}`, {
        status: res.statusCode,
        request: `PUT /api/v4/runners/${id}`,
      });
    }
    return runner;
  }

  /** `GET /runners/:id/jobs?status=…`, following pages of 100. */
  async listRunnerJobs(runnerId: string | number, status: RunnerJobFilterStatus): Promise<GitlabJob[]> {
    const id = requirePositiveInt(runnerId, 'runner id');
    if (!(RUNNER_JOB_FILTER_STATUSES as readonly string[]).includes(status)) {
      throw new E2epoolError('validation', `runner job status filter must be one of ${RUNNER_JOB_FILTER_STATUSES.join(', ')}`);
    }
    const jobs: GitlabJob[] = [];
    let page = 1;
    for (let n = 0; n < MAX_PAGES; n++) {
      const path = `/runners/${id}/jobs?status=${status}&per_page=${PER_PAGE}&page=${page}`;
      const res = await this.request('GET', path);
      jobs.push(...parseBody(gitlabJobSchema.array(), res, `GET /api/v4${path}`));
      const next = Number(res.headers['x-next-page']);
      if (!Number.isInteger(next) || next <= page) return jobs;
      page = next;
    }
    throw new GitlabUnavailableError(`GitLab listed more than ${MAX_PAGES} pages of ${status} jobs for runner ${id}`, {
      request: `GET /api/v4/runners/${id}/jobs`,
    });
  }

  private async request(method: Method, path: string, json?: unknown): Promise<Response<string>> {
    const request = `${method} /api/v4${path.split('?')[0]}`;
    let res: Response<string>;
    try {
      res = await got(`${this.apiBase}${path}`, {
        method,
        headers: { 'PRIVATE-TOKEN': this.token, accept: 'application/json' },
        json,
        responseType: 'text',
        throwHttpErrors: false,
        // A redirect would carry PRIVATE-TOKEN to wherever it points; a wrong base URL is an error.
        followRedirect: false,
        retry: { limit: 0 },
        timeout: { request: this.timeoutMs },
      });
    } catch (err) {
      // Never attach `err` as a cause: got's error holds the request options, token included.
      throw new GitlabUnavailableError(`GitLab ${request} failed: ${describeTransportError(err, this.timeoutMs)}`, { request });
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return res;
    throw errorForStatus(res, request);
  }
}

export function createGitlabClient(opts: GitlabClientOptions): GitlabClient {
  return new GitlabClient(opts);
}

function errorForStatus(res: Response<string>, request: string): GitlabApiError {
  const status = res.statusCode;
  const gitlabMessage = extractGitlabMessage(res.body);
  const info: GitlabErrorInfo = { status, gitlabMessage, request };
  // GitLab messages often start with the status already ("404 Job Not Found").
  const said = !gitlabMessage ? '' : gitlabMessage.startsWith(String(status)) ? gitlabMessage.slice(String(status).length) : `: ${gitlabMessage}`;
  if (status === 401 || status === 403) {
    return new GitlabAuthError(`GitLab refused ${request} (${status}${said}); check the token and its scopes (read_api, manage_runner)`, info);
  }
  if (status === 404) return new GitlabNotFoundError(`GitLab ${request} not found (404${said})`, info);
  if (status >= 300 && status < 400) {
    return new GitlabUnavailableError(`GitLab answered ${request} with a redirect (${status}); set the GitLab URL to the final address`, info);
  }
  if (status === 429 || status >= 500) return new GitlabUnavailableError(`GitLab ${request} failed (${status}${said})`, info);
  // Other 4xx: our request itself was rejected; the same request will not succeed later.
  return new GitlabBadRequestError(`GitLab rejected ${request} (${status}${said})`, info);
}

/** GitLab errors look like `{"message": "..."}` or `{"error": "..."}`; message may be an object. */
function extractGitlabMessage(body: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const record = parsed as Record<string, unknown>;
  const value = record.message ?? record.error;
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function describeTransportError(err: unknown, timeoutMs: number): string {
  if (err instanceof RequestError) {
    if (err.name === 'TimeoutError' || err.code === 'ETIMEDOUT') return `no answer within ${timeoutMs} ms`;
    return `connection error ${err.code || err.name}`;
  }
  return 'unexpected client error';
}

function parseBody<S extends z.ZodType>(schema: S, res: Response<string>, request: string): z.infer<S> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    throw new GitlabUnavailableError(`GitLab ${request} answered ${res.statusCode} with a body that is not JSON`, { status: res.statusCode, request });
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const where = result.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new GitlabUnavailableError(`GitLab ${request} answered with an unexpected shape (${where})`, { status: res.statusCode, request });
  }
  return result.data;
}

function normalizeBaseUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new E2epoolError('not_configured', 'GitLab URL is not a valid URL (E2EPOOL_GITLAB_URL or the runner\'s gitlab_url)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new E2epoolError('not_configured', `GitLab URL must be http or https, got ${url.protocol}`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new E2epoolError('not_configured', 'GitLab URL must not contain credentials, a query or a fragment');
  }
  // Tolerate a trailing slash and a pasted `/api/v4`.
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api\/v4$/, '');
  return `${url.origin}${path}`;
}

function requirePositiveInt(value: string | number, what: string): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new E2epoolError('validation', `GitLab ${what} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function requireProjectId(value: string | number): string {
  if (typeof value === 'number') return String(requirePositiveInt(value, 'project id'));
  const trimmed = typeof value === 'string' ? value.trim() : '';
  if (trimmed.length === 0 || trimmed.length > 512) throw new E2epoolError('validation', 'GitLab project id must be a numeric id or a project path');
  return trimmed;
}
