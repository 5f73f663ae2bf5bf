// The express application: health, runner checkpoint routes, admin routes, and room for the webhook
// and dashboard routers. One error mapping (errors.ts) and FastAPI's 404 for unknown routes.
import express, { type Express, type RequestHandler, type Router } from 'express';
import type { Client } from '@temporalio/client';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { createAuditRecorder, type AuditRecorder } from '../services/audit.js';
import type { CheckpointService } from '../services/checkpoints.js';
import { createHealthReporter } from '../services/health.js';
import type { Db } from '../store/database.js';
import { errorMiddleware, notFoundHandler } from './errors.js';
import { createAdminCheckpointRoutes } from './routes/admin-checkpoints.js';
import { createCheckpointRoutes } from './routes/checkpoints.js';
import { createHealthRoutes, type WorkersRunning } from './routes/health.js';
import { createRunnersRouter, type RunnerRegistryApi } from './routes/runners.js';

export interface AppDeps {
  db: Db;
  registry: RunnerRegistryApi;
  checkpoints: CheckpointService;
  config: Pick<Config, 'ADMIN_TOKEN' | 'TEMPORAL_UI_URL' | 'TEMPORAL_NAMESPACE'>;
  logger: Logger;
  /** For `/health`'s Temporal probe; without it Temporal reads as unreachable. */
  temporal?: { client: Client };
  audit?: AuditRecorder;
  /** Mounted after the built-in routes and before the 404: webhooks, dashboard, metrics. */
  extraRouters?: Array<Router | RequestHandler>;
  /** Largest JSON body accepted (default 64kb). */
  bodyLimit?: string;
  /** Runs first on every request (the instance's HTTP request timer). */
  httpTimer?: RequestHandler;
  /** Whether this instance's Temporal workers run; /healthz answers 503 while they do not. */
  workersRunning?: WorkersRunning;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  app.set('etag', false);
  const audit = deps.audit ?? createAuditRecorder(deps.db);
  const reporter = createHealthReporter({ db: deps.db, temporal: deps.temporal ? { client: deps.temporal.client, namespace: deps.config.TEMPORAL_NAMESPACE } : undefined });

  if (deps.httpTimer) app.use(deps.httpTimer);
  app.use(createHealthRoutes({ db: deps.db, reporter, ...(deps.workersRunning ? { workersRunning: deps.workersRunning } : {}) }));
  app.use(createCheckpointRoutes({ service: deps.checkpoints, registry: deps.registry, bodyLimit: deps.bodyLimit }));
  app.use(createRunnersRouter({ registry: deps.registry, audit, adminToken: deps.config.ADMIN_TOKEN, logger: deps.logger }));
  app.use(createAdminCheckpointRoutes({ db: deps.db, service: deps.checkpoints, config: deps.config, bodyLimit: deps.bodyLimit }));
  for (const router of deps.extraRouters ?? []) app.use(router);
  app.use(notFoundHandler);
  app.use(errorMiddleware(deps.logger));
  return app;
}
