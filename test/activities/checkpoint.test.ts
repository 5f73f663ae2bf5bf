// One full checkpoint workflow on the time-skipping test server with the real activities: a Proxmox
// runner from the registry (PGlite) on the Proxmox simulator, its GitLab runner in the GitLab
// simulator, and an agent over a real WebSocket that drops when the VM stops and reconnects when it
// starts. A failure finalize must end `reset` with the disk restored and the runner unpaused.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { asc, eq } from 'drizzle-orm';
import { WithStartWorkflowOperation } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, createGatewayActivities, gatewayTaskQueue } from '../../activities/index.js';
import { checkpointTransitions, checkpoints, nodeLeases } from '../../db/schema.js';
import { mintCheckpointName } from '../../src/domain/checkpoint-name.js';
import { createAgentGateway, type AgentGateway } from '../../src/gateway/index.js';
import type { RunnerRegistry } from '../../src/inventory/registry.js';
import { startGitlabSimulator, type GitlabSimulator } from '../../sim/gitlab/index.js';
import { startProxmoxSimulator, type ProxmoxSimulator } from '../../sim/proxmox/index.js';
import { checkpointV2Workflow } from '../../workflows/checkpoint/workflow.js';
import { checkpointQuery, createUpdate, finalizeSignal, type CheckpointTimings } from '../../workflows/messages.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { bundleWorkflowsOnce, startTimeSkippingEnv } from '../helpers/temporal.js';
import { createProxmoxRunner, newRegistry } from '../helpers/activities-harness.js';
import { eventually } from '../helpers/eventually.js';
import { TestAgent, type Frame } from '../helpers/gateway-harness.js';
import { realClockTimings } from '../helpers/timings.js';
import { captureLogs } from '../helpers/log-capture.js';

const GITLAB_TOKEN = 'glpat-checkpoint-Secret9';
const INSTANCE_ID = 'itest-instance';
/** How long and how often the tests poll the workflow's state: up to 60 s, every 100 ms. */
const WORKFLOW_POLL = { timeoutMs: 60_000, intervalMs: 100 };

// Real seconds: time skipping stays locked (we never wait on the result while it runs), so the
// real activities are never overtaken by skipped time.
const timings: CheckpointTimings = { ...realClockTimings, createAcceptWindowSeconds: 60, commandTimeoutSeconds: 10 };

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
let database: TestDatabase;
let registry: RunnerRegistry;
let proxmox: ProxmoxSimulator;
let gitlab: GitlabSimulator;
let gateway: AgentGateway;
let server: http.Server;
let wsUrl: string;
const log = captureLogs('info');

beforeAll(async () => {
  [env, bundle, database, proxmox, gitlab] = await Promise.all([
    startTimeSkippingEnv(),
    bundleWorkflowsOnce(),
    createPgliteDatabase(),
    startProxmoxSimulator({ durations: { qmsnapshot: 30, qmrollback: 60, qmstop: 30, qmstart: 30, qmdelsnapshot: 30 }, vms: [{ node: 'pve1', vmid: 101, tags: ['e2epool'], disk: { marker: 'clean' } }] }),
    startGitlabSimulator({ tokens: [GITLAB_TOKEN], seed: { runners: [{ id: 7, contacted: true }] } }),
  ]);
  registry = newRegistry(database.db);
  gateway = createAgentGateway({
    db: database.db,
    instanceId: INSTANCE_ID,
    logger: log.logger,
    heartbeatIntervalSeconds: 30,
    heartbeatTimeoutSeconds: 90,
    authenticate: async (runnerId, token) => {
      const runner = await registry.authenticateRunnerToken(token);
      return runner && (runnerId === undefined || runner.runnerId === runnerId) ? { runnerId: runner.runnerId } : null;
    },
    requests: {
      create: async () => ({}),
      finalize: async () => ({}),
      status: async () => ({}),
    } as any,
    tuning: { closeTimeoutMs: 300 },
  });
  server = http.createServer((_req, res) => res.end());
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  wsUrl = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws/agent`;
  await gateway.registerInstance();
});

afterAll(async () => {
  await gateway?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await env?.teardown();
  await proxmox?.stop();
  await gitlab?.stop();
  await database?.drop();
});

/** Plays the runner's agent: answers readiness, and lives and dies with the VM. */
class VmAgent {
  sessions: TestAgent[] = [];
  /** Which session (1 = the first) each readiness command arrived on. */
  readinessSessions: number[] = [];
  private connecting: Promise<void> | null = null;

  constructor(private readonly runnerId: string, private readonly token: string) {}

  async connect(): Promise<void> {
    const agent = await TestAgent.connect(wsUrl, { runnerId: this.runnerId, token: this.token });
    const session = this.sessions.length + 1;
    agent.onCommand = (f: Frame): Frame => {
      if (f.payload?.command === 'readiness') this.readinessSessions.push(session);
      return { id: f.id, status: 'ok', data: { exit_code: 0, stdout: 'ready\n', stderr: '' } };
    };
    const hello = await agent.request('hello', { protocol: 2, agent_version: 'itest', boot_id: `boot-${session}`, commands: ['readiness'] });
    assert.equal(hello.status, 'ok');
    this.sessions.push(agent);
  }

  /** Power hook: the guest (and its agent) dies on stop and comes back on start. */
  onPower(status: 'running' | 'stopped'): void {
    const live = this.sessions.at(-1);
    if (status === 'stopped') {
      live?.ws.terminate();
      return;
    }
    this.connecting = this.connect().catch((err: unknown) => {
      log.logger.error({ err: String(err) }, 'test agent could not reconnect');
    });
  }

  async settle(): Promise<void> {
    await this.connecting;
  }

  async close(): Promise<void> {
    await this.settle();
    for (const s of this.sessions) if (s.isOpen) await s.close();
  }
}


/** The real activities against this file's database, simulators and registry, with short polls. */
function realActivities() {
  return createActivities({
    db: database.db,
    registry,
    logger: log.logger,
    instanceId: INSTANCE_ID,
    httpTimeoutMs: 2000,
    gitlabUrl: gitlab.url,
    gitlabToken: GITLAB_TOKEN,
    backendTuning: { pollIntervalMs: 20, powerStateTimeoutMs: 5000, leaseRetryMs: 50 },
  });
}
describe('checkpoint workflow with the real activities', { timeout: 120_000 }, () => {
  it('failure finalize: pause, idle, stop/rollback (retried, attached)/start, readiness on the new session, delete, release, unpause → reset', async () => {
    const { token } = await createProxmoxRunner(registry, proxmox, { runner_id: 'pve-runner', gitlab_runner_id: 7, proxmox_required_tag: 'e2epool', readiness_cmd: '/opt/ready.sh' });
    const agent = new VmAgent('pve-runner', token);
    await agent.connect();
    const unhook = proxmox.onVmPowerChange((vmid, status) => {
      if (vmid === 101) agent.onPower(status);
    });

    const taskQueue = 'checkpoint-real-activities';
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: realActivities(),
    });
    const gatewayWorker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: gatewayTaskQueue(INSTANCE_ID),
      activities: createGatewayActivities({ gateway, registry, logger: log.logger }),
    });

    const name = mintCheckpointName('4242', Math.floor(Date.now() / 1000), 'c0ffee01');
    const scenario = async () => {
      const start = new WithStartWorkflowOperation(checkpointV2Workflow, {
        workflowId: name,
        taskQueue,
        args: [{ name, runnerId: 'pve-runner', jobId: '4242', backend: 'proxmox', timings }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
      const created = await env.client.workflow.executeUpdateWithStart(createUpdate, {
        args: [{ deadlineMs: (await env.currentTimeMs()) + 60_000 }],
        updateId: 'create',
        startWorkflowOperation: start,
      });
      assert.deepEqual(created, { name, state: 'created' });
      const handle = await start.workflowHandle();
      assert.ok(proxmox.state.vms.get(101)!.snapshots.has(name), 'the snapshot exists once create answered');
      const [row] = await database.db.select().from(checkpoints).where(eq(checkpoints.name, name));
      assert.equal(row!.vmid, 101);

      // The job dirties the machine, then fails.
      proxmox.state.setDisk(101, { marker: 'dirty' });
      // The rollback POST is carried out but its answer is lost: Temporal's second attempt must attach
      // to the task the first one started (same first-scheduled time), not roll back twice.
      proxmox.inject({ type: 'timeout', op: 'snapshot-rollback', afterHandling: true, times: 1 });
      proxmox.inject({ type: 'slow', op: 'snapshot-rollback', durationMs: 6000, times: 1 });
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      // Wait in real time (a query does not unlock time skipping), then read the result.
      await eventually('the checkpoint to be reset', async () => (await handle.query(checkpointQuery)).state === 'reset', WORKFLOW_POLL);
      assert.equal(await handle.result(), 'reset');
      const events = (await handle.fetchHistory()).events ?? [];
      const rollbackScheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'rollbackVm');
      const rollbackStarted = events.find((e) => Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === Number(rollbackScheduled?.eventId));
      assert.equal(rollbackStarted?.activityTaskStartedEventAttributes?.attempt, 2, 'the rollback activity succeeded on its second attempt');
    };
    try {
      await gatewayWorker.runUntil(worker.runUntil(scenario()));
    } finally {
      unhook();
      await agent.close();
    }

    const vm = proxmox.state.vms.get(101)!;
    assert.equal(vm.disk.marker, 'clean', 'the VM disk is back to the checkpoint');
    assert.equal(vm.status, 'running');
    assert.equal(vm.snapshots.has(name), false, 'the snapshot was deleted after readiness');
    assert.equal(proxmox.callsTo('snapshot-rollback').length, 1, 'one rollback POST across both attempts');
    assert.equal(proxmox.state.tasks.filter((t) => t.type === 'qmrollback').length, 1);
    assert.ok(log.lines.some((l) => l.includes('proxmox rollback: attached')), 'the second attempt attached to the running task');

    assert.equal(gitlab.api.getRunner(7).paused, false, 'the runner is unpaused');
    assert.deepEqual(gitlab.api.calls({ endpoint: 'updateRunner' }).map((c) => c.body), [{ paused: true }, { paused: false }]);
    assert.ok(gitlab.api.calls({ endpoint: 'listRunnerJobs' }).length >= 2, 'idle was confirmed with two answers');

    const [row] = await database.db.select().from(checkpoints).where(eq(checkpoints.name, name));
    assert.equal(row!.state, 'reset');
    assert.equal(row!.holdsClaim, false);
    assert.equal(row!.finalizeStatus, 'failure');
    const states = (await database.db.select().from(checkpointTransitions).where(eq(checkpointTransitions.checkpointName, name)).orderBy(asc(checkpointTransitions.seq))).map((t) => t.toState);
    assert.deepEqual(states, ['creating', 'created', 'finalize_queued', 'pausing', 'confirming_idle', 'resetting', 'awaiting_readiness', 'releasing_claim', 'unpausing', 'reset']);

    // Readiness ran on the session opened after the VM started, whose epoch exceeds the reset watermark.
    assert.equal(agent.sessions.length, 2, 'the agent reconnected once, after the start');
    assert.deepEqual(agent.readinessSessions, [2], 'readiness ran on the second session only');
    assert.ok(row!.epochAtReset !== null);
    assert.deepEqual(await database.db.select().from(nodeLeases), []);
    assert.ok(!log.lines.some((l) => l.includes(GITLAB_TOKEN) || l.includes('sim-secret')), 'no secret in the logs');
  });

  it('a rollback task failing on the hypervisor leaves the runner paused in needs attention; an operator retry resets it', async () => {
    proxmox.state.addVm({ node: 'pve1', vmid: 102, tags: ['e2epool'], disk: { marker: 'clean' } });
    gitlab.api.addRunner({ id: 8, contacted: true });
    const { token } = await createProxmoxRunner(registry, proxmox, { runner_id: 'pve-runner-2', proxmox_vmid: 102, gitlab_runner_id: 8, readiness_cmd: '/opt/ready.sh' });
    const agent = new VmAgent('pve-runner-2', token);
    await agent.connect();
    const unhook = proxmox.onVmPowerChange((vmid, status) => {
      if (vmid === 102) agent.onPower(status);
    });
    const taskQueue = 'checkpoint-real-activities-2';
    const activities = realActivities();
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities });
    const gatewayWorker = await Worker.create({ connection: env.nativeConnection, taskQueue: gatewayTaskQueue(INSTANCE_ID), activities: createGatewayActivities({ gateway, registry, logger: log.logger }) });
    const name = mintCheckpointName('4343', Math.floor(Date.now() / 1000), 'c0ffee02');
    const scenario = async () => {
      const start = new WithStartWorkflowOperation(checkpointV2Workflow, {
        workflowId: name,
        taskQueue,
        args: [{ name, runnerId: 'pve-runner-2', jobId: '4343', backend: 'proxmox', timings }],
        workflowIdConflictPolicy: 'USE_EXISTING',
      });
      await env.client.workflow.executeUpdateWithStart(createUpdate, { args: [{ deadlineMs: (await env.currentTimeMs()) + 60_000 }], updateId: 'create', startWorkflowOperation: start });
      const handle = await start.workflowHandle();
      proxmox.state.setDisk(102, { marker: 'dirty' });
      // Every rollback task of this VM fails (the activity's attempts run out), like a broken storage.
      proxmox.inject({ type: 'task-fail', op: 'snapshot-rollback', vmid: 102, exitstatus: 'zfs error: dataset is busy', times: 10 });
      await handle.signal(finalizeSignal, { status: 'failure', source: 'hook' });
      const q = await eventually(
        'the checkpoint to be needs_attention',
        async () => {
          const state = await handle.query(checkpointQuery);
          return state.state === 'needs_attention' ? state : null;
        },
        WORKFLOW_POLL,
      );
      assert.equal(q.needsAttention?.reason, 'reset_failed');
      assert.match(q.needsAttention!.detail, /dataset is busy/);
      assert.equal(gitlab.api.getRunner(8).paused, true, 'a dirty runner is never unpaused');
      assert.ok(proxmox.state.vms.get(102)!.snapshots.has(name), 'the snapshot is kept for the operator');
      const [row] = await database.db.select().from(checkpoints).where(eq(checkpoints.name, name));
      assert.equal(row!.state, 'needs_attention');
      assert.equal(row!.holdsClaim, true);
      // The operator fixes the storage and retries.
      proxmox.faults.clear();
      await handle.signal('retryReset', { actor: 'ops' });
      await eventually('the checkpoint to be reset', async () => (await handle.query(checkpointQuery)).state === 'reset', WORKFLOW_POLL);
      assert.equal(await handle.result(), 'reset');
    };
    try {
      await gatewayWorker.runUntil(worker.runUntil(scenario()));
    } finally {
      unhook();
      await agent.close();
    }
    assert.equal(proxmox.state.vms.get(102)!.disk.marker, 'clean');
    assert.equal(gitlab.api.getRunner(8).paused, false);
  });
});
