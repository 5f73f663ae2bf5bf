// Runner-facing routes (protocol spec §4.3, §4.4): the runner bearer token is checked first, then the
// JSON body is parsed and validated, then the checkpoint service answers.
import express, { type Request, type Response, type Router } from 'express';
import { STRICT_ROUTING } from '../strict-routing.js';
import { z } from 'zod';
import type { Runner } from '../../inventory/registry.js';
import { FINALIZE_SOURCE_PATTERN } from '../../domain/finalize.js';
import { LEGACY_NAME_PATTERN } from '../../domain/checkpoint-name.js';
import { NAME_PATTERN_MESSAGE, type CheckpointService } from '../../services/checkpoints.js';
import { requireRunnerToken, type RunnerTokenAuthenticator } from '../auth.js';
import { DEFAULT_BODY_LIMIT, jsonBody, parseBody } from '../errors.js';
import { zonedJson } from './zoned-times.js';

/** e2epool's id rule for runner_id and job_id, with pydantic's message. */
const idField = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\w.-]+$/, { message: "String should match pattern '^[\\w.\\-]+$'" });

export const createBodySchema = z.object({
  runner_id: idField,
  job_id: idField,
  caller: z.string().max(255).nullish(),
  /** Ours: lets the GitLab job watch start without learning the project first. */
  project_id: z
    .union([z.string().max(255), z.number().int().nonnegative()])
    .nullish()
    .transform((v) => (v === null || v === undefined || v === '' ? undefined : String(v))),
});

export const finalizeBodySchema = z.object({
  checkpoint_name: z.string().refine((v) => LEGACY_NAME_PATTERN.test(v), { message: `Value error, ${NAME_PATTERN_MESSAGE}` }),
  // GitLab's $CI_JOB_STATUS says `failed`: accepted as `failure`.
  status: z.preprocess((v) => (v === 'failed' ? 'failure' : v), z.enum(['success', 'failure', 'canceled'])),
  source: z
    .string()
    .min(1)
    .max(50)
    .regex(FINALIZE_SOURCE_PATTERN, { message: "String should match pattern '^[\\w.\\-]+$'" })
    .nullish(),
});

export interface CheckpointRoutesOptions {
  service: CheckpointService;
  registry: RunnerTokenAuthenticator;
  bodyLimit?: string;
}

const runnerOf = (res: Response) => (res.locals.runner as Runner).runnerId;

export function createCheckpointRoutes(opts: CheckpointRoutesOptions): Router {
  const { service } = opts;
  const router = express.Router(STRICT_ROUTING);
  const auth = requireRunnerToken(opts.registry);
  router.use(['/checkpoint', '/runner'], zonedJson);
  const body = jsonBody(opts.bodyLimit ?? DEFAULT_BODY_LIMIT);

  router.post('/checkpoint/create', auth, body, async (req: Request, res: Response) => {
    const input = parseBody(createBodySchema, req.body);
    res.status(201).json(await service.create(runnerOf(res), input));
  });

  router.post('/checkpoint/finalize', auth, body, async (req: Request, res: Response) => {
    const input = parseBody(finalizeBodySchema, req.body);
    res.status(202).json(await service.finalize(runnerOf(res), { checkpoint_name: input.checkpoint_name, status: input.status, source: input.source }, 'hook'));
  });

  router.get('/checkpoint/status/:name', auth, async (req: Request<{ name: string }>, res: Response) => {
    res.json(await service.status(runnerOf(res), req.params.name));
  });

  router.get('/runner/readiness', auth, async (_req: Request, res: Response) => {
    const answer = await service.readiness(runnerOf(res));
    res.status(answer.ready ? 200 : 503).json(answer.ready ? answer : { detail: answer.detail, runner_id: answer.runner_id, ready: false, reason: answer.reason });
  });

  return router;
}
