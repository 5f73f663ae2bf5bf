// GitLab's JSON shapes for the simulator's state: job and runner entities of the REST API and the
// "Job Hook" webhook payload (fields as in integrations.md §2).
import type { GitlabSimState, SimJob, SimProject, SimRunner } from './state.js';

export interface JsonContext {
  state: GitlabSimState;
  /** Simulator base URL, for `web_url` fields. */
  baseUrl: string;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
/** Job hooks use `2021-02-23 02:41:37 UTC` plus `*_iso` variants. */
const hookTime = (d: Date | null) => (d ? `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC` : null);
const seconds = (from: Date | null, to: Date | null) => (from && to ? (to.getTime() - from.getTime()) / 1000 : null);

function projectOf(ctx: JsonContext, job: SimJob): SimProject {
  return ctx.state.projects.get(job.projectId)!;
}

function runnerOf(ctx: JsonContext, job: SimJob): SimRunner | null {
  return job.runnerId === null ? null : (ctx.state.runners.get(job.runnerId) ?? null);
}

export function runnerSummaryJson(ctx: JsonContext, runner: SimRunner) {
  return {
    id: runner.id,
    description: runner.description,
    ip_address: runner.contactedAt ? '127.0.0.1' : null,
    active: !runner.paused,
    paused: runner.paused,
    is_shared: runner.runnerType === 'instance_type',
    runner_type: runner.runnerType,
    name: 'gitlab-runner',
    online: ctx.state.isRunnerOnline(runner),
    status: ctx.state.runnerStatus(runner),
  };
}

export function runnerDetailsJson(ctx: JsonContext, runner: SimRunner) {
  const projects = new Set(ctx.state.jobsOfRunner(runner.id).map((j) => j.projectId));
  return {
    ...runnerSummaryJson(ctx, runner),
    contacted_at: iso(runner.contactedAt),
    architecture: 'amd64',
    platform: 'linux',
    revision: 'sim00000',
    version: '17.0.0',
    tag_list: runner.tags,
    run_untagged: runner.tags.length === 0,
    locked: false,
    maximum_timeout: null,
    access_level: 'not_protected',
    maintenance_note: null,
    projects: [...projects].map((id) => ctx.state.projects.get(id)!).map((p) => projectSummaryJson(p)),
    groups: [],
  };
}

function projectSummaryJson(project: SimProject) {
  const namespace = project.path.split('/').slice(0, -1).join(' / ');
  return {
    id: project.id,
    name: project.name,
    name_with_namespace: `${namespace} / ${project.name}`,
    path: project.name,
    path_with_namespace: project.path,
  };
}

function userJson() {
  return { id: 1, username: 'sim', name: 'Simulator User', state: 'active', avatar_url: null, web_url: 'http://127.0.0.1/sim' };
}

/** `GET /projects/:id/jobs/:job_id`; with `withProject` the shape of `GET /runners/:id/jobs`. */
export function jobJson(ctx: JsonContext, job: SimJob, opts: { withProject?: boolean } = {}) {
  const project = projectOf(ctx, job);
  const runner = runnerOf(ctx, job);
  const now = ctx.state.now();
  return {
    id: job.id,
    status: job.status,
    stage: job.stage,
    name: job.name,
    ref: job.ref,
    tag: false,
    coverage: null,
    allow_failure: job.allowFailure,
    created_at: iso(job.createdAt),
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    erased_at: null,
    duration: job.startedAt ? seconds(job.startedAt, job.finishedAt ?? now) : null,
    queued_duration: seconds(job.createdAt, job.startedAt ?? now),
    user: userJson(),
    commit: { id: job.sha, short_id: job.sha.slice(0, 8), title: 'Simulated commit', message: 'Simulated commit\n' },
    pipeline: {
      id: job.pipelineId,
      iid: job.pipelineId,
      project_id: project.id,
      sha: job.sha,
      ref: job.ref,
      status: job.status,
      source: 'push',
      web_url: `${ctx.baseUrl}/${project.path}/-/pipelines/${job.pipelineId}`,
    },
    web_url: `${ctx.baseUrl}/${project.path}/-/jobs/${job.id}`,
    project: opts.withProject ? projectSummaryJson(project) : { ci_job_token_scope_enabled: false },
    artifacts: [],
    runner: runner ? runnerSummaryJson(ctx, runner) : null,
    runner_manager: null,
    artifacts_expire_at: null,
    archived: false,
    tag_list: job.tags,
    ...(job.status === 'failed' ? { failure_reason: job.failureReason ?? 'script_failure' } : {}),
  };
}

/** The body GitLab POSTs with `X-Gitlab-Event: Job Hook` on every job status change. */
export function jobHookPayload(ctx: JsonContext, job: SimJob) {
  const project = projectOf(ctx, job);
  const runner = runnerOf(ctx, job);
  const projectUrl = `${ctx.baseUrl}/${project.path}`;
  const now = ctx.state.now();
  return {
    object_kind: 'build',
    ref: job.ref,
    tag: false,
    before_sha: '0000000000000000000000000000000000000000',
    sha: job.sha,
    retries_count: 0,
    build_id: job.id,
    build_name: job.name,
    build_stage: job.stage,
    build_status: job.status,
    build_created_at: hookTime(job.createdAt),
    build_started_at: hookTime(job.startedAt),
    build_finished_at: hookTime(job.finishedAt),
    build_created_at_iso: iso(job.createdAt),
    build_started_at_iso: iso(job.startedAt),
    build_finished_at_iso: iso(job.finishedAt),
    build_duration: job.startedAt ? seconds(job.startedAt, job.finishedAt ?? now) : null,
    build_queued_duration: seconds(job.createdAt, job.startedAt ?? now),
    build_allow_failure: job.allowFailure,
    build_failure_reason: job.failureReason,
    pipeline_id: job.pipelineId,
    project_id: project.id,
    project_name: projectSummaryJson(project).name_with_namespace,
    user: { id: 1, name: 'Simulator User', username: 'sim', avatar_url: null, email: '[REDACTED]' },
    commit: {
      // GitLab really sends the pipeline id here.
      id: job.pipelineId,
      name: null,
      sha: job.sha,
      message: 'Simulated commit\n',
      author_name: 'Simulator User',
      author_email: 'sim@example.invalid',
      author_url: `${ctx.baseUrl}/sim`,
      status: job.status,
      duration: null,
      started_at: hookTime(job.startedAt),
      finished_at: hookTime(job.finishedAt),
    },
    repository: {
      name: project.name,
      url: `${projectUrl}.git`,
      description: '',
      homepage: projectUrl,
      git_http_url: `${projectUrl}.git`,
      git_ssh_url: `git@127.0.0.1:${project.path}.git`,
      visibility_level: 0,
    },
    project: {
      id: project.id,
      name: project.name,
      description: '',
      web_url: projectUrl,
      avatar_url: null,
      git_ssh_url: `git@127.0.0.1:${project.path}.git`,
      git_http_url: `${projectUrl}.git`,
      namespace: project.path.split('/')[0],
      visibility_level: 0,
      path_with_namespace: project.path,
      default_branch: 'main',
      ci_config_path: null,
    },
    runner: runner
      ? {
          active: !runner.paused,
          runner_type: runner.runnerType,
          is_shared: runner.runnerType === 'instance_type',
          id: runner.id,
          description: runner.description,
          tags: runner.tags,
        }
      : null,
    environment: null,
  };
}
