// A worker process for the checkpoint task queue only: workflows and the activities that need no
// agent socket. Agent commands run on the gateway queues of `serve` instances.
import { NativeConnection, Worker } from '@temporalio/worker';
import { temporalConnectionSecurity } from '../temporal/connection-options.js';
import type { Config } from './config.js';
import { createLogger } from './logger.js';
import { migrate, openDatabase } from './store/database.js';
import { RunnerRegistry } from './inventory/registry.js';
import { connectTemporal } from '../temporal/client.js';
import { assertServerCapabilities } from '../temporal/capabilities.js';
import { assertSearchAttributes } from '../temporal/search-attributes-admin.js';
import { createActivities } from '../activities/index.js';
import { createHousekeepingActivities } from '../activities/housekeeping.js';
import { workflowSource } from '../temporal/workflows-entry.js';
import { newInstanceId } from './controller.js';

export async function startCheckpointWorker(config: Config): Promise<{ stop(): Promise<void> }> {
  const instanceId = newInstanceId();
  const logger = createLogger({ level: config.LOG_LEVEL }).child({ instanceId, role: 'worker' });
  const database = await openDatabase(config.DATABASE_URL, { poolSize: config.DB_POOL_SIZE });
  try {
    await migrate(database);
    const registry = new RunnerRegistry({ db: database.db, pepper: config.TOKEN_PEPPER, logger });
    const { connection } = await connectTemporal(config);
    await assertServerCapabilities(connection, config.TEMPORAL_NAMESPACE);
    await assertSearchAttributes(connection, config.TEMPORAL_NAMESPACE, { register: config.TEMPORAL_REGISTER_SEARCH_ATTRIBUTES });
    await connection.close();
    const workerConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS, ...temporalConnectionSecurity(config) });
    const worker = await Worker.create({
      connection: workerConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.TASK_QUEUE,
      ...workflowSource(),
      activities: {
        ...createActivities({ db: database.db, registry, logger, instanceId, httpTimeoutMs: config.HTTPX_TIMEOUT * 1000, gitlabUrl: config.GITLAB_URL, gitlabToken: config.GITLAB_TOKEN }),
        ...createHousekeepingActivities({ db: database.db, registry, logger, httpTimeoutMs: config.HTTPX_TIMEOUT * 1000 }),
      },
    });
    const running = worker.run();
    return {
      stop: async () => {
        worker.shutdown();
        await running;
        await workerConnection.close();
        await database.close();
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}
