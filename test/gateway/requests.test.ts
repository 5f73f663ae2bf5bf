// Agent gateway over real sockets (PGlite): handshake auth, request types, error mapping,
// malformed frames, flood limits, non-blocking handling, and arbitrary frames (fast-check).
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { eq } from 'drizzle-orm';
import fc from 'fast-check';
import { agentPresence } from '../../db/schema.js';
import { migrate, openDatabase, type Database } from '../../src/store/database.js';
import { assertNoTokensLogged, startGateway, TestAgent, TOKENS, type GatewayHarness } from '../helpers/gateway-harness.js';

let database: Database;
let h: GatewayHarness;

beforeAll(async () => {
  database = await openDatabase('pglite:memory');
  await migrate(database);
  h = await startGateway({ db: database.db });
});

afterAll(async () => {
  await h?.close();
  await database?.close();
  assertNoTokensLogged(h.logs);
});

describe('handshake', () => {
  it('accepts e2epool query credentials and answers ping with pong', async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
    const reply = await agent.request('ping');
    assert.deepEqual(reply.status, 'ok');
    assert.deepEqual(reply.data, { pong: true });
    assert.equal(reply.error, null);
    await agent.close();
  });

  it('accepts Authorization: Bearer with or without runner_id', async () => {
    const withId = await TestAgent.connect(h.wsUrl, { runnerId: 'r2', token: TOKENS.r2, header: true });
    assert.equal((await withId.request('ping')).status, 'ok');
    assert.equal(h.gateway.sessionOf('r2')?.runnerId, 'r2');
    await withId.close();
    const withoutId = await TestAgent.connect(h.wsUrl, { token: TOKENS.r2, header: true });
    assert.equal((await withoutId.request('ping')).status, 'ok');
    assert.equal(h.gateway.sessionOf('r2')?.kind, 'legacy');
    await withoutId.close();
  });

  it('rejects bad, missing or mismatched credentials with an HTTP status, never accepting', async () => {
    assert.equal(await TestAgent.rejection(h.wsUrl, { runnerId: 'r1', token: 'wrong-token' }), 403);
    assert.equal(await TestAgent.rejection(h.wsUrl, { runnerId: 'r1', token: TOKENS.r2 }), 403);
    assert.equal(await TestAgent.rejection(h.wsUrl, { runnerId: 'nobody', token: TOKENS.r1, header: true }), 403);
    assert.equal(await TestAgent.rejection(h.wsUrl, { runnerId: 'r1' }), 401);
    assert.equal(await TestAgent.rejection(h.wsUrl, {}), 401);
    assert.equal(await TestAgent.rejection(h.wsUrl.replace('/ws/agent', '/ws/other'), { runnerId: 'r1', token: TOKENS.r1 }), 404);
    // The Bearer prefix is case-sensitive, as e2epool's HTTP auth.
    assert.equal(await TestAgent.rejection(h.wsUrl, { authorization: `bearer ${TOKENS.r1}` }), 401);
    assert.equal(await TestAgent.rejection(h.wsUrl, { authorization: 'Bearer ' }), 401);
    assert.equal(h.gateway.sessionOf('r1'), null);
  });

  it('logs the connect URL with the token stripped', async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
    await agent.request('ping');
    const line = h.logs.find((l) => l.includes('"agent connected"') && l.includes('runner_id=r1'));
    assert.ok(line, 'connect logged');
    assert.match(line, /token=\*\*\*/);
    await agent.close();
  });
});

describe('presence and hello', () => {
  it('records a legacy session at connect, then upgrades it on hello with the same epoch', async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r3', token: TOKENS.r3 });
    await agent.request('ping'); // the connect upsert is ordered before any request's effects
    const session = h.gateway.sessionOf('r3');
    assert.ok(session);
    assert.equal(session.kind, 'legacy');
    const [legacyRow] = await database.db.select().from(agentPresence).where(eq(agentPresence.runnerId, 'r3'));
    assert.ok(legacyRow);
    assert.equal(legacyRow.declaredCommands, null);
    assert.equal(legacyRow.instanceId, h.instanceId);
    assert.equal(legacyRow.sessionEpoch, session.sessionEpoch);

    const hello = await agent.request('hello', { protocol: 2, agent_version: '1.2.3', boot_id: 'boot-a', commands: ['reset', 'readiness', 'reset'] });
    assert.equal(hello.status, 'ok');
    assert.deepEqual(hello.data, { session_epoch: session.sessionEpoch, instance_id: h.instanceId });
    const [row] = await database.db.select().from(agentPresence).where(eq(agentPresence.runnerId, 'r3'));
    assert.deepEqual(row?.declaredCommands, ['reset', 'readiness']);
    assert.equal(row?.agentVersion, '1.2.3');
    assert.equal(row?.bootId, 'boot-a');
    assert.equal(row?.sessionEpoch, session.sessionEpoch);
    assert.equal(h.gateway.sessionOf('r3')?.kind, 'current');
    assert.ok(h.events.some((e) => e.type === 'hello' && e.runnerId === 'r3'));

    const bad = await agent.request('hello', { protocol: 1 });
    assert.deepEqual(bad.error, { code: 400, detail: 'protocol must be an integer >= 2' });
    await agent.close();
    const rows = await database.db.select().from(agentPresence).where(eq(agentPresence.runnerId, 'r3'));
    assert.equal(rows.length, 0, 'teardown removed the presence row');
  });
});

describe('legacy sessions', () => {
  it('a create from a session that never said hello is marked legacy (its deadline stays under 30 s); after hello it is not', async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r2', token: TOKENS.r2 });
    const first = await agent.request('create', { job_id: 'legacy-1' });
    assert.equal(first.status, 'ok');
    const calls = () => h.checkpoints.calls.filter((c) => c.type === 'create' && c.runnerId === 'r2');
    assert.deepEqual(calls().at(-1)?.opts, { legacySession: true });
    h.checkpoints.checkpoints.clear();
    assert.equal((await agent.request('hello', { protocol: 2, agent_version: '1', boot_id: 'b', commands: ['reset'] })).status, 'ok');
    assert.equal((await agent.request('create', { job_id: 'current-1' })).status, 'ok');
    assert.deepEqual(calls().at(-1)?.opts, { legacySession: false });
    h.checkpoints.checkpoints.clear();
    await agent.close();
  });
});

describe('request types and error mapping', () => {
  it('create, finalize and status with e2epool answers', async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
    const created = await agent.request('create', { job_id: 100, caller: 'ci' });
    assert.equal(created.status, 'ok');
    assert.match(created.data.name, /^job-100-\d+-[0-9a-f]{8}$/);
    assert.equal(created.data.runner_id, 'r1');

    const again = await agent.request('create', { job_id: '101' });
    assert.deepEqual(again, {
      id: again.id,
      status: 'error',
      data: null,
      error: { code: 409, detail: `Active checkpoint '${created.data.name}' already exists for runner 'r1'` },
    });
    assert.deepEqual((await agent.request('create', {})).error, { code: 400, detail: 'job_id is required' });
    assert.deepEqual((await agent.request('create', { job_id: '' })).error, { code: 400, detail: 'job_id is required' });

    const status = await agent.request('status', { checkpoint_name: created.data.name });
    assert.equal(status.data.state, 'created');
    assert.deepEqual((await agent.request('status', {})).error, { code: 400, detail: 'checkpoint_name is required' });
    assert.deepEqual((await agent.request('status', { checkpoint_name: 'job-x-1-abcdef01' })).error, { code: 404, detail: 'Checkpoint not found' });

    assert.deepEqual((await agent.request('finalize', { checkpoint_name: created.data.name })).error, {
      code: 400,
      detail: 'checkpoint_name and status are required',
    });
    assert.deepEqual((await agent.request('finalize', { checkpoint_name: created.data.name, status: 'bogus' })).error, {
      code: 400,
      detail: 'status must be one of success, failure, canceled',
    });
    const fin = await agent.request('finalize', { checkpoint_name: created.data.name, status: 'failed' });
    assert.deepEqual(fin.data, { detail: 'Finalize queued', checkpoint_name: created.data.name });
    const call = h.checkpoints.calls.find((c) => c.type === 'finalize');
    assert.deepEqual(call?.payload, { checkpoint_name: created.data.name, status: 'failure', source: 'agent' });
    const twice = await agent.request('finalize', { checkpoint_name: created.data.name, status: 'success' });
    assert.deepEqual(twice.data, { detail: 'Already finalized', state: 'finalize_queued' });
    await agent.close();

    // Another runner may not see or finalize r1's checkpoint.
    const other = await TestAgent.connect(h.wsUrl, { runnerId: 'r2', token: TOKENS.r2 });
    assert.deepEqual((await other.request('status', { checkpoint_name: created.data.name })).error, {
      code: 404,
      detail: 'Checkpoint not found',
    });
    await other.close();
  });

  it('an unexpected handler failure is 500 Internal server error, logged without secrets', async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r2', token: TOKENS.r2 });
    const reply = await agent.request('create', { job_id: 'explode' });
    assert.deepEqual(reply.error, { code: 500, detail: 'Internal server error' });
    const line = h.logs.find((l) => l.includes('agent request failed unexpectedly'));
    assert.ok(line);
    assert.ok(!line.includes('hunter2') && !line.includes('abc123'), line);
    assert.equal((await agent.request('ping')).status, 'ok');
    await agent.close();
  });
});

describe('malformed frames', () => {
  it('answer 400 and keep the connection up', async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r3', token: TOKENS.r3 });
    const cases: Array<[string | Buffer, string]> = [
      ['not json', 'Frame is not valid JSON'],
      ['[1,2]', 'Frame must be a JSON object'],
      ['"text"', 'Frame must be a JSON object'],
      ['null', 'Frame must be a JSON object'],
      ['{"type":"ping"}', 'id is required'],
      ['{"id":"a1"}', 'type is required'],
      ['{"id":"a2","type":"reboot"}', 'Unknown request type "reboot"; expected one of create, finalize, status, ping, hello'],
      ['{"id":"a3","type":"ping","payload":[]}', 'payload must be an object'],
      [Buffer.from([0xff, 0xfe, 0x00]), 'Frame is not valid UTF-8'],
      [JSON.stringify({ id: 'big', type: 'ping', payload: { pad: 'x'.repeat(1024 * 1024) } }), 'Frame exceeds the maximum size of 1048576 bytes'],
    ];
    for (const [frame, detail] of cases) {
      const from = agent.received.length;
      agent.send(frame);
      const reply = await agent.next(() => true, 3000, from);
      assert.equal(reply.status, 'error');
      assert.equal(reply.error.code, 400);
      assert.equal(reply.error.detail, detail);
    }
    // An id that is present is echoed.
    assert.equal(agent.received.find((f) => f.error?.detail === 'type is required')?.id, 'a1');
    // Objects with a status key are replies to our commands: unknown ids are dropped silently.
    const from = agent.received.length;
    agent.send({ id: 'nobody-asked', status: 'ok', data: {} });
    const pong = await agent.request('ping');
    assert.equal(pong.status, 'ok');
    assert.equal(agent.received.slice(from).length, 1, 'no answer to a stray reply');
    assert.ok(agent.isOpen);
    await agent.close();
  });
});

describe('non-blocking request handling', () => {
  it('a 2 s create does not delay another session, the same session or HTTP', async () => {
    h.checkpoints.createDelayMs = 2000;
    try {
      const slow = await TestAgent.connect(h.wsUrl, { runnerId: 'r2', token: TOKENS.r2 });
      const fast = await TestAgent.connect(h.wsUrl, { runnerId: 'r3', token: TOKENS.r3 });
      const started = performance.now();
      const creating = slow.request('create', { job_id: 'slow-1' }, 5000);
      await new Promise((r) => setTimeout(r, 50));
      for (let i = 0; i < 5; i++) assert.equal((await fast.request('ping')).status, 'ok');
      assert.equal((await slow.request('ping')).status, 'ok');
      const res = await fetch(`${h.httpUrl}/healthz`);
      assert.equal(res.status, 200);
      const quick = performance.now() - started;
      assert.ok(quick < 1000, `pings and HTTP answered after ${Math.round(quick)} ms`);
      const created = await creating;
      assert.equal(created.status, 'ok');
      assert.ok(performance.now() - started >= 1900);
      await slow.close();
      await fast.close();
    } finally {
      h.checkpoints.createDelayMs = 0;
    }
  });
});

describe('flood protection', () => {
  it('answers 429 over the limit, then closes a sustained flood with 1008', async () => {
    const limited = await startGateway({
      db: database.db,
      tuning: { rateLimit: { messagesPerSecond: 0.5, burst: 10, rejectedBurst: 20, rejectedPerSecond: 0.5 } },
    });
    try {
      const agent = await TestAgent.connect(limited.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
      for (let i = 0; i < 15; i++) agent.send({ id: `p${i}`, type: 'ping', payload: {} });
      await agent.next((f) => f.id === 'p14');
      const replies = agent.received.filter((f) => /^p\d+$/.test(f.id));
      assert.equal(replies.filter((f) => f.status === 'ok').length, 10);
      const limitedReplies = replies.filter((f) => f.error?.code === 429);
      assert.equal(limitedReplies.length, 5);
      assert.equal(limitedReplies[0]?.error.detail, 'Rate limit exceeded');
      assert.ok(agent.isOpen, 'a burst alone does not close the session');
      for (let i = 0; i < 40; i++) agent.send({ id: `f${i}`, type: 'ping', payload: {} });
      const { code } = await agent.closed;
      assert.equal(code, 1008);
    } finally {
      await limited.close();
    }
  });
});

describe('arbitrary frames (property)', () => {
  it('never crash the gateway nor close the connection', async () => {
    // Generous limits: this property is about parsing; flooding is covered above.
    const roomy = await startGateway({ db: database.db, tuning: { rateLimit: { messagesPerSecond: 10_000, burst: 10_000 } } });
    const agent = await TestAgent.connect(roomy.wsUrl, { runnerId: 'r1', token: TOKENS.r1 });
    let n = 0;
    const frame = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.json({ maxDepth: 3 }),
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      fc.record({ id: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), type: fc.oneof(fc.constantFrom('ping', 'status', 'finalize', 'exec', 'run'), fc.string()), payload: fc.anything() }).map((o) => JSON.stringify(o) ?? '{}'),
    );
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        agent.send(f);
        const id = `probe-${n++}`;
        agent.send({ id, type: 'ping', payload: {} });
        const pong = await agent.next((x) => x.id === id);
        return pong.status === 'ok' && agent.isOpen;
      }),
      { numRuns: 150 },
    );
    assert.ok(agent.isOpen);
    await agent.close();
    await roomy.close();
    assertNoTokensLogged(roomy.logs);
  });
});
