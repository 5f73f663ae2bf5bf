// `e2epool create` while the controller takes its time: a real agent daemon (against the WebSocket
// controller double) whose create answer comes late. The CLI says on stderr how long it has waited,
// every 10 s, and stdout stays the checkpoint name alone, which CI captures.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, test } from 'vitest';
import { createCheckpoint } from '../../agent/cli.js';
import type { AgentConfig } from '../../agent/config.js';
import { AgentDaemon } from '../../agent/daemon.js';
import { createAgentLogger } from '../../agent/log.js';
import { FakeController } from '../helpers/agent-fake-controller.js';

const TOKEN = 'tok-progress-8f3a9c1d2e';
const repo = path.resolve(import.meta.dirname, '../..');
const logger = createAgentLogger({ level: 'silent' });
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

async function slowController(delayMs: number): Promise<{ socketPath: string }> {
  const ctl = new FakeController('runner-1', TOKEN);
  await ctl.start();
  stops.push(() => ctl.stop());
  ctl.answers.create = async (m) => {
    await new Promise((r) => setTimeout(r, delayMs));
    return { id: m.id, status: 'ok', data: { name: `job-${m.payload.job_id}-1700000000-abcdef12`, state: 'created' }, error: null };
  };
  const socketPath = path.join(mkdtempSync(path.join(tmpdir(), 'e2epool-progress-')), 'agent.sock');
  const config: AgentConfig = {
    controllerUrl: ctl.url,
    runnerId: 'runner-1',
    token: TOKEN,
    socketPath,
    socketGroup: null,
    socketMode: 0o660,
    reconnectMaxDelay: 0.4,
    reconnectInitialDelay: 0.05,
    heartbeatInterval: 5,
    createTimeout: 30,
    requestTimeout: 5,
    shutdownGraceSeconds: 1,
    killGraceSeconds: 0.2,
    maxOutputBytes: 65536,
    allowRemoteCommands: false,
    allowInsecureTransport: true,
    sendTokenInQuery: false,
    caFile: null,
    commandEnv: {},
    commands: { reset: 'true', readiness: 'true' },
    logLevel: 'error',
  };
  const daemon = new AgentDaemon({ config, logger, bootId: 'boot-progress' });
  await daemon.start();
  stops.push(() => daemon.stop());
  await ctl.waitForSessions(1);
  return { socketPath };
}

test('the create function reports how long it has waited, and stops when the answer comes', async () => {
  const { socketPath } = await slowController(2_500);
  const lines: string[] = [];
  const outcome = await createCheckpoint({ jobId: '4711' }, { socket: socketPath, progress: (l) => lines.push(l), progressIntervalMs: 1_000 });
  assert.deepEqual(outcome, { exitCode: 0, stdout: 'job-4711-1700000000-abcdef12\n', stderr: '' });
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0]!, /^e2epool create: waiting for the checkpoint of job 4711 \(runner claim and snapshot\), 1 s …$/);
  assert.match(lines[1]!, /, 2 s …$/);
  await new Promise((r) => setTimeout(r, 1_200));
  assert.equal(lines.length, 2, 'no line after the answer');
});

test('e2epool create prints progress on stderr every 10 s; stdout is the name alone', { timeout: 60_000 }, async () => {
  const { socketPath } = await slowController(11_000);
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin/e2epool.js'), 'create', '--job-id', '4712', '--socket', socketPath], {
      env: { PATH: process.env.PATH, E2EPOOL_AGENT_CONFIG: '/nonexistent.yml' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'job-4712-1700000000-abcdef12\n');
  assert.match(result.stderr, /^e2epool create: waiting for the checkpoint of job 4712 \(runner claim and snapshot\), 10 s …\n$/);
});
