// A worker process for the checkpoint task queue only: workflows and the activities that need no
// agent socket (built like serve's, alerts delivered from here). Agent commands run on the gateway
// queues of `serve` instances.
import { NativeConnection } from '@temporalio/worker';
import { temporalConnectionSecurity } from '../temporal/connection-options.js';
import type { Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { installTemporalRuntime } from '../temporal/runtime.js';
import { migrate, openDatabase } from './store/database.js';
import { RunnerRegistry } from './inventory/registry.js';
import { connectTemporal } from '../temporal/client.js';
import { assertServerCapabilities } from '../temporal/capabilities.js';
import { assertSearchAttributes } from '../temporal/search-attributes-admin.js';
import { createCheckpointQueueWorker } from './checkpoint-queue-worker.js';
import { alertThresholdsFromConfig, createAlertMonitor } from './alerts/conditions.js';
import { createAlertDelivery } from './alerts/delivery.js';
import { instanceIdOf, sdkLogLevel } from './controller.js';

export interface CheckpointWorkerOptions {
  logger?: Logger;
  /** Called once when the worker stops with an error (the `worker` command exits non-zero). */
  onWorkerFailure?: (err: Error) => void;
}

export async function startCheckpointWorker(config: Config, opts: CheckpointWorkerOptions = {}): Promise<{ stop(): Promise<void> }> {
  const instanceId = instanceIdOf(config, 'worker');
  const logger = (opts.logger ?? createLogger({ level: config.LOG_LEVEL })).child({ instanceId, role: 'worker' });
  const database = await openDatabase(config.DATABASE_URL, { poolSize: config.DB_POOL_SIZE });
  try {
    await migrate(database);
    const registry = new RunnerRegistry({ db: database.db, pepper: config.TOKEN_PEPPER, logger });
    await installTemporalRuntime({ logger, level: sdkLogLevel(config.LOG_LEVEL) });
    const { connection } = await connectTemporal(config);
    await assertServerCapabilities(connection, config.TEMPORAL_NAMESPACE);
    const searchAttributes = await assertSearchAttributes(connection, config.TEMPORAL_NAMESPACE, { register: config.TEMPORAL_REGISTER_SEARCH_ATTRIBUTES });
    logger.info({ namespace: config.TEMPORAL_NAMESPACE, registered: searchAttributes.registered }, searchAttributes.registered.length > 0 ? 'search attributes registered' : 'search attributes present');
    await connection.close();
    const workerConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS, ...temporalConnectionSecurity(config) });
    // Alerts the activities raise are delivered from here too; the periodic checks are serve's.
    const alerts = createAlertMonitor({
      db: database.db,
      delivery: createAlertDelivery({ webhookUrls: config.ALERT_WEBHOOK_URLS, format: config.ALERT_WEBHOOK_FORMAT, logger, minIntervalSeconds: config.ALERT_RESEND_INTERVAL_SECONDS }),
      thresholds: alertThresholdsFromConfig(config),
      logger,
      intervalSeconds: config.ALERT_CHECK_INTERVAL_SECONDS,
    });
    const worker = await createCheckpointQueueWorker({ connection: workerConnection, config, db: database.db, registry, logger, instanceId, onAlert: alerts.onAlert });
    const running = worker.run().catch((err: unknown) => {
      const error = err instanceof Error ? err : new Error(String(err));
      logger.fatal({ err: error, taskQueue: config.TASK_QUEUE }, 'Temporal worker stopped with an error');
      opts.onWorkerFailure?.(error);
    });
    return {
      stop: async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
        await alerts.stop();
        await workerConnection.close();
        await database.close();
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}
