// The one way a process serves the checkpoint task queue: workflows and every activity that needs
// no agent socket, with alerts raised by activities delivered from this process. `serve` and
// `worker` both build theirs here.
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { createHousekeepingActivities } from '../activities/housekeeping.js';
import { workflowSource } from '../temporal/workflows-entry.js';
import type { Config } from './config.js';
import type { RunnerRegistry } from './inventory/registry.js';
import type { Logger } from './logger.js';
import type { Db } from './store/database.js';
import type { DeliverableAlert } from './alerts/delivery.js';

export interface CheckpointQueueWorkerDeps {
  connection: NativeConnection;
  config: Pick<Config, 'TEMPORAL_NAMESPACE' | 'TASK_QUEUE' | 'HTTPX_TIMEOUT' | 'GITLAB_URL' | 'GITLAB_TOKEN' | 'SHUTDOWN_GRACE_SECONDS'>;
  db: Db;
  registry: RunnerRegistry;
  logger: Logger;
  instanceId: string;
  /** Delivery of alerts the activities raise (the alert monitor's hook). */
  onAlert: (alert: DeliverableAlert) => void;
  /** Pre-built workflow bundle (tests bundle once per file); else the build's, else the sources. */
  workflowBundle?: { code: string };
}

export function createCheckpointQueueWorker(deps: CheckpointQueueWorkerDeps): Promise<Worker> {
  const { config, db, registry, logger, instanceId, onAlert } = deps;
  const httpTimeoutMs = config.HTTPX_TIMEOUT * 1000;
  return Worker.create({
    connection: deps.connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TASK_QUEUE,
    // On stop, running activities get the grace to finish before they are cancelled (and retried
    // by another worker); stop timeouts of supervisors allow for it (deploy/systemd, compose).
    shutdownGraceTime: `${config.SHUTDOWN_GRACE_SECONDS}s`,
    shutdownForceTime: `${config.SHUTDOWN_GRACE_SECONDS + 15}s`,
    ...(deps.workflowBundle ? { workflowBundle: deps.workflowBundle } : workflowSource()),
    activities: {
      ...createActivities({ db, registry, logger, instanceId, httpTimeoutMs, gitlabUrl: config.GITLAB_URL, gitlabToken: config.GITLAB_TOKEN, onAlert }),
      ...createHousekeepingActivities({ db, registry, logger, httpTimeoutMs, onAlert }),
    },
  });
}
