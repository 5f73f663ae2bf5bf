// The GitLab simulator: an HTTP server on 127.0.0.1 with GitLab's REST routes (/api/v4), an admin
// API (/_sim, see README.md), job-event webhooks, fault injection and a record of every API call.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GitlabJobStatus } from '../../src/integrations/gitlab/job-status.js';
import { handleAdminRequest } from './admin-routes.js';
import { matchApiRoute, type ApiRequest } from './api-routes.js';
import { FaultInjector, type SimEndpoint, type SimFault, type SimFaultTarget } from './faults.js';
import { sendJson } from './http-json.js';
import { jobHookPayload, type JsonContext } from './json.js';
import { GitlabSimState, type NewJob, type NewProject, type NewRunner, type SimJob, type SimProject, type SimRunner } from './state.js';
import { WebhookSender, type SimWebhookConfig, type WebhookDeliveryRecord } from './webhook-sender.js';

/** Token accepted when none is configured; a well-known simulator value, not a secret. */
export const DEFAULT_SIM_TOKEN = 'glpat-e2epool-simulator';

export interface GitlabSimulatorOptions {
  /** Default 0: the OS picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Tokens accepted in PRIVATE-TOKEN or `Authorization: Bearer`. Default [DEFAULT_SIM_TOKEN]. */
  tokens?: string[];
  webhooks?: SimWebhookConfig[];
  /** Contact age under which a runner is `online`. Default 2 hours, as GitLab. */
  onlineWindowMs?: number;
  /** Clock for timestamps and `online`; tests may pass their own. */
  now?: () => Date;
  /** Initial projects and runners. */
  seed?: { projects?: NewProject[]; runners?: NewRunner[] };
}

export interface SimCall {
  seq: number;
  at: string;
  method: string;
  /** Path as received, e.g. `/api/v4/projects/group%2Fapp/jobs/7`. */
  path: string;
  query: Record<string, string>;
  endpoint: SimEndpoint | null;
  /** Parsed JSON or form body; undefined when empty. */
  body: unknown;
  /** Which credential header the caller used and whether the token was accepted. */
  authHeader: 'private-token' | 'authorization' | null;
  authenticated: boolean;
  fault?: SimFault['kind'];
  /** Status answered; null while hanging or when the connection was dropped. */
  status: number | null;
}

export interface CallFilter {
  endpoint?: SimEndpoint;
  method?: string;
  path?: string;
}

export interface GitlabSimulatorApi {
  readonly state: GitlabSimState;
  addProject(input?: NewProject): SimProject;
  addRunner(input?: NewRunner): SimRunner;
  contactRunner(runnerId: number): SimRunner;
  setRunnerPaused(runnerId: number, paused: boolean): SimRunner;
  createJob(input: NewJob): SimJob;
  setJobStatus(jobId: number, status: GitlabJobStatus, opts?: { failureReason?: string; runnerId?: number }): SimJob;
  /** What a runner poll gets: null when paused or nothing is pending. */
  assignNextJob(runnerId: number): SimJob | null;
  getJob(jobId: number): SimJob;
  getRunner(runnerId: number): SimRunner;
  injectFault(target: SimFaultTarget, fault: SimFault): void;
  clearFaults(target?: SimFaultTarget): void;
  listFaults(): ReturnType<FaultInjector['list']>;
  calls(filter?: CallFilter): SimCall[];
  clearCalls(): void;
  addWebhook(config: SimWebhookConfig): void;
  updateWebhooks(options: Omit<SimWebhookConfig, 'url'>, url?: string): number;
  removeWebhooks(): void;
  listWebhooks(): ReturnType<WebhookSender['listHooks']>;
  deliveries(): WebhookDeliveryRecord[];
  /** Re-sends an earlier event with its original UUID, like GitLab's "Resend request". */
  resendWebhook(uuid: string): boolean;
  /** Resolves when every queued webhook delivery has finished (including retries). */
  flushWebhooks(): Promise<void>;
}

export interface GitlabSimulator {
  url: string;
  port: number;
  api: GitlabSimulatorApi;
  stop(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

export async function startGitlabSimulator(opts: GitlabSimulatorOptions = {}): Promise<GitlabSimulator> {
  const tokens = opts.tokens ?? [DEFAULT_SIM_TOKEN];
  if (tokens.length === 0 || tokens.some((t) => typeof t !== 'string' || t === '')) throw new Error('simulator tokens must be non-empty strings');
  const state = new GitlabSimState(opts.now ?? (() => new Date()), opts.onlineWindowMs ?? 2 * 3600 * 1000);
  const faults = new FaultInjector();
  const sender = new WebhookSender();
  const ctx: JsonContext = { state, baseUrl: '' };
  const calls: SimCall[] = [];
  const stopping = new AbortController();

  for (const project of opts.seed?.projects ?? []) state.addProject(project);
  for (const runner of opts.seed?.runners ?? []) state.addRunner(runner);
  for (const hook of opts.webhooks ?? []) sender.addHook(hook);
  state.onJobStatusChange(({ job }) => sender.send(job.id, job.status, jobHookPayload(ctx, job)));

  const api: GitlabSimulatorApi = {
    state,
    addProject: (input) => state.addProject(input),
    addRunner: (input) => state.addRunner(input),
    contactRunner: (id) => state.contactRunner(id),
    setRunnerPaused: (id, paused) => state.setRunnerPaused(id, paused),
    createJob: (input) => state.createJob(input),
    setJobStatus: (id, status, o) => state.setJobStatus(id, status, o),
    assignNextJob: (id) => state.assignNextJob(id),
    getJob: (id) => state.getJob(id),
    getRunner: (id) => state.getRunner(id),
    injectFault: (target, fault) => faults.inject(target, fault),
    clearFaults: (target) => faults.clear(target),
    listFaults: () => faults.list(),
    calls: (filter = {}) =>
      calls.filter(
        (c) =>
          (filter.endpoint === undefined || c.endpoint === filter.endpoint) &&
          (filter.method === undefined || c.method === filter.method.toUpperCase()) &&
          (filter.path === undefined || c.path === filter.path),
      ),
    clearCalls: () => void calls.splice(0, calls.length),
    addWebhook: (config) => sender.addHook(config),
    updateWebhooks: (options, url) => sender.updateHooks(options, url),
    removeWebhooks: () => sender.removeHooks(),
    listWebhooks: () => sender.listHooks(),
    deliveries: () => [...sender.deliveries],
    resendWebhook: (uuid) => sender.resend(uuid),
    flushWebhooks: () => sender.idle(),
  };

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const rawSegments = url.pathname.slice('/api/v4/'.length).split('/').filter((s) => s !== '');
    const segments = rawSegments.map(safeDecode);
    const route = matchApiRoute(req.method ?? 'GET', segments);
    const endpoint = route && route !== 'method_not_allowed' ? route.endpoint : null;
    const { authHeader, token } = credentialOf(req);
    const call: SimCall = {
      seq: calls.length + 1,
      at: new Date().toISOString(),
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      endpoint,
      body: undefined,
      authHeader,
      authenticated: token !== undefined && tokens.includes(token),
      status: null,
    };
    calls.push(call);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      sendJson(res, status, body, headers);
    };

    let body: Record<string, unknown>;
    try {
      body = await readParams(req);
    } catch (err) {
      return send(400, { error: (err as Error).message });
    }
    call.body = Object.keys(body).length > 0 ? body : undefined;

    const fault = faults.take(endpoint ?? undefined);
    if (fault) {
      call.fault = fault.kind;
      if (fault.kind === 'hang') return; // never answered; stop() drops the socket
      if (fault.kind === 'disconnect') return void req.socket.destroy();
      if (fault.kind === 'status') return send(fault.status, { message: fault.message ?? defaultFaultMessage(fault.status, endpoint) });
      await sleep(fault.ms, stopping.signal);
      if (stopping.signal.aborted) return;
    }

    if (!call.authenticated) return send(401, { message: '401 Unauthorized' });
    if (route === undefined) return send(404, { error: '404 Not Found' });
    if (route === 'method_not_allowed') return send(405, { error: '405 Method Not Allowed' });
    const apiReq: ApiRequest = {
      method: call.method,
      segments,
      query: url.searchParams,
      // Grape merges query and body parameters; the body wins.
      params: { ...Object.fromEntries(url.searchParams), ...body },
    };
    const out = route.handle(ctx, apiReq);
    send(out.status, out.body, out.headers);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://simulator.invalid');
    const work = url.pathname.startsWith('/api/v4/')
      ? handleApi(req, res, url)
      : url.pathname === '/_sim' || url.pathname.startsWith('/_sim/')
        ? readParams(req).then((params) => handleAdminRequest(api, ctx, req.method ?? 'GET', url, params, res))
        : Promise.resolve(sendJson(res, 404, { error: '404 Not Found' }));
    work.catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, err instanceof BodyError ? 400 : 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  const url = `http://${host}:${port}`;
  ctx.baseUrl = url;

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= new Promise<void>((resolve) => {
      stopping.abort();
      sender.stop();
      server.close(() => resolve());
      // Hanging requests and keep-alive sockets would hold close() open forever.
      server.closeAllConnections();
    });
    return stopped;
  };
  return { url, port, api, stop };
}

class BodyError extends Error {}

function credentialOf(req: IncomingMessage): { authHeader: SimCall['authHeader']; token: string | undefined } {
  const privateToken = req.headers['private-token'];
  if (typeof privateToken === 'string') return { authHeader: 'private-token', token: privateToken };
  const authorization = req.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    return { authHeader: 'authorization', token: match?.[1] };
  }
  return { authHeader: null, token: undefined };
}

async function readParams(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyError('request body too large');
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  if (raw.trim() === '') return {};
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(raw));
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new BodyError('body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BodyError('body must be a JSON object');
  return parsed as Record<string, unknown>;
}

function defaultFaultMessage(status: number, endpoint: SimEndpoint | null): string {
  if (status === 404) return endpoint === 'getJob' ? '404 Job Not Found' : endpoint ? '404 Runner Not Found' : '404 Not Found';
  if (status === 401) return '401 Unauthorized';
  if (status === 403) return '403 Forbidden';
  if (status === 502) return '502 Bad Gateway';
  if (status === 503) return '503 Service Unavailable';
  if (status === 500) return '500 Internal Server Error';
  return `${status} Error`;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
