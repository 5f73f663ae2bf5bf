// The HTTP API on real parts for tests: a Temporal dev server, a checkpoint worker with the real
// store activities (backend, CI and agent routing are tiny stand-ins: snapshots do nothing, no agent
// is ever connected), a database, and express on 127.0.0.1 with port 0.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { BackendActivities, CiActivities, RouteActivities } from '../../activities/types.js';
import { createStoreActivities } from '../../activities/store.js';
import { createApp } from '../../src/api/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { RunnerRegistry } from '../../src/inventory/registry.js';
import { createLogger } from '../../src/logger.js';
import { createCheckpointService, type CheckpointService } from '../../src/services/checkpoints.js';
import type { CreateRateLimitSettings } from '../../src/services/create-rate-limit.js';
import type { TestDatabase } from './databases.js';
import { bundleWorkflowsOnce } from './temporal.js';

export const ADMIN_TOKEN = 'admin-token-for-api-tests';

/** Backend and CI stand-ins: every step succeeds at once; no agent session exists anywhere. */
export function standInActivities(): BackendActivities & CiActivities & RouteActivities {
  return {
    takeSnapshot: async () => ({ vmid: null }),
    deleteSnapshot: async () => undefined,
    assertVmUnchanged: async () => undefined,
    stopVm: async () => undefined,
    rollbackVm: async () => undefined,
    startVm: async () => undefined,
    pauseRunner: async () => undefined,
    unpauseRunner: async () => undefined,
    listRunningJobs: async () => ({ kind: 'jobs', jobIds: [] }),
    observeJob: async () => ({ kind: 'running' }),
    watchJob: () => new Promise(() => undefined),
    resolveAgentRoute: async () => null,
  };
}

export interface ApiServer {
  base: string;
  service: CheckpointService;
  server: Server;
}

export interface ApiHarness {
  config: Config;
  registry: RunnerRegistry;
  taskQueue: string;
  /** Serves the default service (6 creates per runner per minute). */
  api: ApiServer;
  /** Starts another app on the same database and Temporal, e.g. with other limits or task queue. */
  startApp(opts?: { createRateLimit?: CreateRateLimitSettings; taskQueue?: string; config?: Partial<Config>; clientGraceSeconds?: number }): Promise<ApiServer>;
  registerRunner(runnerId: string, extra?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

let queueCounter = 0;

export async function startApiHarness(env: TestWorkflowEnvironment, database: TestDatabase, overrides: Partial<Record<keyof Config, unknown>> = {}): Promise<ApiHarness> {
  const logger = createLogger({ level: 'silent' });
  const taskQueue = `api-test-${process.pid}-${++queueCounter}`;
  const config = loadConfig(
    {},
    {
      ADMIN_TOKEN,
      TEMPORAL_NAMESPACE: env.namespace ?? 'default',
      TASK_QUEUE: taskQueue,
      TEMPORAL_UI_URL: 'http://127.0.0.1:8233',
      POLLER_ENABLED: 'false',
      FINALIZE_COOLDOWN_SECONDS: 2,
      CREATE_TIMEOUT_SECONDS: 30,
      CREATE_WAIT_FOR_CLEANUP_SECONDS: 0,
      AGENT_ROUTE_ATTEMPTS: 1,
      READINESS_STABLE_SECONDS: 0,
      ...overrides,
    },
  );
  const registry = new RunnerRegistry({ db: database.db, pepper: 'api-test-pepper' });
  const bundle = await bundleWorkflowsOnce();
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    workflowBundle: bundle,
    activities: { ...createStoreActivities({ db: database.db, logger }), ...standInActivities() },
  });
  const running = worker.run();
  const servers: Server[] = [];
  let closed = false;

  async function startApp(opts: { createRateLimit?: CreateRateLimitSettings; taskQueue?: string; config?: Partial<Config>; clientGraceSeconds?: number } = {}): Promise<ApiServer> {
    const appConfig = { ...config, ...opts.config };
    const service = createCheckpointService({
      db: database.db,
      registry,
      temporal: { client: env.client, taskQueue: opts.taskQueue ?? taskQueue },
      config: appConfig,
      logger,
      createRateLimit: opts.createRateLimit,
      clientGraceSeconds: opts.clientGraceSeconds,
    });
    const app = createApp({ db: database.db, registry, checkpoints: service, config: appConfig, logger, temporal: { client: env.client } });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    servers.push(server);
    return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, service, server };
  }

  const api = await startApp();
  return {
    config,
    registry,
    taskQueue,
    api,
    startApp,
    async registerRunner(runnerId, extra = {}) {
      const { token } = await registry.createRunner({ runner_id: runnerId, backend: 'bare_metal', reset_cmd: '/usr/local/bin/reset-runner', ...extra });
      return token;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      worker.shutdown();
      await running;
    },
  };
}

export interface CallOptions {
  token?: string | null;
  auth?: string;
  body?: unknown;
  rawBody?: string;
}

/** One HTTP call; `token` becomes `Bearer <token>`, `auth` is sent verbatim. */
export async function call(base: string, method: string, path: string, opts: CallOptions = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (opts.auth !== undefined) headers.authorization = opts.auth;
  else if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}

/** API timestamps: ISO 8601 in UTC with the zone. */
export const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
