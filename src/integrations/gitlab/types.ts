// Shapes of the GitLab REST objects the controller reads, validated leniently: the fields we use
// are checked, everything else GitLab sends is kept as is.
import { z } from 'zod';

const timestamp = z.string().nullish().transform((v) => v ?? null);

export const gitlabJobRunnerSchema = z.looseObject({
  id: z.number().int(),
  description: z.string().nullish(),
  paused: z.boolean().optional(),
  online: z.boolean().nullish(),
  status: z.string().optional(),
});

export const gitlabJobSchema = z.looseObject({
  id: z.number().int(),
  /** Kept as a string: newer GitLab versions may add statuses (see job-status.ts). */
  status: z.string(),
  name: z.string().optional(),
  stage: z.string().optional(),
  ref: z.string().optional(),
  failure_reason: z.string().nullish().transform((v) => v ?? null),
  created_at: timestamp,
  started_at: timestamp,
  finished_at: timestamp,
  duration: z.number().nullish().transform((v) => v ?? null),
  queued_duration: z.number().nullish().transform((v) => v ?? null),
  allow_failure: z.boolean().optional(),
  tag_list: z.array(z.string()).optional(),
  web_url: z.string().optional(),
  runner: gitlabJobRunnerSchema.nullish().transform((v) => v ?? null),
  pipeline: z.looseObject({ id: z.number().int(), project_id: z.number().int().optional() }).optional(),
  /**
   * `GET /runners/:id/jobs` includes the project's id (how a project id is learned from a runner);
   * the project job route sends only `{ci_job_token_scope_enabled}` here.
   */
  project: z.looseObject({ id: z.number().int().optional(), path_with_namespace: z.string().optional() }).nullish(),
});

export type GitlabJob = z.infer<typeof gitlabJobSchema>;

export const gitlabRunnerSchema = z.looseObject({
  id: z.number().int(),
  description: z.string().nullish(),
  paused: z.boolean(),
  /** Deprecated mirror of `!paused`; read for diagnosis only. */
  active: z.boolean().optional(),
  /** GitLab's "contacted within 2 hours"; only a sanity check, never proof of readiness. */
  online: z.boolean().nullish().transform((v) => v ?? false),
  status: z.string(),
  contacted_at: timestamp,
  runner_type: z.string().optional(),
  is_shared: z.boolean().optional(),
  tag_list: z.array(z.string()).optional(),
});

export type GitlabRunner = z.infer<typeof gitlabRunnerSchema>;

/** Statuses accepted by `GET /runners/:id/jobs?status=`. */
export const RUNNER_JOB_FILTER_STATUSES = ['running', 'success', 'failed', 'canceled'] as const;
export type RunnerJobFilterStatus = (typeof RUNNER_JOB_FILTER_STATUSES)[number];
