// In-memory GitLab world of the simulator: projects, runners and jobs, and the job lifecycle that
// tests and the demo runner loop drive. Every job status change is announced to listeners (the
// webhook sender).
import { GITLAB_JOB_STATUSES, type GitlabJobStatus } from '../../src/integrations/gitlab/job-status.js';

export interface SimProject {
  id: number;
  /** `group/project`, usable URL-encoded in place of the id. */
  path: string;
  name: string;
}

export interface SimRunner {
  id: number;
  description: string;
  paused: boolean;
  contactedAt: Date | null;
  tags: string[];
  runnerType: 'instance_type' | 'group_type' | 'project_type';
}

export interface SimJob {
  id: number;
  projectId: number;
  pipelineId: number;
  name: string;
  stage: string;
  ref: string;
  sha: string;
  tags: string[];
  status: GitlabJobStatus;
  runnerId: number | null;
  failureReason: string | null;
  allowFailure: boolean;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface JobStatusChange {
  job: SimJob;
  previousStatus: GitlabJobStatus | null;
}

export interface NewProject {
  id?: number;
  path?: string;
}

export interface NewRunner {
  id?: number;
  description?: string;
  paused?: boolean;
  /** true: contacted now; false/absent: never contacted. A Date sets the time exactly. */
  contacted?: boolean | Date;
  tags?: string[];
  runnerType?: SimRunner['runnerType'];
}

export interface NewJob {
  projectId: number | string;
  /** Assigns (reserves) the job to this runner. */
  runnerId?: number;
  status?: GitlabJobStatus;
  name?: string;
  stage?: string;
  ref?: string;
  tags?: string[];
  id?: number;
}

export class SimInputError extends Error {
  constructor(
    readonly httpStatus: 400 | 404,
    message: string,
  ) {
    super(message);
    this.name = 'SimInputError';
  }
}

const TERMINAL: ReadonlySet<GitlabJobStatus> = new Set(['success', 'failed', 'canceled', 'skipped']);
const STARTED: ReadonlySet<GitlabJobStatus> = new Set(['running', 'canceling', 'success', 'failed', 'canceled']);

export class GitlabSimState {
  readonly projects = new Map<number, SimProject>();
  readonly runners = new Map<number, SimRunner>();
  readonly jobs = new Map<number, SimJob>();
  private nextProjectId = 1;
  private nextRunnerId = 1;
  private nextJobId = 1000;
  private nextPipelineId = 500;
  private readonly listeners: Array<(change: JobStatusChange) => void> = [];

  constructor(
    readonly now: () => Date,
    /** GitLab calls a runner online when it made contact within the last 2 hours. */
    readonly onlineWindowMs: number,
  ) {}

  onJobStatusChange(listener: (change: JobStatusChange) => void): void {
    this.listeners.push(listener);
  }

  addProject(input: NewProject = {}): SimProject {
    const id = input.id ?? this.nextProjectId;
    requirePositiveInt(id, 'project id');
    if (this.projects.has(id)) throw new SimInputError(400, `project ${id} already exists`);
    const path = input.path ?? `e2e/project-${id}`;
    if (!/^[\w.-]+(\/[\w.-]+)+$/.test(path)) throw new SimInputError(400, `project path must look like group/project, got ${JSON.stringify(path)}`);
    const project: SimProject = { id, path, name: path.split('/').pop()! };
    this.projects.set(id, project);
    this.nextProjectId = Math.max(this.nextProjectId, id + 1);
    return project;
  }

  addRunner(input: NewRunner = {}): SimRunner {
    const id = input.id ?? this.nextRunnerId;
    requirePositiveInt(id, 'runner id');
    if (this.runners.has(id)) throw new SimInputError(400, `runner ${id} already exists`);
    requireOptional(input.description, 'string', 'description');
    requireOptional(input.paused, 'boolean', 'paused');
    if (input.runnerType !== undefined && !['instance_type', 'group_type', 'project_type'].includes(input.runnerType)) {
      throw new SimInputError(400, 'runnerType must be instance_type, group_type or project_type');
    }
    const contacted = input.contacted;
    const runner: SimRunner = {
      id,
      description: input.description ?? `sim-runner-${id}`,
      paused: input.paused ?? false,
      contactedAt: contacted instanceof Date ? contacted : contacted ? this.now() : null,
      tags: requireTags(input.tags),
      runnerType: input.runnerType ?? 'project_type',
    };
    this.runners.set(id, runner);
    this.nextRunnerId = Math.max(this.nextRunnerId, id + 1);
    return runner;
  }

  /** Finds a project by numeric id or by path (as `GET /projects/:id` does). */
  findProject(idOrPath: number | string): SimProject | undefined {
    if (typeof idOrPath === 'number' || /^\d+$/.test(idOrPath)) return this.projects.get(Number(idOrPath));
    for (const project of this.projects.values()) if (project.path === idOrPath) return project;
    return undefined;
  }

  getRunner(id: number): SimRunner {
    const runner = this.runners.get(id);
    if (!runner) throw new SimInputError(404, `runner ${id} does not exist`);
    return runner;
  }

  getJob(id: number): SimJob {
    const job = this.jobs.get(id);
    if (!job) throw new SimInputError(404, `job ${id} does not exist`);
    return job;
  }

  isRunnerOnline(runner: SimRunner): boolean {
    return runner.contactedAt !== null && this.now().getTime() - runner.contactedAt.getTime() < this.onlineWindowMs;
  }

  /** GitLab's runner `status`: online, offline, stale (no contact for 3 months) or never_contacted. */
  runnerStatus(runner: SimRunner): 'online' | 'offline' | 'stale' | 'never_contacted' {
    if (runner.contactedAt === null) return 'never_contacted';
    if (this.isRunnerOnline(runner)) return 'online';
    const staleAfterMs = 90 * 24 * 3600 * 1000;
    return this.now().getTime() - runner.contactedAt.getTime() > staleAfterMs ? 'stale' : 'offline';
  }

  /** What a runner's poll does to `contacted_at`; the demo loop calls it on every poll. */
  contactRunner(id: number): SimRunner {
    const runner = this.getRunner(id);
    runner.contactedAt = this.now();
    return runner;
  }

  setRunnerPaused(id: number, paused: boolean): SimRunner {
    const runner = this.getRunner(id);
    runner.paused = paused;
    return runner;
  }

  createJob(input: NewJob): SimJob {
    const project = this.findProject(input.projectId);
    if (!project) throw new SimInputError(404, `project ${String(input.projectId)} does not exist`);
    if (input.runnerId !== undefined) this.getRunner(input.runnerId);
    for (const key of ['name', 'stage', 'ref'] as const) requireOptional(input[key], 'string', key);
    const status = input.status ?? 'pending';
    requireStatus(status);
    const id = input.id ?? this.nextJobId;
    requirePositiveInt(id, 'job id');
    if (this.jobs.has(id)) throw new SimInputError(400, `job ${id} already exists`);
    this.nextJobId = Math.max(this.nextJobId, id + 1);
    const now = this.now();
    const job: SimJob = {
      id,
      projectId: project.id,
      pipelineId: this.nextPipelineId++,
      name: input.name ?? 'e2e',
      stage: input.stage ?? 'test',
      ref: input.ref ?? 'main',
      sha: fakeSha(id),
      tags: requireTags(input.tags),
      status,
      runnerId: input.runnerId ?? null,
      failureReason: status === 'failed' ? 'script_failure' : null,
      allowFailure: false,
      createdAt: now,
      startedAt: STARTED.has(status) ? now : null,
      finishedAt: TERMINAL.has(status) ? now : null,
    };
    this.jobs.set(id, job);
    this.emit({ job, previousStatus: null });
    return job;
  }

  /** Moves a job to a status, keeping timestamps as GitLab does. No event when nothing changes. */
  setJobStatus(id: number, status: GitlabJobStatus, opts: { failureReason?: string; runnerId?: number } = {}): SimJob {
    requireStatus(status);
    const job = this.getJob(id);
    if (opts.runnerId !== undefined) {
      this.getRunner(opts.runnerId);
      job.runnerId = opts.runnerId;
    }
    const previousStatus = job.status;
    if (previousStatus === status) return job;
    const now = this.now();
    job.status = status;
    if (STARTED.has(status) && job.startedAt === null) job.startedAt = now;
    job.finishedAt = TERMINAL.has(status) ? now : null;
    job.failureReason = status === 'failed' ? (opts.failureReason ?? 'script_failure') : null;
    this.emit({ job, previousStatus });
    return job;
  }

  /**
   * What GitLab does when a runner asks for work: a paused runner gets nothing; otherwise the
   * oldest pending job reserved for it or unassigned (with tags the runner has) starts running on it.
   */
  assignNextJob(runnerId: number): SimJob | null {
    const runner = this.contactRunner(runnerId);
    if (runner.paused) return null;
    const candidates = [...this.jobs.values()]
      .filter((j) => j.status === 'pending' && (j.runnerId === null || j.runnerId === runnerId))
      .filter((j) => j.tags.every((t) => runner.tags.includes(t)))
      .sort((a, b) => a.id - b.id);
    const job = candidates[0];
    if (!job) return null;
    return this.setJobStatus(job.id, 'running', { runnerId });
  }

  jobsOfRunner(runnerId: number, status?: GitlabJobStatus): SimJob[] {
    return [...this.jobs.values()].filter((j) => j.runnerId === runnerId && (status === undefined || j.status === status));
  }

  private emit(change: JobStatusChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

function requireStatus(status: unknown): asserts status is GitlabJobStatus {
  if (!(GITLAB_JOB_STATUSES as readonly unknown[]).includes(status)) {
    throw new SimInputError(400, `unknown job status ${JSON.stringify(status)}; one of ${GITLAB_JOB_STATUSES.join(', ')}`);
  }
}

function requireOptional(value: unknown, type: 'string' | 'boolean', what: string): void {
  if (value !== undefined && typeof value !== type) throw new SimInputError(400, `${what} must be a ${type}`);
}

function requireTags(tags: unknown): string[] {
  if (tags === undefined) return [];
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw new SimInputError(400, 'tags must be an array of strings');
  return [...tags] as string[];
}

function requirePositiveInt(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new SimInputError(400, `${what} must be a positive integer`);
  }
}

/** A stable 40-hex commit sha per job, so payloads look real and stay deterministic. */
function fakeSha(jobId: number): string {
  return jobId.toString(16).padStart(8, '0').repeat(5);
}
