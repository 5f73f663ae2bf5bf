// Every activity the workers register: createActivities(deps) for the checkpoint task queue, and
// createGatewayActivities(deps) for this instance's own queue (`gatewayTaskQueue(instanceId)`).
// Each object goes through withFailureMapping, so thrown E2epoolErrors become typed Temporal failures.
import type { AgentGateway } from '../src/gateway/gateway.js';
import type { RunnerRegistry } from '../src/inventory/registry.js';
import type { Logger } from '../src/logger.js';
import type { Db } from '../src/store/database.js';
import { createAgentActivities } from './agent.js';
import { createBackendActivities, type BackendTuning } from './backend.js';
import { createCiActivities } from './ci.js';
import { withFailureMapping } from './failure-mapping.js';
import { createRouteActivities } from './routes.js';
import { createStoreActivities, type StoreDeps } from './store.js';
import type { AgentActivities, CheckpointActivities } from './types.js';

export { createSelfCheckActivities, type SelfCheckActivities, type SelfCheckEcho, type SelfCheckEchoInput } from './self-check.js';
export { createBackendActivities, proxmoxBaseUrl, DEFAULT_NODE_CAP, type BackendDeps, type BackendTuning } from './backend.js';
export { createCiActivities, type CiDeps } from './ci.js';
export { createRouteActivities, resolveAgentRoute, type RouteDeps } from './routes.js';
export { createStoreActivities, type StoreDeps } from './store.js';
export { createAgentActivities, type AgentActivityDeps } from './agent.js';
export { gatewayTaskQueue } from './types.js';
export type * from './types.js';

type AsyncFunctions = Record<string, (...args: any[]) => Promise<any>>;

/** withFailureMapping for activity interfaces (which have no index signature). */
function mapped<T extends object>(activities: T): T {
  return withFailureMapping(activities as unknown as AsyncFunctions) as unknown as T;
}

export interface ActivityDeps {
  db: Db;
  registry: Pick<RunnerRegistry, 'getRunner'>;
  logger: Logger;
  /** This process's instance id (node lease holders carry it). */
  instanceId: string;
  /** E2EPOOL_HTTPX_TIMEOUT in milliseconds: every outbound GitLab and Proxmox call. */
  httpTimeoutMs: number;
  gitlabUrl?: string;
  gitlabToken?: string;
  /** Concurrent Proxmox operations per node across all instances; default 2. */
  nodeCap?: number;
  backendTuning?: BackendTuning;
  onAlert?: StoreDeps['onAlert'];
}

/** The checkpoint workflow's activities: store, backend, CI and routes. */
export function createActivities(deps: ActivityDeps): CheckpointActivities {
  const { db, registry, logger } = deps;
  return {
    ...mapped(createStoreActivities({ db, logger, ...(deps.onAlert ? { onAlert: deps.onAlert } : {}) })),
    ...mapped(
      createBackendActivities({
        db,
        registry,
        logger,
        httpTimeoutMs: deps.httpTimeoutMs,
        instanceId: deps.instanceId,
        ...(deps.nodeCap !== undefined ? { nodeCap: deps.nodeCap } : {}),
        ...(deps.backendTuning ? { tuning: deps.backendTuning } : {}),
      }),
    ),
    ...mapped(
      createCiActivities({
        registry,
        logger,
        config: {
          httpTimeoutMs: deps.httpTimeoutMs,
          ...(deps.gitlabUrl !== undefined ? { gitlabUrl: deps.gitlabUrl } : {}),
          ...(deps.gitlabToken !== undefined ? { gitlabToken: deps.gitlabToken } : {}),
        },
      }),
    ),
    ...mapped(createRouteActivities({ db })),
  };
}

export interface GatewayActivityDeps {
  gateway: Pick<AgentGateway, 'sessionOf' | 'runCommand'>;
  registry: Pick<RunnerRegistry, 'getRunner'>;
  logger: Logger;
  heartbeatIntervalMs?: number;
}

/** The agent RPC activity, for this instance's queue only: it runs where the socket is. */
export function createGatewayActivities(deps: GatewayActivityDeps): AgentActivities {
  return mapped(createAgentActivities(deps));
}
