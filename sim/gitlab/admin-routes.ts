// The simulator's admin HTTP API under /_sim: drive projects, runners and jobs, inject faults,
// read recorded calls and webhook deliveries. Unauthenticated: the simulator listens on 127.0.0.1
// only. README.md lists every route.
import type { ServerResponse } from 'node:http';
import { validateFault, type SimFaultTarget } from './faults.js';
import { jobJson, runnerDetailsJson, type JsonContext } from './json.js';
import { sendJson } from './http-json.js';
import type { GitlabSimulatorApi } from './simulator.js';
import { SimInputError, type NewJob, type NewProject, type NewRunner } from './state.js';
import type { SimWebhookConfig } from './webhook-sender.js';
import type { GitlabJobStatus } from '../../src/integrations/gitlab/job-status.js';

type Params = Record<string, unknown>;

export async function handleAdminRequest(
  api: GitlabSimulatorApi,
  ctx: JsonContext,
  method: string,
  url: URL,
  params: Params,
  res: ServerResponse,
): Promise<void> {
  const segments = url.pathname.split('/').filter((s) => s !== '').slice(1);
  const route = `${method} /${segments.map((s) => (/^\d+$/.test(s) ? ':id' : s)).join('/')}`;
  const id = Number(segments.find((s) => /^\d+$/.test(s)));
  const ok = (body: unknown, status = 200) => sendJson(res, status, body);
  const job = (j: Parameters<typeof jobJson>[1]) => jobJson(ctx, j, { withProject: true });
  const runner = (r: Parameters<typeof runnerDetailsJson>[1]) => runnerDetailsJson(ctx, r);

  try {
    switch (route) {
      case 'GET /state':
        return ok({
          projects: [...api.state.projects.values()],
          runners: [...api.state.runners.values()].map(runner),
          jobs: [...api.state.jobs.values()].map(job),
        });
      case 'POST /projects':
        return ok(api.addProject(pick<NewProject>(params, ['id', 'path'])), 201);
      case 'POST /runners':
        return ok(runner(api.addRunner(runnerInput(params))), 201);
      case 'GET /runners/:id':
        return ok(runner(api.getRunner(id)));
      case 'POST /runners/:id/contact':
        return ok(runner(api.contactRunner(id)));
      case 'POST /runners/:id/paused':
        if (typeof params.paused !== 'boolean') throw new SimInputError(400, 'paused must be a boolean');
        return ok(runner(api.setRunnerPaused(id, params.paused)));
      case 'POST /runners/:id/assign-next': {
        const next = api.assignNextJob(id);
        return ok({ job: next ? job(next) : null });
      }
      case 'POST /jobs':
        return ok(job(api.createJob(pick<NewJob>(params, ['projectId', 'runnerId', 'status', 'name', 'stage', 'ref', 'tags', 'id']))), 201);
      case 'GET /jobs/:id':
        return ok(job(api.getJob(id)));
      case 'POST /jobs/:id/status':
        return ok(
          job(
            api.setJobStatus(id, params.status as GitlabJobStatus, {
              failureReason: optionalString(params.failureReason, 'failureReason'),
              runnerId: optionalNumber(params.runnerId, 'runnerId'),
            }),
          ),
        );
      case 'GET /faults':
        return ok({ faults: api.listFaults() });
      case 'POST /faults': {
        const { endpoint, ...fault } = params;
        const target = (endpoint ?? 'any') as SimFaultTarget;
        try {
          validateFault(target, fault);
        } catch (err) {
          throw new SimInputError(400, (err as Error).message);
        }
        api.injectFault(target, fault);
        return ok({ faults: api.listFaults() }, 201);
      }
      case 'DELETE /faults':
        api.clearFaults(url.searchParams.get('endpoint') as SimFaultTarget | null ?? undefined);
        return ok({ faults: api.listFaults() });
      case 'GET /calls': {
        const endpoint = url.searchParams.get('endpoint') ?? undefined;
        return ok({ calls: api.calls({ endpoint: endpoint as never }) });
      }
      case 'DELETE /calls':
        api.clearCalls();
        return ok({ calls: [] });
      case 'GET /webhooks':
        return ok({ webhooks: api.listWebhooks() });
      case 'POST /webhooks':
        api.addWebhook(webhookInput(params, true) as SimWebhookConfig);
        return ok({ webhooks: api.listWebhooks() }, 201);
      case 'PATCH /webhooks': {
        const { url: hookUrl, ...options } = webhookInput(params, false);
        return ok({ updated: api.updateWebhooks(options, hookUrl) });
      }
      case 'DELETE /webhooks':
        api.removeWebhooks();
        return ok({ webhooks: [] });
      case 'GET /webhooks/deliveries':
        return ok({ deliveries: api.deliveries() });
      case 'POST /webhooks/resend':
        if (typeof params.uuid !== 'string') throw new SimInputError(400, 'uuid must be a string');
        if (!api.resendWebhook(params.uuid)) throw new SimInputError(404, `no webhook event ${params.uuid}`);
        return ok({ resent: params.uuid }, 202);
      case 'POST /webhooks/flush':
        await api.flushWebhooks();
        return ok({ deliveries: api.deliveries().length });
      default:
        return sendJson(res, 404, { error: `no admin route ${route}; see sim/gitlab/README.md` });
    }
  } catch (err) {
    if (err instanceof SimInputError) return sendJson(res, err.httpStatus, { error: err.message });
    // Validation errors from the webhook sender and URL parsing are the caller's mistakes too.
    if (err instanceof Error && /must be|Invalid URL/.test(err.message)) return sendJson(res, 400, { error: err.message });
    throw err;
  }
}

function pick<T>(params: Params, keys: string[]): T {
  return Object.fromEntries(keys.filter((k) => params[k] !== undefined).map((k) => [k, params[k]])) as T;
}

function runnerInput(params: Params): NewRunner {
  const input = pick<NewRunner & { contactedAt?: unknown }>(params, ['id', 'description', 'paused', 'contacted', 'tags', 'runnerType']);
  if (input.contacted !== undefined && typeof input.contacted !== 'boolean') throw new SimInputError(400, 'contacted must be a boolean');
  if (typeof params.contactedAt === 'string') {
    const at = new Date(params.contactedAt);
    if (Number.isNaN(at.getTime())) throw new SimInputError(400, 'contactedAt must be an ISO timestamp');
    input.contacted = at;
  }
  return input;
}

function webhookInput(params: Params, requireUrl: boolean): Partial<SimWebhookConfig> {
  if (requireUrl && typeof params.url !== 'string') throw new SimInputError(400, 'url must be a string');
  const input = pick<Partial<SimWebhookConfig>>(params, ['url', 'token', 'duplicates', 'delayMs', 'maxAttempts', 'retryDelayMs', 'timeoutMs']);
  if (input.token !== undefined && typeof input.token !== 'string') throw new SimInputError(400, 'token must be a string');
  return input;
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new SimInputError(400, `${what} must be a string`);
  return value;
}

function optionalNumber(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new SimInputError(400, `${what} must be a number`);
  return value;
}
