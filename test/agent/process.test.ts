// `e2epool agent` as a real process (node bin/e2epool.js agent --config ...) and the CLI binary:
// start-up errors, socket mode, SIGTERM drain, exit codes, and no token in the output.
import { test, afterAll } from 'vitest';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCheckpoint } from '../../agent/cli.js';
import { FakeController } from '../helpers/agent-fake-controller.js';
import { eventually } from '../helpers/eventually.js';

const TOKEN = 'tok-SECRET-8f3a9c';
const BIN = new URL('../../bin/e2epool.js', import.meta.url).pathname;
const controllers: FakeController[] = [];
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(controllers.map((c) => c.stop()));
});

function writeConfig(lines: string[]): { file: string; socket: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-agent-proc-'));
  const socket = path.join(dir, 'agent.sock');
  const file = path.join(dir, 'agent.yml');
  writeFileSync(file, [`socket_path: ${socket}`, ...lines].join('\n') + '\n', { mode: 0o600 });
  return { file, socket };
}

/** Runs the e2epool binary to completion with a clean environment. */
function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as any).code as number) : 0, stdout, stderr });
    });
  });
}

function startAgent(file: string): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [BIN, 'agent', '--config', file], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  return { child, output: () => out };
}

test('agent refuses to start without runner_id/token, with an unknown group, or with bad values', async () => {
  const noCreds = writeConfig(['socket_group: none']);
  const creds = ['runner_id: r1', `token: ${TOKEN}`];
  // gitlab-runner does not exist on this test host: the default refuses and names the setting.
  const noGroup = writeConfig(creds);
  const bad = writeConfig([...creds, 'socket_group: none', 'heartbeat_interval: often']);
  const [r0, r1, r2] = await Promise.all([
    runCli(['agent', '--config', noCreds.file]),
    runCli(['agent', '--config', noGroup.file]),
    runCli(['agent', '--config', bad.file], { E2EPOOL_RECONNECT_MAX_DELAY: 'x' }),
  ]);
  assert.deepEqual(r0, {
    code: 1,
    stdout: '',
    stderr: 'Error: runner_id and token must be configured\n',
  });
  assert.equal(r1.code, 1);
  assert.match(r1.stderr, /^Error: socket group 'gitlab-runner' does not exist on this host: set socket_group: .* or socket_group: none/);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /heartbeat_interval/);
  assert.match(r2.stderr, /E2EPOOL_RECONNECT_MAX_DELAY/);
  for (const r of [r1, r2]) assert.equal((r.stdout + r.stderr).includes(TOKEN), false);
});

test('CLI binary: usage errors exit 2, --status failed is accepted, no agent exits 2', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-cli-'));
  const socket = path.join(dir, 'none.sock');
  const [bogus, missing, failed, viaEnv] = await Promise.all([
    runCli(['finalize', '--checkpoint', 'c', '--status', 'bogus', '--socket', socket]),
    runCli(['create', '--socket', socket]),
    runCli(['finalize', '--checkpoint', 'c', '--status', 'failed', '--socket', socket]),
    // E2EPOOL_SOCKET_PATH is used when --socket is absent.
    runCli(['status', '--checkpoint', 'c'], { E2EPOOL_SOCKET_PATH: socket, E2EPOOL_AGENT_CONFIG: '/nonexistent.yml' }),
  ]);
  assert.equal(bogus.code, 2);
  assert.match(bogus.stderr, /Choices: "success", "failure", "canceled", "failed"/);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /job-id/);
  // The message names the socket it tried, from --socket or E2EPOOL_SOCKET_PATH.
  assert.deepEqual(failed, { code: 2, stdout: '', stderr: `Error: agent is not running (socket not found: ${socket})\n` });
  assert.deepEqual(viaEnv, { code: 2, stdout: '', stderr: `Error: agent is not running (socket not found: ${socket})\n` });
});

test('SIGTERM: stops accepting, lets the in-flight create finish, closes the WS, removes the socket, exits 0', async () => {
  const ctl = new FakeController('r1', TOKEN);
  await ctl.start();
  controllers.push(ctl);
  const { file, socket } = writeConfig([
    `controller_url: ${ctl.url}`,
    'runner_id: r1',
    `token: ${TOKEN}`,
    'socket_group: daemon',
    'heartbeat_interval: 1',
    'shutdown_grace_seconds: 5',
    'commands:',
    '  readiness: "true"',
  ]);
  const { child, output } = startAgent(file);
  await eventually(() => `the agent socket ${socket}:\n${output()}`, () => existsSync(socket), { timeoutMs: 8000, intervalMs: 20 });
  const session = await ctl.waitForSessions(1, 8000);
  const st = statSync(socket);
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal(st.gid, 1);
  assert.equal(statSync(file).mode & 0o777, 0o600);

  ctl.answers.create = async (m) => {
    await sleep(800);
    return { id: m.id, status: 'ok', data: { name: 'job-7-1700000000-0123abcd', state: 'created' }, error: null };
  };
  const inFlight = createCheckpoint({ jobId: '7' }, { socket });
  await eventually('the create request at the controller', () => session.received.some((m) => m.type === 'create'), { timeoutMs: 8000, intervalMs: 20 });
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  // New requests are refused at once: the socket is gone.
  await eventually('the socket to be removed', () => !existsSync(socket), { timeoutMs: 2000, intervalMs: 20 });
  assert.equal((await createCheckpoint({ jobId: '8' }, { socket })).exitCode, 2);
  // The request in flight still gets the controller's answer.
  assert.deepEqual(await inFlight, { exitCode: 0, stdout: 'job-7-1700000000-0123abcd\n', stderr: '' });
  const [code] = await exited;
  assert.equal(code, 0);
  assert.equal(session.closeCode, 1000);
  assert.equal(existsSync(socket), false);
  const logs = output();
  assert.match(logs, /agent stopped/);
  assert.equal(logs.includes(TOKEN), false, 'token never logged');
});
