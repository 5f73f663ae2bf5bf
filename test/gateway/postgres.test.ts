// Two gateway instances on one real PostgreSQL: epochs from the shared sequence, presence moving
// between instances, compare-and-delete across instances, routes ignoring stale or draining ones.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { agentPresence, controllerInstances } from '../../db/schema.js';
import { PresenceStore } from '../../src/gateway/index.js';
import { resolveRoute } from '../../src/store/agent-presence.js';
import { createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { eventually } from '../helpers/eventually.js';
import { assertNoTokensLogged, startGateway, TestAgent, TOKENS, type GatewayHarness } from '../helpers/gateway-harness.js';

/** How the gateway tests poll: up to 3 s, every 25 ms. */
const POLL = { timeoutMs: 3000, intervalMs: 25 };

let database: TestDatabase;
let a: GatewayHarness;
let b: GatewayHarness;

beforeAll(async () => {
  database = await createPostgresDatabase();
  // Fast heartbeats so that pongs refresh presence (and reveal a takeover) within the test.
  const opts = { db: database.db, heartbeatIntervalSeconds: 0.2, heartbeatTimeoutSeconds: 2, tuning: { presenceTouchSeconds: 0.1 } };
  a = await startGateway({ ...opts, instanceId: 'instance-a' });
  b = await startGateway({ ...opts, instanceId: 'instance-b' });
  await a.gateway.registerInstance();
  await b.gateway.registerInstance();
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await database?.drop();
  assertNoTokensLogged([...(a?.logs ?? []), ...(b?.logs ?? [])]);
});

async function presenceOf(runnerId: string) {
  const [row] = await database.db.select().from(agentPresence).where(eq(agentPresence.runnerId, runnerId));
  return row ?? null;
}

describe('presence across instances (PostgreSQL)', () => {
  it('a reconnect to another instance moves the route; the old instance never deletes the new row', async () => {
    const onA = await TestAgent.connect(a.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
    await onA.request('hello', { protocol: 2, agent_version: '2.0.0', boot_id: 'boot-1', commands: ['readiness'] });
    const epochA = a.gateway.sessionOf('r1')?.sessionEpoch;
    assert.ok(epochA);
    assert.deepEqual(await resolveRoute(database.db, 'r1'), { instanceId: 'instance-a', sessionEpoch: epochA });

    // The agent reconnects to instance B while A still holds the (half-dead) old socket.
    const onB = await TestAgent.connect(b.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
    await onB.request('ping');
    const epochB = b.gateway.sessionOf('r1')?.sessionEpoch;
    assert.ok(epochB && epochB > epochA, 'epochs increase across instances');
    await eventually('the presence row of r1 to move to instance-b', async () => (await presenceOf('r1'))?.instanceId === 'instance-b', POLL);
    assert.deepEqual(await resolveRoute(database.db, 'r1'), { instanceId: 'instance-b', sessionEpoch: epochB });
    assert.equal((await presenceOf('r1'))?.declaredCommands, null, 'the new legacy session does not inherit declared commands');

    // A finds out at its next presence refresh and closes its superseded session; its teardown
    // (compare-and-delete on its own epoch) leaves B's row in place.
    assert.deepEqual(await onA.closed, { code: 4000, reason: 'replaced by a newer session' });
    await eventually('the disconnected event of the session on instance-a', () => a.events.some((e) => e.type === 'disconnected' && e.sessionEpoch === epochA), POLL);
    assert.equal(a.gateway.sessionOf('r1'), null);
    assert.deepEqual(await resolveRoute(database.db, 'r1'), { instanceId: 'instance-b', sessionEpoch: epochB });

    // A stale write of the old session, whenever it lands, changes nothing.
    const storeA = new PresenceStore(database.db, 'instance-a');
    assert.equal(await storeA.upsert({ runnerId: 'r1', sessionEpoch: epochA, declaredCommands: ['readiness'] }, { connected: false }), false);
    assert.equal(await storeA.remove('r1', epochA), false);
    assert.equal(await storeA.touch('r1', epochA), false);
    assert.equal((await presenceOf('r1'))?.sessionEpoch, epochB);
    assert.equal((await onB.request('ping')).status, 'ok');
    await onB.close();
    await eventually('the presence row of r1 to be removed', async () => (await presenceOf('r1')) === null, POLL);
  });

  it('routes ignore instances unseen for 30 s and draining instances', async () => {
    const agent = await TestAgent.connect(a.wsUrl, { runnerId: 'r2', token: TOKENS.r2 });
    await agent.request('ping');
    const epoch = a.gateway.sessionOf('r2')?.sessionEpoch;
    await eventually('the presence row of r2 to carry its session epoch', async () => (await presenceOf('r2'))?.sessionEpoch === epoch, POLL);
    assert.deepEqual(await resolveRoute(database.db, 'r2'), { instanceId: 'instance-a', sessionEpoch: epoch });

    await database.db
      .update(controllerInstances)
      .set({ lastSeen: sql`now() - interval '31 seconds'` })
      .where(eq(controllerInstances.instanceId, 'instance-a'));
    assert.equal(await resolveRoute(database.db, 'r2'), null);
    await database.db.update(controllerInstances).set({ lastSeen: sql`now()` }).where(eq(controllerInstances.instanceId, 'instance-a'));
    assert.ok(await resolveRoute(database.db, 'r2'));
    assert.equal(await resolveRoute(database.db, 'nobody'), null);

    // Graceful stop of A: draining → no route, sockets closed with 1001, own rows deleted.
    const onB = await TestAgent.connect(b.wsUrl, { runnerId: 'r3', token: TOKENS.r3 });
    await onB.request('ping');
    await a.gateway.drain(200);
    assert.equal((await agent.closed).code, 1001);
    assert.equal(await resolveRoute(database.db, 'r2'), null);
    assert.equal(await presenceOf('r2'), null);
    const [rowA] = await database.db.select().from(controllerInstances).where(eq(controllerInstances.instanceId, 'instance-a'));
    assert.equal(rowA?.draining, true);
    // B's sessions and rows are untouched by A's drain.
    assert.equal((await presenceOf('r3'))?.instanceId, 'instance-b');
    assert.ok(onB.isOpen);
    await onB.close();
  });
});
