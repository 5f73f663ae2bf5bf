// Assembles one controller instance: database, registry, Temporal client and workers, agent
// gateway, HTTP API and webhook dispatcher; and stops it gracefully. Used by `serve`, `dev` and the
// integration tests (several instances in one test).
import http from 'node:http';
import { createCheckpointQueueWorker } from './checkpoint-queue-worker.js';
import { temporalConnectionSecurity } from '../temporal/connection-options.js';
import { agentAuthenticator } from './inventory/agent-credential.js';
import { raiseAlert } from './store/alert-store.js';
import { AdminTokens } from './api/admin-tokens.js';
import { createAuditRouter } from './api/routes/audit.js';
import { createAdminWebhooksRouter } from './api/routes/admin-webhooks.js';
import { createAuditRecorder } from './services/audit.js';
import express from 'express';
import { AuthFailureLimiter } from './util/auth-failures.js';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { migrate, openDatabase, type Database } from './store/database.js';
import { RunnerRegistry } from './inventory/registry.js';
import { startInventorySync } from './inventory/watch.js';
import { connectTemporal } from '../temporal/client.js';
import { assertServerCapabilities } from '../temporal/capabilities.js';
import { assertSearchAttributes } from '../temporal/search-attributes-admin.js';
import { createAgentGateway, type AgentGateway } from './gateway/index.js';
import { createGatewayActivities } from '../activities/index.js';
import { gatewayTaskQueue } from '../activities/types.js';
import { createCheckpointService, agentRequestHandlerFor } from './services/checkpoints.js';
import { createApp } from './api/app.js';
import { createWebhooksRouter } from './api/routes/webhooks.js';
import { createWebhookDispatcher } from './webhooks/dispatcher.js';
import { createDashboardRouter } from './api/routes/dashboard.js';
import { createMetricsRouter } from './metrics/metrics.js';
import { createStatsRouter } from './api/routes/stats.js';
import { createAlertDelivery } from './alerts/delivery.js';
import { alertThresholdsFromConfig, createAlertMonitor } from './alerts/conditions.js';
import { createHealthReporter } from './services/health.js';
import { createHousekeepingRouter } from './api/routes/housekeeping.js';
import { ensureHousekeepingSchedules } from '../temporal/schedules.js';
import { installTemporalRuntime } from '../temporal/runtime.js';
import { createInstanceMetrics } from './metrics/instance-metrics.js';

/** The SDK's log level for our pino level. */
export function sdkLogLevel(level: Config['LOG_LEVEL']): 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' {
  return level === 'trace' ? 'TRACE' : level === 'debug' ? 'DEBUG' : level === 'info' ? 'INFO' : level === 'warn' ? 'WARN' : 'ERROR';
}

export interface ControllerOptions {
  /** Run the checkpoint-queue worker in this process (serve: yes; tests may split). */
  checkpointWorker?: boolean;
  logger?: Logger;
  /** Pre-built workflow bundle (tests bundle once per file). */
  workflowBundle?: { code: string };
  /**
   * Called once when a Temporal worker stops with an error while the controller runs. `serve` stops
   * and exits non-zero so its supervisor restarts it; /healthz answers 503 from that moment.
   */
  onWorkerFailure?: (err: Error) => void;
}

export interface Controller {
  instanceId: string;
  url: string;
  port: number;
  logger: Logger;
  database: Database;
  registry: RunnerRegistry;
  gateway: AgentGateway;
  stop(): Promise<void>;
}

export function newInstanceId(): string {
  return `${process.pid.toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** E2EPOOL_INSTANCE_ID when set (a `worker` process adds `-worker`), else a random id per start. */
export function instanceIdOf(config: Pick<Config, 'INSTANCE_ID'>, role: 'controller' | 'worker' = 'controller'): string {
  if (!config.INSTANCE_ID) return newInstanceId();
  return role === 'worker' ? `${config.INSTANCE_ID}-worker` : config.INSTANCE_ID;
}

export async function startController(config: Config, opts: ControllerOptions = {}): Promise<Controller> {
  const instanceId = instanceIdOf(config);
  const logger = (opts.logger ?? createLogger({ level: config.LOG_LEVEL })).child({ instanceId });
  const cleanups: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        logger.warn({ err }, 'error while stopping');
      }
    }
  };
  try {
    const database = await openDatabase(config.DATABASE_URL, { poolSize: config.DB_POOL_SIZE });
    cleanups.push(() => database.close());
    await migrate(database);
    logger.info({ database: database.where }, 'database ready');

    const registry = new RunnerRegistry({ db: database.db, pepper: config.TOKEN_PEPPER, logger });
    const inventory = await startInventorySync({ registry, path: config.INVENTORY_PATH, logger, required: config.INVENTORY_REQUIRED });
    cleanups.push(() => inventory.watcher.close());

    const runtime = await installTemporalRuntime({ logger, level: sdkLogLevel(config.LOG_LEVEL) });
    const { connection, client } = await connectTemporal(config);
    cleanups.push(() => connection.close());
    await assertServerCapabilities(connection, config.TEMPORAL_NAMESPACE);
    const searchAttributes = await assertSearchAttributes(connection, config.TEMPORAL_NAMESPACE, { register: config.TEMPORAL_REGISTER_SEARCH_ATTRIBUTES });
    logger.info({ namespace: config.TEMPORAL_NAMESPACE, registered: searchAttributes.registered }, searchAttributes.registered.length > 0 ? 'search attributes registered' : 'search attributes present');
    const schedules = await ensureHousekeepingSchedules(client, { taskQueue: config.TASK_QUEUE, retentionDays: config.RETENTION_DAYS, retentionTime: config.RETENTION_TIME, namespace: config.TEMPORAL_NAMESPACE });
    logger.info({ schedules: schedules.map((e) => `${e.scheduleId}:${e.outcome}`) }, 'housekeeping schedules ensured');
    const instanceMetrics = createInstanceMetrics();

    const service = createCheckpointService({
      db: database.db,
      registry,
      temporal: { client, taskQueue: config.TASK_QUEUE },
      config,
      logger,
      createRateLimit: { burst: config.CREATE_RATE_LIMIT_BURST, perMinute: config.CREATE_RATE_LIMIT_PER_MINUTE },
      onCreateRejected: instanceMetrics.countCreateRejection,
    });
    const authFailures = new AuthFailureLimiter({ perMinute: config.AUTH_FAILURES_PER_MINUTE, trustedProxies: config.TRUSTED_PROXIES }, logger);
    // Set once the alert monitor exists; sessions are replaced only after start.
    let alertSessionReplaced: (info: { runnerId: string; previousRemote?: string | undefined; remote?: string | undefined }) => void = () => undefined;
    const gateway = createAgentGateway({
      authFailures,
      allowQueryTokens: config.AGENT_QUERY_TOKENS,
      db: database.db,
      instanceId,
      logger,
      heartbeatIntervalSeconds: config.WS_HEARTBEAT_INTERVAL,
      heartbeatTimeoutSeconds: config.WS_HEARTBEAT_TIMEOUT,
      authenticate: agentAuthenticator(registry, logger),
      onSessionReplaced: (info) => alertSessionReplaced(info),
      requests: agentRequestHandlerFor(service),
    });
    registry.onRunnerDeactivated(({ runnerId }) => void gateway.closeRunnerSessions(runnerId, 'runner deactivated'));
    registry.onTokenRotated(({ runnerId }) => void gateway.closeRunnerSessions(runnerId, 'token rotated'));
    await gateway.registerInstance();

    const healthReporter = createHealthReporter({ db: database.db, temporal: { client, namespace: config.TEMPORAL_NAMESPACE } });
    const metricsRouter = createMetricsRouter({
      db: database.db,
      logger,
      settleSeconds: config.METRICS_SETTLE_SECONDS,
      instance: instanceMetrics,
      temporalReachable: healthReporter.temporalReachable,
      ...(runtime.metricsUrl ? { sdkMetricsUrl: runtime.metricsUrl } : {}),
      ...(config.METRICS_TOKEN ? { scrapeToken: config.METRICS_TOKEN } : {}),
    });
    const dispatcher = createWebhookDispatcher({ db: database.db, temporalClient: client, logger, pollIntervalMs: 2000, maxAttempts: config.WEBHOOK_MAX_ATTEMPTS });
    const dashboard = createDashboardRouter({ db: database.db, config, logger });
    const alertDelivery = createAlertDelivery({ webhookUrls: config.ALERT_WEBHOOK_URLS, format: config.ALERT_WEBHOOK_FORMAT, logger, minIntervalSeconds: config.ALERT_RESEND_INTERVAL_SECONDS });
    const alertMonitor = createAlertMonitor({
      db: database.db,
      delivery: alertDelivery,
      thresholds: alertThresholdsFromConfig(config),
      logger,
      intervalSeconds: config.ALERT_CHECK_INTERVAL_SECONDS,
      temporalReachable: healthReporter.temporalReachable,
    });
    const workers: Worker[] = [];
    let workerFailure: Error | null = null;
    const app = createApp({
      db: database.db,
      httpTimer: instanceMetrics.httpTimer,
      workersRunning: () => {
        if (workerFailure) return { ok: false, detail: 'a Temporal worker stopped with an error' };
        if (workers.length === 0 || workers.some((w) => w.getState() !== 'RUNNING')) return { ok: false, detail: 'Temporal workers are not running' };
        return { ok: true };
      },
      registry,
      checkpoints: service,
      config,
      logger,
      temporal: { client },
      extraRouters: [
        createWebhooksRouter({
          db: database.db,
          config: { gitlabSecret: config.GITLAB_WEBHOOK_SECRET, githubSecret: config.GITHUB_WEBHOOK_SECRET },
          logger,
          onStored: () => dispatcher.notify(),
        }),
        dashboard,
        ...(config.METRICS_PORT === undefined ? [metricsRouter] : []),
        createStatsRouter({ db: database.db, adminToken: config.ADMIN_TOKEN }),
        createAuditRouter({ db: database.db, adminToken: config.ADMIN_TOKEN }),
        createAdminWebhooksRouter({ db: database.db, adminToken: config.ADMIN_TOKEN, logger, onRequeued: () => dispatcher.notify() }),
        createHousekeepingRouter({ client, taskQueue: config.TASK_QUEUE, retentionDays: config.RETENTION_DAYS, adminToken: config.ADMIN_TOKEN, audit: createAuditRecorder(database.db), logger }),
      ],
    });
    app.locals.authFailures = authFailures;
    app.locals.adminTokens = new AdminTokens({ token: config.ADMIN_TOKEN, file: config.ADMIN_TOKENS_FILE, logger });
    const server = http.createServer(
      { headersTimeout: config.HTTP_HEADERS_TIMEOUT_SECONDS * 1000, requestTimeout: config.HTTP_REQUEST_TIMEOUT_SECONDS * 1000, keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_SECONDS * 1000 },
      app,
    );
    server.maxConnections = config.HTTP_MAX_CONNECTIONS;
    gateway.attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT, config.HOST, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    if (config.METRICS_PORT !== undefined) {
      // Only /metrics, on an internal address: the public listener has no such path at all.
      const metricsApp = express();
      metricsApp.disable('x-powered-by');
      metricsApp.set('case sensitive routing', true).set('strict routing', true);
      metricsApp.use(metricsRouter);
      metricsApp.use((_req, res) => void res.status(404).json({ detail: 'Not Found' }));
      const metricsServer = http.createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, metricsApp);
      metricsServer.maxConnections = 64;
      await new Promise<void>((resolve, reject) => {
        metricsServer.once('error', reject);
        metricsServer.listen(config.METRICS_PORT, config.METRICS_HOST, () => resolve());
      });
      const metricsPort = (metricsServer.address() as AddressInfo).port;
      logger.info({ metrics: `http://${config.METRICS_HOST}:${metricsPort}/metrics` }, 'metrics served on their own listener');
      cleanups.push(() => new Promise<void>((resolve) => metricsServer.close(() => resolve())));
    }
    const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
    const url = `http://${host}:${port}`;
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          dashboard.close();
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );

    const workerConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS, ...temporalConnectionSecurity(config) });
    cleanups.push(() => workerConnection.close());
    const gatewayWorker = await Worker.create({
      connection: workerConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: gatewayTaskQueue(instanceId),
      shutdownGraceTime: `${config.SHUTDOWN_GRACE_SECONDS}s`,
      // An activity that ignores its cancellation must not hold the stop until the supervisor kills.
      shutdownForceTime: `${config.SHUTDOWN_GRACE_SECONDS + 15}s`,
      activities: createGatewayActivities({ gateway, registry, logger }),
    });
    workers.push(gatewayWorker);
    if (opts.checkpointWorker !== false) {
      workers.push(
        await createCheckpointQueueWorker({
          connection: workerConnection,
          config,
          db: database.db,
          registry,
          logger,
          instanceId,
          onAlert: alertMonitor.onAlert,
          ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : {}),
        }),
      );
    }
    const running = workers.map((w) =>
      w.run().catch((err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        logger.fatal({ err: error, taskQueue: w.options.taskQueue }, 'Temporal worker stopped with an error');
        if (workerFailure) return;
        workerFailure = error;
        opts.onWorkerFailure?.(error);
      }),
    );
    dispatcher.start();
    alertSessionReplaced = (info) => {
      const alert = {
        key: `agent_session_replaced:${info.runnerId}`,
        severity: 'warning' as const,
        message: `Runner ${info.runnerId}: a new agent session (from ${info.remote ?? 'unknown'}) replaced one that was still open (from ${info.previousRemote ?? 'unknown'}). If its agent did not restart, someone else holds its credential.`,
        runnerId: info.runnerId,
      };
      void raiseAlert(database.db, alert)
        .then(({ raised }) => raised && alertMonitor.onAlert(alert))
        .catch((err: unknown) => logger.error({ err, runnerId: info.runnerId }, 'could not raise the session-replaced alert'));
    };
    alertMonitor.start();

    // Graceful stop, in order: stop taking work, let in-flight agent commands finish, close sockets
    // (agents reconnect elsewhere at once), stop workers, then the rest.
    const graceMs = config.SHUTDOWN_GRACE_SECONDS * 1000;
    let stopping: Promise<void> | null = null;
    const stop = () => {
      stopping ??= (async () => {
        logger.info('stopping controller');
        await dispatcher.stop();
        await alertMonitor.stop();
        // The checkpoint worker takes no new task from now on (other instances do) and finishes what
        // runs within the grace, while agent commands drain; the gateway worker stops after them.
        const [gatewayQueueWorker, ...queueWorkers] = workers;
        for (const w of queueWorkers) if (w.getState() === 'RUNNING') w.shutdown();
        await gateway.drain(graceMs);
        if (gatewayQueueWorker?.getState() === 'RUNNING') gatewayQueueWorker.shutdown();
        await Promise.all(running);
        await gateway.close();
        await stopAll();
        logger.info('controller stopped');
      })();
      return stopping;
    };
    logger.info({ url, taskQueue: config.TASK_QUEUE, gatewayQueue: gatewayTaskQueue(instanceId), temporal: config.TEMPORAL_ADDRESS }, 'controller started');
    return { instanceId, url, port, logger, database, registry, gateway, stop };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
