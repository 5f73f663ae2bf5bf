// Session lifecycle over real sockets (PGlite): replacement, heartbeat timeout, revocation, drain.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuthFailureLimiter } from '../../src/util/auth-failures.js';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { agentPresence, controllerInstances } from '../../db/schema.js';
import { E2epoolError } from '../../src/domain/errors.js';
import { PresenceStore } from '../../src/gateway/index.js';
import { migrate, openDatabase, type Database } from '../../src/store/database.js';
import { eventually } from '../helpers/eventually.js';
import { assertNoTokensLogged, startGateway, TestAgent, TOKENS } from '../helpers/gateway-harness.js';

/** How the gateway tests poll: up to 3 s, every 25 ms. */
const POLL = { timeoutMs: 3000, intervalMs: 25 };

let database: Database;

beforeAll(async () => {
  database = await openDatabase('pglite:memory');
  await migrate(database);
});

afterAll(async () => {
  await database?.close();
});

async function presenceOf(runnerId: string) {
  const [row] = await database.db.select().from(agentPresence).where(eq(agentPresence.runnerId, runnerId));
  return row ?? null;
}

describe('one live session per runner', () => {
  it('a new session replaces the old one (4000) and the old teardown keeps the new presence row', async () => {
    const h = await startGateway({ db: database.db });
    try {
      const first = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
      await first.request('ping');
      const firstEpoch = h.gateway.sessionOf('r1')?.sessionEpoch;
      assert.ok(firstEpoch);
      await eventually('the presence row of r1 to carry the first session epoch', async () => (await presenceOf('r1'))?.sessionEpoch === firstEpoch, POLL);

      const second = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1, header: true });
      const closed = await first.closed;
      assert.deepEqual(closed, { code: 4000, reason: 'replaced by a newer session' });
      const secondEpoch = h.gateway.sessionOf('r1')?.sessionEpoch;
      assert.ok(secondEpoch && secondEpoch > firstEpoch);

      // The old session's teardown has run (disconnected event) and left the new row alone.
      await eventually('the disconnected event of the first session', () => h.events.some((e) => e.type === 'disconnected' && e.sessionEpoch === firstEpoch), POLL);
      const row = await presenceOf('r1');
      assert.equal(row?.sessionEpoch, secondEpoch);
      assert.equal(h.gateway.sessionOf('r1')?.sessionEpoch, secondEpoch);
      assert.equal((await second.request('ping')).status, 'ok');

      // A teardown arriving even later (another instance, a slow database) is a no-op too.
      const store = new PresenceStore(database.db, h.instanceId);
      assert.equal(await store.remove('r1', firstEpoch), false);
      assert.equal(await store.upsert({ runnerId: 'r1', sessionEpoch: firstEpoch, declaredCommands: null }, { connected: true }), false);
      assert.equal((await presenceOf('r1'))?.sessionEpoch, secondEpoch);

      await second.close();
      await eventually('the presence row of r1 to be removed', async () => (await presenceOf('r1')) === null, POLL);
      assert.equal(h.gateway.sessionOf('r1'), null);
      assertNoTokensLogged(h.logs);
    } finally {
      await h.close();
    }
  });
});

describe('heartbeats', () => {
  it('a peer that stops answering pings is cut off and marked offline; a live one stays', async () => {
    const h = await startGateway({ db: database.db, heartbeatIntervalSeconds: 1, heartbeatTimeoutSeconds: 1, tuning: { presenceTouchSeconds: 0.5 } });
    try {
      const dead = await TestAgent.connect(h.wsUrl, { runnerId: 'r2', token: TOKENS.r2, autoPong: false });
      const alive = await TestAgent.connect(h.wsUrl, { runnerId: 'r3', token: TOKENS.r3 });
      await dead.request('ping');
      await alive.request('ping');
      const connectedRow = await presenceOf('r3');
      assert.ok(connectedRow);
      const started = performance.now();

      const { code } = await dead.closed;
      const elapsed = performance.now() - started;
      assert.equal(code, 1006, 'terminated without a close frame');
      assert.ok(elapsed > 800 && elapsed < 3500, `cut off after ${Math.round(elapsed)} ms`);
      await eventually(
        'a heartbeat_timeout disconnect of r2',
        () => h.events.some((e) => e.type === 'disconnected' && e.runnerId === 'r2' && e.reason === 'heartbeat_timeout'),
        POLL,
      );
      assert.equal(await presenceOf('r2'), null);
      assert.ok(h.logs.some((l) => l.includes('agent offline: no heartbeat') && l.includes('"runnerId":"r2"')));

      // The answering peer survived the same period, and its pongs refreshed last_seen.
      await sleep(Math.max(0, 2600 - (performance.now() - started)));
      assert.ok(alive.isOpen);
      const row = await presenceOf('r3');
      assert.ok(row && row.lastSeen.getTime() > connectedRow.lastSeen.getTime(), 'last_seen refreshed by pongs');
      await alive.close();
    } finally {
      await h.close();
    }
  });
});

describe('failed handshakes', () => {
  it('an address past its failed-authentication limit gets 429, also with valid credentials', async () => {
    const h = await startGateway({ db: database.db, authFailures: new AuthFailureLimiter({ perMinute: 2 }) });
    try {
      assert.equal(await TestAgent.rejection(h.wsUrl, { runnerId: 'r1', token: 'not-the-token' }), 403);
      assert.equal(await TestAgent.rejection(h.wsUrl, { runnerId: 'r1', token: 'not-the-token' }), 403);
      assert.equal(await TestAgent.rejection(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 }), 429);
    } finally {
      await h.close();
    }
  });
});

describe('session takeover', () => {
  it('a new session replacing one still open for the same runner is reported, with both addresses', async () => {
    const replaced: Array<{ runnerId: string; previousEpoch: number; newEpoch: number; remote?: string | undefined }> = [];
    const h = await startGateway({ db: database.db, onSessionReplaced: (info) => replaced.push(info) });
    try {
      const first = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
      await first.request('ping');
      assert.equal(replaced.length, 0, 'a first session replaces nothing');
      const second = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
      await second.request('ping');
      assert.equal((await first.closed).code, 4000);
      assert.equal(replaced.length, 1);
      assert.equal(replaced[0]!.runnerId, 'r1');
      assert.ok(replaced[0]!.newEpoch > replaced[0]!.previousEpoch);
      assert.match(String(replaced[0]!.remote), /127\.0\.0\.1/);
      await second.close();
    } finally {
      await h.close();
    }
  });
});

describe('revocation', () => {
  it('closeRunnerSessions closes with 4401, removes presence, and refuses the old token afterwards', async () => {
    const h = await startGateway({ db: database.db });
    try {
      const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
      await agent.request('ping');
      h.registry.byRunner.delete('r1'); // deactivated in the registry
      await h.gateway.closeRunnerSessions('r1', 'runner deactivated');
      assert.deepEqual(await agent.closed, { code: 4401, reason: 'runner deactivated' });
      assert.equal(await presenceOf('r1'), null);
      assert.equal(await TestAgent.rejection(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 }), 403);
    } finally {
      await h.close();
    }
  });

  it('a token revoked elsewhere (another instance) ends the session at the next credential check', async () => {
    const h = await startGateway({ db: database.db, heartbeatIntervalSeconds: 0.2, heartbeatTimeoutSeconds: 2, tuning: { reauthSeconds: 0.3 } });
    try {
      const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r2', token: TOKENS.r2 });
      await sleep(500);
      assert.ok(agent.isOpen, 'still valid credentials keep the session');
      h.registry.byRunner.set('r2', 'tok-r2-rotated');
      const closed = await agent.closed;
      assert.deepEqual(closed, { code: 4401, reason: 'credentials no longer valid' });
    } finally {
      await h.close();
    }
  });
});

describe('drain', () => {
  it('refuses new sessions, finishes in-flight work within the grace, fails the rest retryably, closes with 1001', async () => {
    const h = await startGateway({ db: database.db });
    await h.gateway.registerInstance();
    try {
      const idle = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
      const busy = await TestAgent.connect(h.wsUrl, { runnerId: 'r2', token: TOKENS.r2 });
      const silent = await TestAgent.connect(h.wsUrl, { runnerId: 'r3', token: TOKENS.r3 });
      await Promise.all([idle.request('ping'), busy.request('ping'), silent.request('ping')]);
      await eventually('presence rows for all three agents', async () => (await database.db.select().from(agentPresence)).length === 3, POLL);

      h.checkpoints.createDelayMs = 300;
      const creating = busy.request('create', { job_id: 'during-drain' }, 5000);
      await sleep(30);
      // r3 never answers this command: drain must fail it retryably.
      const command = h.gateway.runCommand('r3', { name: 'readiness', commandId: 'wf:readiness:1', timeoutSeconds: 60, legacyCmd: 'true' });
      const commandOutcome = command.then(
        () => null,
        (err: unknown) => err,
      );

      const draining = h.gateway.drain(800);
      assert.deepEqual(await idle.closed, { code: 1001, reason: 'controller shutting down' });
      assert.equal(await TestAgent.rejection(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 }), 503);
      await eventually(
        'the controller instance row to be marked draining',
        async () => {
          const [row] = await database.db.select().from(controllerInstances).where(eq(controllerInstances.instanceId, h.instanceId));
          return row?.draining === true;
        },
        POLL,
      );

      const created = await creating;
      assert.equal(created.status, 'ok', 'the in-flight create finished and was answered');
      assert.equal((await busy.closed).code, 1001);

      await draining;
      const err = await commandOutcome;
      assert.ok(err instanceof E2epoolError);
      assert.equal(err.code, 'agent_not_connected');
      assert.equal(err.extra.draining, true);
      assert.equal((await silent.closed).code, 1001);
      assert.equal((await database.db.select().from(agentPresence)).length, 0);
      // Nothing is sent once draining: not delivered, never mistaken for a lost command.
      await assert.rejects(h.gateway.runCommand('r3', { name: 'readiness', commandId: 'x', timeoutSeconds: 1, legacyCmd: 'true' }), {
        code: 'agent_not_delivered',
      });
    } finally {
      await h.close();
    }
  });
});

describe('restart with a stable instance id', () => {
  it("drops the sessions the previous process left behind (it died without draining), keeping each as the runner's last session", async () => {
    const instanceId = 'stable-instance-under-test';
    // What a SIGKILLed process with this id leaves: its row, stale, and presence rows of its sessions.
    await database.db.insert(controllerInstances).values({ instanceId, lastSeen: new Date(Date.now() - 600_000) });
    const dead = new PresenceStore(database.db, instanceId);
    await dead.upsert({ runnerId: 'r-left-behind', sessionEpoch: await dead.nextEpoch(), bootId: 'boot-before-the-crash', agentVersion: '0.1.0', declaredCommands: null }, { connected: true });
    assert.equal((await database.db.select().from(agentPresence).where(eq(agentPresence.instanceId, instanceId))).length, 1);

    const h = await startGateway({ db: database.db, instanceId });
    try {
      await h.gateway.registerInstance();
      const [instance] = await database.db.select().from(controllerInstances).where(eq(controllerInstances.instanceId, instanceId));
      assert.ok(instance && Date.now() - instance.lastSeen.getTime() < 60_000, 'the instance row is fresh again');
      assert.deepEqual(await database.db.select().from(agentPresence).where(eq(agentPresence.instanceId, instanceId)), [], 'no session of the dead process looks live');
      const last = await database.db.execute(sql`select runner_id from agent_last_sessions where runner_id = 'r-left-behind'`);
      assert.equal(((last as { rows?: unknown[] }).rows ?? (last as unknown as unknown[])).length, 1, 'kept as the last session');
    } finally {
      await h.close();
    }
  });
});
