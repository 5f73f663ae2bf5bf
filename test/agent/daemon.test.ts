// The agent daemon against a real WebSocket controller double, with the CLI functions talking to
// it over its real Unix socket.
import { test, afterAll } from 'vitest';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentDaemon } from '../../agent/daemon.js';
import { createAgentLogger } from '../../agent/log.js';
import type { AgentConfig } from '../../agent/config.js';
import { agentStatus, checkpointStatus, createCheckpoint, finalizeCheckpoint } from '../../agent/cli.js';
import { sendIpcRequest } from '../../agent/ipc-client.js';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from '../../agent/ipc-framing.js';
import { FakeController } from '../helpers/agent-fake-controller.js';
import { eventually } from '../helpers/eventually.js';

const TOKEN = 'tok-SECRET-8f3a9c';
const logs: string[] = [];
const logger = createAgentLogger({ level: 'debug', destination: { write: (s: string) => void logs.push(s) } });
const daemons: AgentDaemon[] = [];
const controllers: FakeController[] = [];

afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  await Promise.all(controllers.map((c) => c.stop()));
});

function socketDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'e2epool-agent-it-'));
}

function config(over: Partial<AgentConfig> = {}): AgentConfig {
  return {
    controllerUrl: 'ws://127.0.0.1:9/ws/agent',
    runnerId: 'runner-1',
    token: TOKEN,
    socketPath: path.join(socketDir(), 'agent.sock'),
    socketGroup: null,
    socketMode: 0o660,
    reconnectMaxDelay: 0.4,
    reconnectInitialDelay: 0.05,
    heartbeatInterval: 5,
    createTimeout: 5,
    requestTimeout: 2,
    shutdownGraceSeconds: 2,
    killGraceSeconds: 0.2,
    maxOutputBytes: 65536,
    allowRemoteCommands: false,
    allowInsecureTransport: false,
    sendTokenInQuery: false,
    caFile: null,
    commandEnv: {},
    commands: { reset: 'echo reset-ran', readiness: 'true' },
    logLevel: 'debug',
    ...over,
  };
}

async function controller(): Promise<FakeController> {
  const c = new FakeController('runner-1', TOKEN);
  await c.start();
  controllers.push(c);
  return c;
}

async function agent(over: Partial<AgentConfig> = {}): Promise<AgentDaemon> {
  const d = new AgentDaemon({ config: config(over), logger, bootId: 'boot-1' });
  daemons.push(d);
  await d.start();
  return d;
}

const checkpoint = { name: 'job-42-1700000000-abcdef12', runner_id: 'runner-1', job_id: '42', state: 'created', finalize_status: null };

test('connects with the runner id in the query and the token in the header only, says hello with the declared commands', async () => {
  const ctl = await controller();
  const d = await agent({ controllerUrl: ctl.url });
  const session = await ctl.waitForSessions(1);
  assert.equal(session.url.searchParams.get('runner_id'), 'runner-1');
  assert.equal(session.url.searchParams.get('token'), null, 'no token in the URL, which proxies log');
  assert.equal(session.authorization, `Bearer ${TOKEN}`);
  const hello = session.received.find((m) => m.type === 'hello')!;
  assert.match(hello.id, /^[0-9a-f]+$/);
  assert.deepEqual(hello.payload, { protocol: 2, agent_version: '0.1.0', boot_id: 'boot-1', commands: ['readiness', 'reset'] });
  await eventually('session epoch 1', () => d.connection.session?.sessionEpoch === 1, { timeoutMs: 3000, intervalMs: 10 });
  assert.equal(d.connection.session?.instanceId, 'ctl-a');
});

test('send_token_in_query also puts the token in the URL, for e2epool controllers', async () => {
  const ctl = await controller();
  await agent({ controllerUrl: ctl.url, sendTokenInQuery: true });
  const session = await ctl.waitForSessions(1);
  assert.equal(session.url.searchParams.get('token'), TOKEN);
});

test('commands run with a minimal declared environment, and the agent token never leaves in their output', async () => {
  process.env.E2EPOOL_AGENT_TEST_LEAK = 'agent-environment-value';
  try {
    const ctl = await controller();
    await agent({
      controllerUrl: ctl.url,
      commandEnv: { DEPLOY_ENV: 'ci' },
      commands: { reset: 'echo "env:${E2EPOOL_AGENT_TEST_LEAK:-unset} ${DEPLOY_ENV} path:${PATH:+set}"; echo "token=' + TOKEN + '"; echo ' + TOKEN + ' >&2', readiness: 'true' },
    });
    const session = await ctl.waitForSessions(1);
    const reply = await ctl.sendCommand(session, { id: 'c-env', type: 'run', payload: { command: 'reset', command_id: 'c-env-1', timeout: 5 } });
    const payload = reply.data as { stdout: string; stderr: string; exit_code: number };
    assert.equal(payload.exit_code, 0);
    assert.match(payload.stdout, /env:unset ci path:set/);
    assert.ok(!payload.stdout.includes(TOKEN) && !payload.stderr.includes(TOKEN), 'the token is stripped from the output');
    assert.match(payload.stdout, /token=\*\*\*/);
  } finally {
    delete process.env.E2EPOOL_AGENT_TEST_LEAK;
  }
});

test('an existing query string gets &runner_id=...', async () => {
  const ctl = await controller();
  await agent({ controllerUrl: `${ctl.url}?region=eu` });
  const session = await ctl.waitForSessions(1);
  assert.equal(session.url.searchParams.get('region'), 'eu');
  assert.equal(session.url.searchParams.get('runner_id'), 'runner-1');
});

test('create, finalize and status through the CLI functions, as e2epool printed them', async () => {
  const ctl = await controller();
  const cfg = config({ controllerUrl: ctl.url });
  const d = new AgentDaemon({ config: cfg, logger, bootId: 'b' });
  daemons.push(d);
  await d.start();
  await ctl.waitForSessions(1);
  ctl.answers.create = (m) => ({ id: m.id, status: 'ok', data: { ...checkpoint, job_id: m.payload.job_id }, error: null });
  ctl.answers.finalize = (m) => ({ id: m.id, status: 'ok', data: { detail: 'Finalize queued', checkpoint_name: m.payload.checkpoint_name }, error: null });
  ctl.answers.status = (m) =>
    m.payload.checkpoint_name === checkpoint.name
      ? { id: m.id, status: 'ok', data: { ...checkpoint, state: 'reset', finalize_status: 'failure' }, error: null }
      : { id: m.id, status: 'error', data: null, error: { code: 404, detail: 'Checkpoint not found' } };
  const ctx = { socket: cfg.socketPath };

  assert.deepEqual(await createCheckpoint({ jobId: '42', projectId: '7' }, ctx), { exitCode: 0, stdout: `${checkpoint.name}\n`, stderr: '' });
  const sent = ctl.last!.received.find((m) => m.type === 'create')!;
  assert.deepEqual(sent.payload, { job_id: '42', project_id: '7' });

  assert.deepEqual(await finalizeCheckpoint({ checkpoint: checkpoint.name, status: 'failed' }, ctx), { exitCode: 0, stdout: 'Finalize queued\n', stderr: '' });
  assert.deepEqual(ctl.last!.received.find((m) => m.type === 'finalize')!.payload, { checkpoint_name: checkpoint.name, status: 'failure', source: 'agent' });

  assert.deepEqual(await checkpointStatus({ checkpoint: checkpoint.name }, ctx), {
    exitCode: 0,
    stdout: `name:   ${checkpoint.name}\nstate:  reset\nresult: failure\n`,
    stderr: '',
  });
  const json = await checkpointStatus({ checkpoint: checkpoint.name, json: true }, ctx);
  assert.equal(JSON.parse(json.stdout).state, 'reset');
  assert.deepEqual(await checkpointStatus({ checkpoint: 'job-x' }, ctx), { exitCode: 1, stdout: '', stderr: 'Error: Checkpoint not found\n' });

  ctl.answers.create = (m) => ({ id: m.id, status: 'error', data: null, error: { code: 409, detail: "Active checkpoint 'job-1' already exists for runner 'runner-1'" } });
  assert.deepEqual(await createCheckpoint({ jobId: '43' }, ctx), {
    exitCode: 1,
    stdout: '',
    stderr: "Error: Active checkpoint 'job-1' already exists for runner 'runner-1'\n",
  });
  // e2epool's plain-string error form is understood too.
  ctl.answers.finalize = (m) => ({ id: m.id, status: 'error', error: 'IPC handler error' });
  assert.equal((await finalizeCheckpoint({ checkpoint: checkpoint.name, status: 'success' }, ctx)).stderr, 'Error: IPC handler error\n');

  const status = await agentStatus({}, ctx);
  assert.equal(status.exitCode, 0);
  assert.ok(status.stdout.includes('connected:  yes\n'));
  assert.match(status.stdout, /session: {4}epoch \d+ on ctl-a/);
  assert.ok(status.stdout.includes('commands:   readiness, reset\n'));
});

test('create waits for the controller beyond the finalize/status deadline', async () => {
  const ctl = await controller();
  const cfg = config({ controllerUrl: ctl.url, requestTimeout: 0.2, createTimeout: 3 });
  const d = new AgentDaemon({ config: cfg, logger });
  daemons.push(d);
  await d.start();
  await ctl.waitForSessions(1);
  ctl.answers.create = async (m) => (await sleep(600), { id: m.id, status: 'ok', data: checkpoint, error: null });
  ctl.answers.finalize = async (m) => (await sleep(600), { id: m.id, status: 'ok', data: { detail: 'late' }, error: null });
  const ctx = { socket: cfg.socketPath };
  assert.equal((await createCheckpoint({ jobId: '42' }, ctx)).exitCode, 0);
  assert.deepEqual(await finalizeCheckpoint({ checkpoint: checkpoint.name, status: 'success' }, ctx), {
    exitCode: 1,
    stdout: '',
    stderr: 'Error: Controller did not respond in time\n',
  });
});

test('offline: the CLI hears Not connected to controller (exit 1), the agent status still answers', async () => {
  const cfg = config({ controllerUrl: 'ws://127.0.0.1:9/ws/agent' });
  const d = new AgentDaemon({ config: cfg, logger });
  daemons.push(d);
  await d.start();
  assert.deepEqual(await createCheckpoint({ jobId: '1' }, { socket: cfg.socketPath }), {
    exitCode: 1,
    stdout: '',
    stderr: 'Error: Not connected to controller\n',
  });
  const raw = await sendIpcRequest(cfg.socketPath, { id: 'abc', type: 'status', payload: { checkpoint_name: 'x' } }, { timeoutMs: 2000 });
  assert.deepEqual(raw, { id: 'abc', status: 'error', data: null, error: { code: 503, detail: 'Not connected to controller' } });
  assert.ok((await agentStatus({}, { socket: cfg.socketPath })).stdout.includes('connected:  no\n'));
});

test('no agent: socket missing → exit 2; stale socket → exit 2 connection refused', async () => {
  const dir = socketDir();
  assert.deepEqual(await createCheckpoint({ jobId: '1' }, { socket: path.join(dir, 'none.sock') }), {
    exitCode: 2,
    stdout: '',
    stderr: `Error: agent is not running (socket not found: ${path.join(dir, 'none.sock')})\n`,
  });
  const stale = path.join(dir, 'stale.sock');
  // A socket file nobody listens on (left behind by a killed agent).
  execFileSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`]);
  assert.deepEqual(await finalizeCheckpoint({ checkpoint: 'c', status: 'success' }, { socket: stale }), {
    exitCode: 2,
    stdout: '',
    stderr: `Error: agent is not running (connection refused on ${stale})\n`,
  });
  // The agent replaces a stale socket file at start.
  const d = new AgentDaemon({ config: config({ socketPath: stale }), logger });
  daemons.push(d);
  await d.start();
  assert.equal((await agentStatus({}, { socket: stale })).exitCode, 0);
  // ...but never a live agent's socket.
  const second = new AgentDaemon({ config: config({ socketPath: stale }), logger });
  await assert.rejects(second.start(), /another agent is already listening/);
});

test('socket is 0660 with the configured group', async () => {
  const cfg = config({ socketGroup: 'daemon' });
  const d = new AgentDaemon({ config: cfg, logger });
  daemons.push(d);
  await d.start();
  const st = statSync(cfg.socketPath);
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal(st.gid, 1);
});

test('permission denied on the socket → exit 1 naming the group (CLI run as nobody)', async () => {
  const cfg = config({ socketGroup: 'daemon' });
  const d = new AgentDaemon({ config: cfg, logger });
  daemons.push(d);
  await d.start();
  const { chmodSync } = await import('node:fs');
  chmodSync(path.dirname(cfg.socketPath), 0o755);
  const script = path.join(path.dirname(cfg.socketPath), 'cli.mjs');
  const cli = new URL('../../agent/cli.ts', import.meta.url).pathname;
  writeFileSync(
    script,
    `const { createCheckpoint } = await import(${JSON.stringify(cli)});\n` +
      `const o = await createCheckpoint({ jobId: '1' }, { socket: ${JSON.stringify(cfg.socketPath)} });\n` +
      'process.stdout.write(JSON.stringify(o));\n',
  );
  chmodSync(script, 0o644);
  const out = execFileSync(process.execPath, ['--import', 'tsx', script], {
    uid: 65534,
    gid: 65534,
    cwd: process.cwd(),
    env: { PATH: process.env.PATH, HOME: '/tmp' },
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out), {
    exitCode: 1,
    stdout: '',
    stderr: `Error: permission denied on ${cfg.socketPath}: add this user to group daemon\n`,
  });
});

test('malformed and oversize IPC frames get an error reply and the agent keeps serving', async () => {
  const cfg = config();
  const d = new AgentDaemon({ config: cfg, logger });
  daemons.push(d);
  await d.start();
  const exchange = (bytes: Buffer, halfClose = false) =>
    new Promise<unknown>((resolve, reject) => {
      const s = net.connect(cfg.socketPath);
      const dec = new FrameDecoder();
      s.on('connect', () => (halfClose ? s.end(bytes) : s.write(bytes)));
      s.on('data', (c) => {
        const f = dec.push(c)[0];
        if (f) resolve(f.ok ? f.value : f.error);
      });
      s.on('error', reject);
      s.on('close', () => resolve('closed'));
    });
  const header = Buffer.alloc(4);
  header.writeUInt32BE(MAX_FRAME_BYTES + 1);
  assert.deepEqual(await exchange(header), { id: '', status: 'error', data: null, error: { code: 400, detail: `IPC message of ${MAX_FRAME_BYTES + 1} bytes exceeds maximum of ${MAX_FRAME_BYTES} bytes` } });
  const junk = Buffer.from('{not json');
  const junkHeader = Buffer.alloc(4);
  junkHeader.writeUInt32BE(junk.length);
  assert.deepEqual(await exchange(Buffer.concat([junkHeader, junk])), { id: '', status: 'error', data: null, error: { code: 400, detail: 'IPC message is not valid JSON' } });
  assert.equal(((await exchange(encodeFrame([1, 2]))) as any).error.code, 400);
  assert.deepEqual(((await exchange(encodeFrame({ id: 'q', type: 'drop_tables' }))) as any).error, { code: 400, detail: 'Unknown request type: drop_tables' });
  // A client that shuts down its write side after the request still gets the answer.
  assert.equal(((await exchange(encodeFrame({ id: 'h', type: 'agent_status' }), true)) as any).status, 'ok');
  assert.equal((await agentStatus({}, { socket: cfg.socketPath })).exitCode, 0);
});

test('reconnects after the controller restarts; a request in flight gets Connection lost', async () => {
  const ctl = await controller();
  const cfg = config({ controllerUrl: ctl.url });
  const d = new AgentDaemon({ config: cfg, logger });
  daemons.push(d);
  await d.start();
  await ctl.waitForSessions(1);
  ctl.answers.finalize = () => null; // never answers
  const pending = finalizeCheckpoint({ checkpoint: 'c', status: 'success' }, { socket: cfg.socketPath });
  await eventually('the finalize request at the controller', () => ctl.last!.received.some((m) => m.type === 'finalize'), { timeoutMs: 3000, intervalMs: 10 });
  const port = ctl.port;
  await ctl.stop();
  assert.equal((await pending).stderr, 'Error: Connection lost\n');
  await sleep(200);
  await ctl.start(port);
  await ctl.waitForSessions(2, 5000);
  await eventually('the agent to be connected again', () => d.connection.connected, { timeoutMs: 3000, intervalMs: 10 });
  ctl.answers.create = (m) => ({ id: m.id, status: 'ok', data: checkpoint, error: null });
  assert.equal((await createCheckpoint({ jobId: '42' }, { socket: cfg.socketPath })).exitCode, 0);
});

test('a controller silent for 3 heartbeats is dropped and the agent reconnects', async () => {
  const ctl = await controller();
  await agent({ controllerUrl: ctl.url, heartbeatInterval: 0.2 });
  const first = await ctl.waitForSessions(1);
  await sleep(900);
  assert.equal(first.closed, false, 'answered heartbeats keep the session');
  assert.ok(first.received.filter((m) => m.type === 'ping').length >= 2, 'app-level pings are sent');
  ctl.respondToPings = false;
  await eventually('the silent session to be dropped', () => first.closed, { timeoutMs: 3000, intervalMs: 10 });
  ctl.respondToPings = true;
  await ctl.waitForSessions(2, 3000);
});

test('close 1001 (controller draining) reconnects at once; other closes back off', async () => {
  const ctl = await controller();
  await agent({ controllerUrl: ctl.url, reconnectInitialDelay: 1, reconnectMaxDelay: 2 });
  const first = await ctl.waitForSessions(1);
  const closedAt = Date.now();
  first.ws.close(1001, 'draining');
  const second = await ctl.waitForSessions(2, 900);
  assert.ok(Date.now() - closedAt < 900);
  second.ws.close(1011, 'oops');
  await sleep(500);
  assert.equal(ctl.sessions.length, 2, 'no reconnect before the backoff delay');
  await ctl.waitForSessions(3, 2000);
});

test('controller asks for declared commands by name; a re-sent command id is not run twice', async () => {
  const ctl = await controller();
  const marker = path.join(socketDir(), 'runs');
  await agent({ controllerUrl: ctl.url, commands: { reset: `echo x >> ${marker}; echo reset-ran`, readiness: 'true' } });
  let session = await ctl.waitForSessions(1);
  const run = { id: 'c1', type: 'run', payload: { command: 'reset', command_id: 'job-1:reset:1', timeout: 5 } };
  const reply = await ctl.sendCommand(session, run);
  assert.equal(reply.status, 'ok');
  assert.equal(reply.error, null);
  assert.equal(reply.data.exit_code, 0);
  assert.equal(reply.data.stdout, 'reset-ran\n');
  assert.equal(typeof reply.data.duration_ms, 'number');
  // After a re-route the controller re-sends the same id on a new session: the stored result comes back.
  session.ws.close(1001);
  session = await ctl.waitForSessions(2);
  const again = await ctl.sendCommand(session, { ...run, id: 'c2' });
  assert.deepEqual(again.data, reply.data);
  const { readFileSync } = await import('node:fs');
  assert.equal(readFileSync(marker, 'utf8'), 'x\n');
  const undeclared = await ctl.sendCommand(session, { id: 'c3', type: 'run', payload: { command: 'cleanup', command_id: 'job-1:cleanup:1', timeout: 5 } });
  assert.deepEqual([undeclared.status, undeclared.error], ['error', { code: 404, detail: 'command_not_declared' }]);
  const exec = await ctl.sendCommand(session, { id: 'c4', type: 'exec', payload: { cmd: `echo y >> ${marker}`, timeout: 5 } });
  assert.equal(exec.status, 'error');
  assert.equal(exec.data.stderr, 'remote commands are disabled on this agent (allow_remote_commands: false)');
  assert.equal(readFileSync(marker, 'utf8'), 'x\n');
});

test('the token never appears in agent logs', async () => {
  // Runs last in this file: every test above logged through the same capture.
  await Promise.all(daemons.map((d) => d.stop()));
  const text = logs.join('');
  assert.ok(text.includes('connected to controller'), 'logs were captured');
  assert.equal(text.includes(TOKEN), false);
});
