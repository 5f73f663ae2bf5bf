// The simulated GitLab REST routes under /api/v4, with GitLab's paths, status codes and error
// bodies. Only the routes the controller uses exist; anything else is GitLab's 404 route answer
// (which is what the old adapter's `GET /api/v4/jobs/:id` should have met).
import type { SimEndpoint } from './faults.js';
import { jobJson, runnerDetailsJson, type JsonContext } from './json.js';
import type { SimJob } from './state.js';

export interface ApiRequest {
  method: string;
  /** Path segments after /api/v4, already URL-decoded (so `group%2Fproject` is one segment). */
  segments: string[];
  query: URLSearchParams;
  params: Record<string, unknown>;
}

export interface ApiResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface ApiRoute {
  endpoint: SimEndpoint;
  handle: (ctx: JsonContext, req: ApiRequest) => ApiResponse;
}

const RUNNER_ATTRIBUTES = ['description', 'active', 'paused', 'tag_list', 'run_untagged', 'locked', 'access_level', 'maximum_timeout', 'maintenance_note'];
const RUNNER_JOB_STATUSES = ['running', 'success', 'failed', 'canceled'];

const notFound = (what: string): ApiResponse => ({ status: 404, body: { message: `404 ${what} Not Found` } });
const badRequest = (error: string): ApiResponse => ({ status: 400, body: { error } });

/** Finds the route for a method and path; `undefined` means GitLab's generic 404/405. */
export function matchApiRoute(method: string, segments: string[]): ApiRoute | 'method_not_allowed' | undefined {
  const [a, b, c, d] = segments;
  if (segments.length === 4 && a === 'projects' && c === 'jobs' && b && d) {
    return method === 'GET' ? { endpoint: 'getJob', handle: (ctx, req) => getProjectJob(ctx, req, b, d) } : 'method_not_allowed';
  }
  if (segments.length === 2 && a === 'runners' && b) {
    if (method === 'GET') return { endpoint: 'getRunner', handle: (ctx) => getRunner(ctx, b) };
    if (method === 'PUT') return { endpoint: 'updateRunner', handle: (ctx, req) => updateRunner(ctx, req, b) };
    return 'method_not_allowed';
  }
  if (segments.length === 3 && a === 'runners' && c === 'jobs' && b) {
    return method === 'GET' ? { endpoint: 'listRunnerJobs', handle: (ctx, req) => listRunnerJobs(ctx, req, b) } : 'method_not_allowed';
  }
  return undefined;
}

function getProjectJob(ctx: JsonContext, _req: ApiRequest, projectRef: string, jobRef: string): ApiResponse {
  if (!/^\d+$/.test(jobRef)) return badRequest('job_id is invalid');
  const project = ctx.state.findProject(projectRef);
  if (!project) return notFound('Project');
  const job = ctx.state.jobs.get(Number(jobRef));
  if (!job || job.projectId !== project.id) return notFound('Job');
  return { status: 200, body: jobJson(ctx, job) };
}

function findRunner(ctx: JsonContext, ref: string) {
  return /^\d+$/.test(ref) ? ctx.state.runners.get(Number(ref)) : undefined;
}

function getRunner(ctx: JsonContext, ref: string): ApiResponse {
  if (!/^\d+$/.test(ref)) return badRequest('id is invalid');
  const runner = findRunner(ctx, ref);
  return runner ? { status: 200, body: runnerDetailsJson(ctx, runner) } : notFound('Runner');
}

function updateRunner(ctx: JsonContext, req: ApiRequest, ref: string): ApiResponse {
  if (!/^\d+$/.test(ref)) return badRequest('id is invalid');
  const given = RUNNER_ATTRIBUTES.filter((k) => req.params[k] !== undefined);
  if (given.length === 0) return badRequest(`${RUNNER_ATTRIBUTES.join(', ')} are missing, at least one parameter must be provided`);
  if (given.includes('active') && given.includes('paused')) return badRequest('active, paused are mutually exclusive');
  // Real GitLab still accepts `active` (deprecated); the simulator refuses it to keep clients honest.
  if (given.includes('active')) return badRequest('active is deprecated, use paused');
  const runner = findRunner(ctx, ref);
  if (!runner) return notFound('Runner');
  let paused: boolean | undefined;
  if (req.params.paused !== undefined) {
    paused = parseBoolean(req.params.paused);
    if (paused === undefined) return badRequest('paused is invalid');
  }
  if (req.params.description !== undefined) {
    if (typeof req.params.description !== 'string') return badRequest('description is invalid');
    runner.description = req.params.description;
  }
  if (paused !== undefined) ctx.state.setRunnerPaused(runner.id, paused);
  return { status: 200, body: runnerDetailsJson(ctx, runner) };
}

function listRunnerJobs(ctx: JsonContext, req: ApiRequest, ref: string): ApiResponse {
  if (!/^\d+$/.test(ref)) return badRequest('id is invalid');
  const status = req.query.get('status');
  if (status !== null && !RUNNER_JOB_STATUSES.includes(status)) return badRequest('status does not have a valid value');
  const sort = req.query.get('sort') ?? 'desc';
  if (sort !== 'asc' && sort !== 'desc') return badRequest('sort does not have a valid value');
  const page = positiveIntParam(req.query.get('page'), 1);
  const requestedPerPage = positiveIntParam(req.query.get('per_page'), 20);
  if (page === undefined) return badRequest('page is invalid');
  if (requestedPerPage === undefined) return badRequest('per_page is invalid');
  const perPage = Math.min(requestedPerPage, 100);
  const runner = findRunner(ctx, ref);
  if (!runner) return notFound('Runner');

  const all: SimJob[] = ctx.state
    .jobsOfRunner(runner.id)
    .filter((j) => status === null || j.status === status)
    .sort((x, y) => (sort === 'asc' ? x.id - y.id : y.id - x.id));
  const totalPages = Math.max(1, Math.ceil(all.length / perPage));
  const slice = all.slice((page - 1) * perPage, page * perPage);
  return {
    status: 200,
    body: slice.map((job) => jobJson(ctx, job, { withProject: true })),
    headers: {
      'x-page': String(page),
      'x-per-page': String(perPage),
      'x-total': String(all.length),
      'x-total-pages': String(totalPages),
      'x-next-page': page < totalPages ? String(page + 1) : '',
      'x-prev-page': page > 1 ? String(page - 1) : '',
    },
  };
}

function parseBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  return undefined;
}

function positiveIntParam(raw: string | null, def: number): number | undefined {
  if (raw === null || raw === '') return def;
  return /^\d+$/.test(raw) && Number(raw) > 0 ? Number(raw) : undefined;
}
