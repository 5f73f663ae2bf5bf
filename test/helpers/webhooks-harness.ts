// A small controller for webhook tests: the webhook router in an express app on 127.0.0.1, a real
// database, a real Temporal server with a worker running the real checkpoint workflow on the real
// store activities, and stand-ins for the backend, CI and agent-route activities that record calls.
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { sql } from 'drizzle-orm';
import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import { createWebhooksRouter } from '../../src/api/routes/webhooks.js';
import { createLogger, type Logger } from '../../src/logger.js';
import type { Db } from '../../src/store/database.js';
import { RunnerRegistry } from '../../src/inventory/registry.js';
import { mintCheckpointName } from '../../src/domain/checkpoint-name.js';
import { createStoreActivities } from '../../activities/store.js';
import { withFailureMapping } from '../../activities/failure-mapping.js';
import { gatewayTaskQueue, type AgentCommandInput, type AgentCommandResult, type CheckpointActivities } from '../../activities/types.js';
import { checkpointV2Workflow } from '../../workflows/checkpoint/workflow.js';
import { createUpdate, type CheckpointWorkflowInput } from '../../workflows/messages.js';
import { realClockTimings } from './timings.js';

export const GITLAB_SECRET = 'gl-webhook-secret-for-tests';
export const GITHUB_SECRET = 'gh-webhook-secret-for-tests';


/** Stand-ins for everything that is not the database: a bare-metal runner whose agent answers ok. */
export class StandInWorld {
  calls: Array<{ name: string; checkpoint: string }> = [];
  commands: AgentCommandInput[] = [];
  readonly gatewayInstance = `gw-webhooks-${randomBytes(3).toString('hex')}`;

  activities(db: Db, logger: Logger): CheckpointActivities {
    const record = (name: string) => async (ref: { name: string }) => {
      this.calls.push({ name, checkpoint: ref.name });
    };
    const rest = {
      takeSnapshot: async (ref: { name: string }) => {
        this.calls.push({ name: 'takeSnapshot', checkpoint: ref.name });
        return { vmid: null };
      },
      deleteSnapshot: record('deleteSnapshot'),
      assertVmUnchanged: record('assertVmUnchanged'),
      stopVm: record('stopVm'),
      rollbackVm: record('rollbackVm'),
      startVm: record('startVm'),
      pauseRunner: record('pauseRunner'),
      unpauseRunner: record('unpauseRunner'),
      listRunningJobs: async (ref: { name: string }) => {
        this.calls.push({ name: 'listRunningJobs', checkpoint: ref.name });
        return { kind: 'jobs' as const, jobIds: [] };
      },
      observeJob: async () => ({ kind: 'running' as const }),
      watchJob: async (): Promise<never> => {
        for (;;) {
          Context.current().heartbeat();
          await Context.current().sleep(200);
        }
      },
      resolveAgentRoute: async () => ({ instanceId: this.gatewayInstance, taskQueue: gatewayTaskQueue(this.gatewayInstance), sessionEpoch: 1, legacy: false, connectedForSeconds: 3600, declaredCommands: ['reset', 'cleanup', 'readiness'] }),
    };
    return withFailureMapping({ ...createStoreActivities({ db, logger }), ...rest } as any) as CheckpointActivities;
  }

  gatewayActivities() {
    return {
      runAgentCommand: async (input: AgentCommandInput): Promise<AgentCommandResult> => {
        this.commands.push(input);
        return { ok: true, exitCode: 0, stdout: '', stderr: '', durationMs: 1 };
      },
    };
  }
}

export interface RunningWorkers {
  taskQueue: string;
  stop(): Promise<void>;
}

/** A checkpoint worker and the gateway worker for the stand-in agent, running until stop(). */
export async function startWorkers(connection: NativeConnection, bundle: WorkflowBundleWithSourceMap, world: StandInWorld, db: Db, logger: Logger): Promise<RunningWorkers> {
  const taskQueue = `webhooks-${randomBytes(4).toString('hex')}`;
  const worker = await Worker.create({ connection, taskQueue, workflowBundle: bundle, activities: world.activities(db, logger) });
  const gateway = await Worker.create({ connection, taskQueue: gatewayTaskQueue(world.gatewayInstance), activities: world.gatewayActivities() });
  const runs = [worker.run(), gateway.run()];
  return {
    taskQueue,
    stop: async () => {
      worker.shutdown();
      gateway.shutdown();
      await Promise.allSettled(runs);
    },
  };
}

let runnerCounter = 0;

/** A bare-metal runner with cleanup, reset and readiness commands; null = not registered with GitLab. */
export async function registerRunner(db: Db, gitlabRunnerId: number | null): Promise<string> {
  const runnerId = `wh-runner-${++runnerCounter}-${randomBytes(2).toString('hex')}`;
  const registry = new RunnerRegistry({ db, pepper: 'webhook-test-pepper' });
  await registry.createRunner({
    runner_id: runnerId,
    backend: 'bare_metal',
    reset_cmd: 'reset',
    cleanup_cmd: 'cleanup',
    readiness_cmd: 'ready',
    reset_mode: 'in_place',
    ...(gitlabRunnerId !== null ? { gitlab_runner_id: gitlabRunnerId } : {}),
  });
  return runnerId;
}

/** Creates a checkpoint as the API does: update-with-start, answered when it is created. */
export async function createCheckpoint(client: Client, taskQueue: string, runnerId: string, jobId: string, projectId?: string): Promise<string> {
  const name = mintCheckpointName(jobId, Math.floor(Date.now() / 1000), randomBytes(4).toString('hex'));
  const input: CheckpointWorkflowInput = { name, runnerId, jobId, backend: 'bare_metal', timings: realClockTimings, ...(projectId ? { projectId } : {}) };
  const start = new WithStartWorkflowOperation(checkpointV2Workflow, {
    workflowId: name,
    taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
  });
  const result = await client.workflow.executeUpdateWithStart(createUpdate, {
    args: [{ deadlineMs: Date.now() + 60_000 }],
    updateId: 'create',
    startWorkflowOperation: start,
  });
  if (result.state !== 'created') throw new Error(`checkpoint ${name} is ${result.state}`);
  return name;
}

export interface WebhookApp {
  url: string;
  close(): Promise<void>;
}

export async function startWebhookApp(db: Db, logger: Logger, onStored: () => void): Promise<WebhookApp> {
  const app = express();
  app.use(createWebhooksRouter({ db, config: { gitlabSecret: GITLAB_SECRET, githubSecret: GITHUB_SECRET }, logger, onStored }));
  // An application-wide JSON parser after the webhook router, as serve should mount it.
  app.use(express.json());
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type Row = Record<string, any>;

export async function query(db: Db, q: ReturnType<typeof sql>): Promise<Row[]> {
  const result: any = await db.execute(q);
  return (result.rows ?? result) as Row[];
}

export async function inboxRowsForJob(db: Db, jobId: string): Promise<Row[]> {
  return query(db, sql`select * from webhook_inbox where job_id = ${jobId} order by received_at`);
}

export async function checkpointRow(db: Db, name: string): Promise<Row> {
  const [row] = await query(db, sql`select * from checkpoints where name = ${name}`);
  if (!row) throw new Error(`no checkpoint row ${name}`);
  return row;
}

/** Number of signals the workflow's history holds (what reached Temporal, not what we meant to send). */
export async function signalCount(client: Client, workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes).length;
}

export { createLogger };
