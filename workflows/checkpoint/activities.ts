// Every activity the checkpoint workflow calls, with its timeouts and retry policy, built from the
// workflow input's timings in this one place. Database work and route lookups are local activities
// (a marker in the history, no server round trip); agent commands, Proxmox steps and GitLab calls
// are regular activities.
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { AgentActivities, AgentRoute, BackendActivities, CiActivities, RouteActivities, StoreActivities } from '../../activities/types.js';
import type { CheckpointTimings } from '../messages.js';

export type CheckpointActivityProxies = ReturnType<typeof checkpointActivities>;

export function checkpointActivities(t: CheckpointTimings) {
  const store = proxyLocalActivities<StoreActivities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });
  // The claim gives up after a few attempts: the create has a deadline and compensates.
  const claim = proxyLocalActivities<Pick<StoreActivities, 'claimRunner'>>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 5 },
  });
  const routes = proxyLocalActivities<RouteActivities>({
    startToCloseTimeout: '15 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
  });
  const backendOptions = {
    startToCloseTimeout: `${t.backendStepTimeoutSeconds} seconds`,
    // Several Proxmox calls (each up to one HTTP timeout) may come before a heartbeat.
    heartbeatTimeout: '90 seconds',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
  } as const;
  const backend = proxyActivities<Omit<BackendActivities, 'takeSnapshot'>>(backendOptions);
  const ci = proxyActivities<Pick<CiActivities, 'observeJob' | 'listRunningJobs'>>({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '20 seconds', maximumAttempts: 5 },
  });
  const pausing = proxyActivities<Pick<CiActivities, 'pauseRunner'>>({
    startToCloseTimeout: '1 minute',
    scheduleToCloseTimeout: `${t.pauseBudgetSeconds} seconds`,
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  });
  // Retried by the server without limit (no history events per attempt); the workflow alerts meanwhile.
  const unpausing = proxyActivities<Pick<CiActivities, 'unpauseRunner'>>({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
  });
  const watcher = proxyActivities<Pick<CiActivities, 'watchJob'>>({
    startToCloseTimeout: `${t.maxTtlSeconds + t.pollerIntervalSeconds} seconds`,
    heartbeatTimeout: `${t.pollerIntervalSeconds * 3 + 30} seconds`,
    retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });

  return {
    store,
    claim,
    routes,
    backend,
    ci,
    pausing,
    unpausing,
    watcher,
    /**
     * The snapshot may not outlive the create that waits for it by more than a few seconds: the
     * create's deadline answers first, then the compensation starts.
     */
    snapshotting(deadlineMs: number, nowMs: number) {
      return proxyActivities<Pick<BackendActivities, 'takeSnapshot'>>({
        ...backendOptions,
        scheduleToCloseTimeout: Math.max(1000, deadlineMs - nowMs) + 5000,
      });
    },
    /** One delivery, on the task queue of the instance holding the agent's session. */
    gateway(route: AgentRoute & { taskQueue: string }) {
      return proxyActivities<AgentActivities>({
        taskQueue: route.taskQueue,
        scheduleToStartTimeout: '15 seconds',
        // Longer than the gateway's own reply deadline (command timeout + 30 s), so that deadline
        // always answers first and a server-side timeout never races it.
        startToCloseTimeout: `${t.commandTimeoutSeconds + 60} seconds`,
        heartbeatTimeout: '20 seconds',
        retry: { maximumAttempts: 1 },
      });
    },
  };
}
