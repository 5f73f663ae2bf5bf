// Admin runner API (protocol spec §4.7) plus token rotation and drain. Every route needs the admin
// token, checked before the body is read; every change is written to the audit log.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { STRICT_ROUTING } from '../strict-routing.js';
import { E2epoolError, httpStatusOf } from '../../domain/errors.js';
import { toValidationDetail, type ValidationDetailItem } from '../../inventory/issues.js';
import type { RunnerRegistry } from '../../inventory/registry.js';
import { runnerView } from '../runner-view.js';
import { runnerInputSchema } from '../../inventory/runner-config.js';
import type { Logger } from '../../logger.js';
import { requireAdminToken, type AdminIdentity } from '../auth.js';
import { zonedJson } from './zoned-times.js';
import type { AuditRecorder } from '../../services/audit.js';

export type RunnerRegistryApi = Pick<
  RunnerRegistry,
  'authenticateRunnerToken' | 'getRunner' | 'listRunners' | 'createRunner' | 'deactivateRunner' | 'rotateToken' | 'rotateAgentToken' | 'setDrained'
>;

export interface RunnersRouterOptions {
  registry: RunnerRegistryApi;
  audit: AuditRecorder;
  /** E2EPOOL_ADMIN_TOKEN; unset answers 503 `Admin API not configured`. */
  adminToken: string | undefined;
  logger?: Logger;
}

const RUNNER_NOT_FOUND = 'Runner not found';

function validationError(res: Response, detail: ValidationDetailItem[]): void {
  res.status(422).json({ detail });
}

/** pydantic's lax booleans, as FastAPI parsed `?include_inactive=`. */
function parseQueryBool(value: unknown): boolean | undefined | 'invalid' {
  const last = Array.isArray(value) ? value.at(-1) : value;
  if (last === undefined) return undefined;
  const s = String(last).trim().toLowerCase();
  if (['true', '1', 'yes', 'on', 't', 'y'].includes(s)) return true;
  if (['false', '0', 'no', 'off', 'f', 'n'].includes(s)) return false;
  return 'invalid';
}

export function createRunnersRouter(opts: RunnersRouterOptions): Router {
  const { registry, audit, logger } = opts;
  const router = express.Router(STRICT_ROUTING);
  const jsonBody = express.json({ limit: '1mb', strict: false });

  const recordAudit = async (res: Response, action: string, target: string, detail?: Record<string, unknown>) => {
    const admin = res.locals.admin as AdminIdentity | undefined;
    try {
      await audit.record({ actor: admin?.actor ?? 'admin', action, target, detail });
    } catch (err) {
      // The change is already made; losing its audit row must not turn it into an error answer.
      logger?.error({ err, action, runnerId: target }, 'could not write the audit log');
    }
  };

  router.use('/api/runners', requireAdminToken(opts.adminToken), zonedJson);

  router.post('/api/runners', jsonBody, async (req: Request, res: Response) => {
    const body: unknown = req.body;
    if (body === undefined) {
      validationError(res, [{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }]);
      return;
    }
    const parsed = runnerInputSchema.safeParse(body);
    if (!parsed.success) {
      validationError(res, toValidationDetail(parsed.error, body, 'body'));
      return;
    }
    const { runner, token, reactivated } = await registry.createRunner(parsed.data);
    await recordAudit(res, 'runner.create', runner.runnerId, { backend: runner.backend, reactivated });
    res.status(201).set('Cache-Control', 'no-store').json(runnerView(runner, token));
  });

  router.get('/api/runners', async (req: Request, res: Response) => {
    const includeInactive = parseQueryBool(req.query.include_inactive);
    if (includeInactive === 'invalid') {
      const input = req.query.include_inactive;
      validationError(res, [
        {
          type: 'bool_parsing',
          loc: ['query', 'include_inactive'],
          msg: 'Input should be a valid boolean, unable to interpret input',
          input: Array.isArray(input) ? input.at(-1) : input,
        },
      ]);
      return;
    }
    const list = await registry.listRunners({ includeInactive: includeInactive ?? false });
    res.json(list.map((r) => runnerView(r)));
  });

  router.get('/api/runners/:runnerId', async (req: Request<{ runnerId: string }>, res: Response) => {
    const runner = await registry.getRunner(req.params.runnerId);
    if (!runner) throw new E2epoolError('runner_not_found', RUNNER_NOT_FOUND);
    res.json(runnerView(runner));
  });

  router.delete('/api/runners/:runnerId', async (req: Request<{ runnerId: string }>, res: Response) => {
    const runnerId = req.params.runnerId;
    const runner = await registry.deactivateRunner(runnerId);
    if (!runner) throw new E2epoolError('runner_not_found', RUNNER_NOT_FOUND);
    await recordAudit(res, 'runner.deactivate', runnerId, { source: runner.source });
    res.json({ detail: `Runner '${runnerId}' deactivated` });
  });

  router.post('/api/runners/:runnerId/rotate-token', async (req: Request<{ runnerId: string }>, res: Response) => {
    const runnerId = req.params.runnerId;
    const rotated = await registry.rotateToken(runnerId);
    if (!rotated) throw new E2epoolError('runner_not_found', RUNNER_NOT_FOUND);
    await recordAudit(res, 'runner.rotate_token', runnerId);
    res.set('Cache-Control', 'no-store').json(runnerView(rotated.runner, rotated.token));
  });

  // The agent's own credential (shown once): from then on the runner token cannot open agent sessions.
  router.post('/api/runners/:runnerId/rotate-agent-token', async (req: Request<{ runnerId: string }>, res: Response) => {
    const runnerId = req.params.runnerId;
    const rotated = await registry.rotateAgentToken(runnerId);
    if (!rotated) throw new E2epoolError('runner_not_found', RUNNER_NOT_FOUND);
    await recordAudit(res, 'runner.rotate_agent_token', runnerId);
    res.set('Cache-Control', 'no-store').json({ ...runnerView(rotated.runner), agent_token: rotated.agentToken });
  });

  for (const [path, drained] of [
    ['drain', true],
    ['undrain', false],
  ] as const) {
    router.post(`/api/runners/:runnerId/${path}`, async (req: Request<{ runnerId: string }>, res: Response) => {
      const runnerId = req.params.runnerId;
      const runner = await registry.setDrained(runnerId, drained);
      if (!runner) throw new E2epoolError('runner_not_found', RUNNER_NOT_FOUND);
      await recordAudit(res, `runner.${path}`, runnerId);
      res.json(runnerView(runner));
    });
  }

  // Errors of the routes above only: domain errors keep their status and detail; bodies that are
  // not JSON are a FastAPI-style 422.
  router.use((err: any, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    if (err instanceof E2epoolError) {
      res.status(httpStatusOf(err.code)).json({ detail: err.detail });
      return;
    }
    if (err?.type === 'entity.parse.failed') {
      validationError(res, [{ type: 'json_invalid', loc: ['body', 0], msg: 'JSON decode error', input: {}, ctx: { error: String(err.message ?? 'invalid JSON') } }]);
      return;
    }
    if (err?.type === 'entity.too.large') {
      res.status(413).json({ detail: 'Request body too large' });
      return;
    }
    // Everything else (a malformed URL, a failure of ours) is the app's one error mapping.
    next(err);
  });

  return router;
}
