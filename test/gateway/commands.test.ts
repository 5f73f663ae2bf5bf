// runCommand over real sockets (PGlite): `run` for current sessions, `exec` for legacy ones, and
// every error path.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { E2epoolError } from '../../src/domain/errors.js';
import { MAX_OUTPUT_CHARS } from '../../src/redaction.js';
import { migrate, openDatabase, type Database } from '../../src/store/database.js';
import { startGateway, TestAgent, TOKENS, type Frame, type GatewayHarness } from '../helpers/gateway-harness.js';

let database: Database;
let h: GatewayHarness;

beforeAll(async () => {
  database = await openDatabase('pglite:memory');
  await migrate(database);
  h = await startGateway({ db: database.db, tuning: { commandReplyGraceSeconds: 0.2 } });
});

afterAll(async () => {
  await h?.close();
  await database?.close();
});

async function currentAgent(runnerId: string, commands: string[]): Promise<TestAgent> {
  const agent = await TestAgent.connect(h.wsUrl, { runnerId, token: TOKENS[runnerId] });
  const hello = await agent.request('hello', { protocol: 2, agent_version: 'test', boot_id: 'b1', commands });
  assert.equal(hello.status, 'ok');
  return agent;
}

function execReply(f: Frame, exitCode: number, stdout = '', stderr = ''): Frame {
  return { id: f.id, status: exitCode === 0 ? 'ok' : 'error', data: { exit_code: exitCode, stdout, stderr } };
}

async function rejection(p: Promise<unknown>): Promise<E2epoolError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof E2epoolError, `expected an E2epoolError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

describe('current sessions (hello)', () => {
  it('sends run by name with the command id and resolves on exit 0', async () => {
    const agent = await currentAgent('r1', ['reset', 'readiness']);
    agent.onCommand = (f) => execReply(f, 0, 'clean\n', '');
    const result = await h.gateway.runCommand('r1', { name: 'reset', commandId: 'job-1-2-abcd:reset:1', timeoutSeconds: 120 });
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, 'clean\n');
    assert.equal(result.stderr, '');
    assert.ok(result.durationMs >= 0);
    const sent = agent.received.find((f) => f.type === 'run');
    assert.ok(sent);
    assert.match(sent.id, /^[0-9a-f]{12}$/);
    assert.deepEqual(sent.payload, { command: 'reset', command_id: 'job-1-2-abcd:reset:1', timeout: 120 });
    await agent.close();
  });

  it('a non-zero exit is agent_command_failed with the exit code and redacted, capped output', async () => {
    const agent = await currentAgent('r1', ['reset']);
    const huge = 'y'.repeat(100_000);
    agent.onCommand = (f) => execReply(f, 3, `${huge}`, 'login failed: token=abc123SECRET Authorization: Bearer eyJhbGciOi.xyz');
    const err = await rejection(h.gateway.runCommand('r1', { name: 'reset', commandId: 'c-fail', timeoutSeconds: 5 }));
    assert.equal(err.code, 'agent_command_failed');
    assert.equal(err.extra.exitCode, 3);
    assert.match(err.detail, /^Command 'reset' failed on runner r1 \(exit 3\): login failed: token=\*\*\*/);
    const stderr = err.extra.stderr as string;
    assert.ok(!stderr.includes('abc123SECRET') && !stderr.includes('eyJhbGciOi'), stderr);
    const stdout = err.extra.stdout as string;
    assert.ok(stdout.length <= MAX_OUTPUT_CHARS);
    assert.match(stdout, /\[truncated \d+ characters\]$/);
    await agent.close();
  });

  it('a command the agent did not declare is refused before anything is sent', async () => {
    const agent = await currentAgent('r1', ['readiness']);
    const err = await rejection(h.gateway.runCommand('r1', { name: 'cleanup', commandId: 'c-nd', timeoutSeconds: 5, legacyCmd: 'rm -rf /tmp/x' }));
    assert.equal(err.code, 'command_not_declared');
    assert.equal(err.detail, "Agent of runner r1 does not declare command 'cleanup'");
    await agent.request('ping');
    assert.equal(agent.received.filter((f) => f.type === 'run' || f.type === 'exec').length, 0);
    await agent.close();
  });

  it("the agent's own command_not_declared answer maps to command_not_declared", async () => {
    const agent = await currentAgent('r1', ['readiness']);
    agent.onCommand = (f) => ({ id: f.id, status: 'error', data: { exit_code: -1, stdout: '', stderr: 'not declared' }, error: { code: 404, detail: 'command_not_declared' } });
    const err = await rejection(h.gateway.runCommand('r1', { name: 'readiness', commandId: 'c-404', timeoutSeconds: 5 }));
    assert.equal(err.code, 'command_not_declared');
    await agent.close();
  });
});

describe('legacy sessions (no hello)', () => {
  it("sends e2epool's exec with the inventory command", async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r2', token: TOKENS.r2 });
    agent.onCommand = (f) => execReply(f, 0, 'ready', '');
    const result = await h.gateway.runCommand('r2', { name: 'readiness', commandId: 'c-legacy', timeoutSeconds: 30, legacyCmd: 'systemctl is-active docker' });
    assert.equal(result.stdout, 'ready');
    const sent = agent.received.find((f) => f.type === 'exec');
    assert.deepEqual(sent?.payload, { cmd: 'systemctl is-active docker', timeout: 30 });

    const err = await rejection(h.gateway.runCommand('r2', { name: 'cleanup', commandId: 'c-none', timeoutSeconds: 30 }));
    assert.equal(err.code, 'command_not_declared');
    assert.match(err.detail, /legacy agent and no 'cleanup' command configured/);

    agent.onCommand = (f) => ({ id: f.id, status: 'error', error: { code: 500, detail: 'boom' } });
    const malformed = await rejection(h.gateway.runCommand('r2', { name: 'readiness', commandId: 'c-bad', timeoutSeconds: 30, legacyCmd: 'true' }));
    assert.equal(malformed.code, 'agent_command_failed');
    assert.equal(malformed.extra.exitCode, -1);
    await agent.close();
  });
});

describe('routing and delivery failures', () => {
  it('no session → agent_not_delivered; other epoch → agent_stale_route', async () => {
    const none = await rejection(h.gateway.runCommand('r3', { name: 'readiness', commandId: 'c1', timeoutSeconds: 5, legacyCmd: 'true' }));
    assert.equal(none.code, 'agent_not_delivered');
    assert.equal(none.detail, 'Agent r3 not connected');

    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r3', token: TOKENS.r3 });
    await agent.request('ping');
    const epoch = h.gateway.sessionOf('r3')?.sessionEpoch;
    assert.ok(epoch);
    const stale = await rejection(h.gateway.runCommand('r3', { name: 'readiness', commandId: 'c2', timeoutSeconds: 5, legacyCmd: 'true', expectedEpoch: epoch - 1 }));
    assert.equal(stale.code, 'agent_stale_route');
    agent.onCommand = (f) => execReply(f, 0);
    const ok = await h.gateway.runCommand('r3', { name: 'readiness', commandId: 'c3', timeoutSeconds: 5, legacyCmd: 'true', expectedEpoch: epoch });
    assert.equal(ok.exitCode, 0);
    await agent.close();
  });

  it('the session dropping while waiting → agent_not_connected with lost: true', async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r3', token: TOKENS.r3 });
    agent.onCommand = () => {
      agent.ws.terminate();
      return undefined;
    };
    const err = await rejection(h.gateway.runCommand('r3', { name: 'reset', commandId: 'c-lost', timeoutSeconds: 60, legacyCmd: 'reboot' }));
    assert.equal(err.code, 'agent_not_connected');
    assert.equal(err.extra.lost, true);
  });

  it('no reply within timeout + grace → agent_command_timeout', async () => {
    const agent = await TestAgent.connect(h.wsUrl, { runnerId: 'r3', token: TOKENS.r3 });
    const started = performance.now();
    const err = await rejection(h.gateway.runCommand('r3', { name: 'readiness', commandId: 'c-slow', timeoutSeconds: 0.2, legacyCmd: 'sleep 60' }));
    const waited = performance.now() - started;
    assert.equal(err.code, 'agent_command_timeout');
    assert.ok(waited >= 380 && waited < 2000, `waited ${Math.round(waited)} ms`);
    // A late reply is dropped without harm.
    const sent = agent.received.find((f) => f.type === 'exec');
    agent.send(execReply(sent!, 0));
    assert.equal((await agent.request('ping')).status, 'ok');
    await agent.close();
  });

  it('rejects malformed command requests', async () => {
    await assert.rejects(h.gateway.runCommand('r1', { name: 'rm -rf', commandId: 'x', timeoutSeconds: 1 }), { code: 'bad_request' });
    await assert.rejects(h.gateway.runCommand('r1', { name: 'reset', commandId: '', timeoutSeconds: 1 }), { code: 'bad_request' });
    await assert.rejects(h.gateway.runCommand('r1', { name: 'reset', commandId: 'x', timeoutSeconds: 0 }), { code: 'bad_request' });
  });
});
