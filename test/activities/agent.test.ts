// Route and agent RPC activities through a real gateway (http.Server + ws) and real WebSocket agents,
// with presence in PGlite: routes with legacy/declared/age, epoch checks, results and failures,
// legacy exec with the inventory's commands, and heartbeats while a command runs.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { createGatewayActivities } from '../../activities/index.js';
import { createRouteActivities } from '../../activities/routes.js';
import type { AgentActivities, AgentCommandInput, RouteActivities } from '../../activities/types.js';
import { markInstanceDraining } from '../../src/gateway/index.js';
import type { RunnerRegistry } from '../../src/inventory/registry.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { failureOf, newRegistry, runActivity } from '../helpers/activities-harness.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, TestAgent, TOKENS, type Frame, type GatewayHarness } from '../helpers/gateway-harness.js';
import { captureLogs } from '../helpers/log-capture.js';

/** How these tests poll for a route: up to 5 s, every 5 ms. */
const POLL = { timeoutMs: 5000, intervalMs: 5 };

let database: TestDatabase;
let registry: RunnerRegistry;
let h: GatewayHarness;
let agentActs: AgentActivities;
let routes: RouteActivities;
const log = captureLogs();

beforeAll(async () => {
  database = await createPgliteDatabase();
  registry = newRegistry(database.db);
  // The inventory's commands for legacy agents; the gateway authenticates with the harness tokens.
  await registry.createRunner({ runner_id: 'r1', backend: 'bare_metal', reset_cmd: '/opt/e2e/reset.sh', readiness_cmd: '/opt/e2e/ready.sh' });
  await registry.createRunner({ runner_id: 'r2', backend: 'bare_metal', reset_cmd: '/opt/e2e/reset.sh' });
  h = await startGateway({ db: database.db, tuning: { commandReplyGraceSeconds: 0.2 } });
  await h.gateway.registerInstance();
  agentActs = createGatewayActivities({ gateway: h.gateway, registry, logger: log.logger, heartbeatIntervalMs: 20 });
  routes = createRouteActivities({ db: database.db });
});

afterAll(async () => {
  await h?.close();
  await database?.drop();
});

function reply(f: Frame, exitCode: number, stdout = '', stderr = ''): Frame {
  return { id: f.id, status: exitCode === 0 ? 'ok' : 'error', data: { exit_code: exitCode, stdout, stderr } };
}

async function currentAgent(runnerId: string, commands: string[]): Promise<TestAgent> {
  const agent = await TestAgent.connect(h.wsUrl, { runnerId, token: TOKENS[runnerId] });
  assert.equal((await agent.request('hello', { protocol: 2, agent_version: 'test', boot_id: 'b1', commands })).status, 'ok');
  return agent;
}

async function routeOf(runnerId: string) {
  return runActivity(routes.resolveAgentRoute, [{ runnerId }]).result;
}

function command(runnerId: string, name: AgentCommandInput['name'], expectedEpoch: number, timeoutSeconds = 5): AgentCommandInput {
  return { runnerId, name, commandId: `job-1-1700000000-abcd0001:${name}:1`, timeoutSeconds, expectedEpoch };
}


/** Waits for the runner's route through a current (non-legacy) session. */
const currentRouteOf = (runnerId: string) =>
  eventually(`a current (non-legacy) route to ${runnerId}`, async () => {
    const r = await routeOf(runnerId);
    return r && !r.legacy ? r : null;
  }, POLL);
describe('resolveAgentRoute', () => {
  it('null without a session; legacy and current sessions with their commands and age; draining or silent instances are not routes', async () => {
    assert.equal(await routeOf('r1'), null);
    const legacy = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
    const legacyRoute = await eventually('a route to r1', () => routeOf('r1'), POLL);
    assert.equal(legacyRoute.instanceId, h.instanceId);
    assert.equal(legacyRoute.legacy, true);
    assert.equal(legacyRoute.declaredCommands, null);
    assert.ok(legacyRoute.connectedForSeconds >= 0 && legacyRoute.connectedForSeconds < 5);
    await legacy.close();
    await eventually('r1 to have no route', async () => (await routeOf('r1')) === null, POLL);

    const current = await currentAgent('r1', ['reset', 'readiness']);
    const route = await currentRouteOf('r1');
    assert.deepEqual(route.declaredCommands, ['reset', 'readiness']);
    assert.ok(route.sessionEpoch > legacyRoute.sessionEpoch, 'a new session has a higher epoch');
    // The age comes from the database clock.
    await database.db.execute(sql`update agent_presence set connected_at = now() - interval '42 seconds' where runner_id = 'r1'`);
    assert.equal((await routeOf('r1'))!.connectedForSeconds, 42);

    await database.db.execute(sql`update controller_instances set last_seen = now() - interval '60 seconds' where instance_id = ${h.instanceId}`);
    assert.equal(await routeOf('r1'), null, 'an instance silent for 60 s is no route');
    await database.db.execute(sql`update controller_instances set last_seen = now() where instance_id = ${h.instanceId}`);
    assert.ok(await routeOf('r1'));
    await current.close();
  });
});

describe('runAgentCommand', () => {
  it('current session: runs by name; exit 0 is ok, a failing exit is an answer with redacted output', async () => {
    const agent = await currentAgent('r1', ['reset', 'readiness']);
    const route = await currentRouteOf('r1');
    agent.onCommand = async (f) => {
      await sleep(150);
      return reply(f, 0, 'clean\n');
    };
    const run = runActivity(agentActs.runAgentCommand, [command('r1', 'reset', route.sessionEpoch)]);
    const ok = await run.result;
    assert.equal(ok.ok, true);
    assert.equal(ok.exitCode, 0);
    assert.equal(ok.stdout, 'clean\n');
    assert.ok(run.heartbeats.length >= 3, `heartbeats while the command ran: ${run.heartbeats.length}`);
    const sent = agent.received.find((f) => f.type === 'run')!;
    assert.deepEqual(sent.payload, { command: 'reset', command_id: 'job-1-1700000000-abcd0001:reset:1', timeout: 5 });

    agent.onCommand = (f) => reply(f, 3, '', 'not ready: token=abc123SECRET');
    const failed = await runActivity(agentActs.runAgentCommand, [command('r1', 'readiness', route.sessionEpoch)]).result;
    assert.equal(failed.ok, false);
    assert.equal(failed.exitCode, 3);
    assert.ok(!failed.stderr.includes('abc123SECRET'), failed.stderr);
    assert.match(failed.stderr, /not ready/);

    let f = await failureOf(runActivity(agentActs.runAgentCommand, [command('r1', 'cleanup', route.sessionEpoch)]).result);
    assert.equal(f.type, 'command_not_declared');
    assert.equal(f.nonRetryable, true);

    f = await failureOf(runActivity(agentActs.runAgentCommand, [command('r1', 'reset', route.sessionEpoch - 1)]).result);
    assert.equal(f.type, 'agent_stale_route');
    assert.equal(f.nonRetryable, false);

    agent.onCommand = () => undefined; // never answers
    f = await failureOf(runActivity(agentActs.runAgentCommand, [command('r1', 'readiness', route.sessionEpoch, 0.1)]).result);
    assert.equal(f.type, 'agent_command_timeout');
    await agent.close();

    f = await failureOf(runActivity(agentActs.runAgentCommand, [command('r1', 'reset', route.sessionEpoch)]).result);
    assert.equal(f.type, 'agent_not_delivered', 'no session here: the reset was never sent');
    assert.equal(f.nonRetryable, false);
  });

  it('a session lost while the command runs is agent_not_connected (the workflow re-routes)', async () => {
    const agent = await currentAgent('r2', ['reset']);
    const route = await eventually(
      'a current (non-legacy) route to r2',
      async () => {
        const r = await routeOf('r2');
        return r && !r.legacy ? r : null;
      },
      POLL,
    );
    agent.onCommand = () => {
      agent.ws.terminate(); // the host reboots mid-command
      return undefined;
    };
    const f = await failureOf(runActivity(agentActs.runAgentCommand, [command('r2', 'reset', route.sessionEpoch)]).result);
    assert.equal(f.type, 'agent_not_connected');
  });

  it('legacy session: exec with the inventory command; pause_runner has none and is not declared', async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
    const route = await eventually(
      'a legacy route to r1',
      async () => {
        const r = await routeOf('r1');
        return r && r.legacy ? r : null;
      },
      POLL,
    );
    agent.onCommand = (f) => reply(f, 0, `ran ${f.payload.cmd}`);
    const reset = await runActivity(agentActs.runAgentCommand, [command('r1', 'reset', route.sessionEpoch, 60)]).result;
    assert.equal(reset.ok, true);
    assert.equal(reset.stdout, 'ran /opt/e2e/reset.sh');
    const readiness = await runActivity(agentActs.runAgentCommand, [command('r1', 'readiness', route.sessionEpoch)]).result;
    assert.equal(readiness.stdout, 'ran /opt/e2e/ready.sh');
    const execs = agent.received.filter((f) => f.type === 'exec');
    assert.deepEqual(execs.map((f) => f.payload), [{ cmd: '/opt/e2e/reset.sh', timeout: 60 }, { cmd: '/opt/e2e/ready.sh', timeout: 5 }]);
    const f = await failureOf(runActivity(agentActs.runAgentCommand, [command('r1', 'pause_runner', route.sessionEpoch)]).result);
    assert.equal(f.type, 'command_not_declared');
    assert.equal(agent.received.filter((x) => x.type === 'exec').length, 2, 'nothing was sent for pause_runner');
    await agent.close();
  });

  it('a draining instance is no route', async () => {
    const agent = await currentAgent('r2', ['reset']);
    await eventually('a route to r2', () => routeOf('r2'), POLL);
    await markInstanceDraining(database.db, h.instanceId);
    assert.equal(await routeOf('r2'), null);
    await agent.close();
  });
});
