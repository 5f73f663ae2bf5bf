import { test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runShellCommand } from '../../agent/command-runner.js';
import { CommandHandler, REMOTE_COMMANDS_DISABLED } from '../../agent/command-handler.js';
import { CommandDedupeStore } from '../../agent/command-dedupe.js';
import { createAgentLogger } from '../../agent/log.js';

const opts = { timeoutSeconds: 10, maxOutputBytes: 65536, killGraceSeconds: 0.2 };
const silent = createAgentLogger({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A process counts as alive unless it is gone or a zombie (PID 1 here may not reap orphans). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'e2epool-agent-cmd-'));
}

test('runs through /bin/sh -c and reports exit code and output', async () => {
  const ok = await runShellCommand('echo hello; echo oops >&2', opts);
  assert.equal(ok.exitCode, 0);
  assert.equal(ok.stdout, 'hello\n');
  assert.equal(ok.stderr, 'oops\n');
  assert.equal(ok.timedOut, false);
  assert.ok(ok.durationMs >= 0);
  assert.equal((await runShellCommand('exit 42', opts)).exitCode, 42);
  const empty = await runShellCommand('   ', opts);
  assert.deepEqual([empty.exitCode, empty.stderr], [-1, 'Empty command']);
  assert.equal((await runShellCommand("printf '\\303\\251'", opts)).stdout, 'é');
});

test('a timeout kills the whole process group, grandchildren that ignore SIGTERM included', async () => {
  const dir = tmp();
  const pids = path.join(dir, 'pids');
  const cmd = `sleep 30 & echo $! > ${pids}; (trap '' TERM; while :; do sleep 0.05; done) & echo $! >> ${pids}; wait`;
  const started = Date.now();
  const result = await runShellCommand(cmd, { ...opts, timeoutSeconds: 0.4 });
  assert.ok(Date.now() - started < 2000);
  assert.equal(result.exitCode, -1);
  assert.equal(result.stderr, 'Command timed out after 0.4s');
  assert.equal(result.timedOut, true);
  const children = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
  assert.equal(children.length, 2);
  // SIGTERM at once, SIGKILL after the 0.2 s grace for the one that traps TERM.
  const deadline = Date.now() + 3000;
  while (children.some(alive) && Date.now() < deadline) await sleep(50);
  assert.deepEqual(children.filter(alive), [], 'no process of the group survives');
});

test('output is capped while reading: a flood finishes with only the cap kept', async () => {
  const big = await runShellCommand("head -c 5000000 /dev/zero | tr '\\0' a", { ...opts, maxOutputBytes: 1000 });
  assert.equal(big.exitCode, 0);
  assert.equal(big.stdout.length, 1000);
  const endless = await runShellCommand('yes', { ...opts, maxOutputBytes: 2048, timeoutSeconds: 0.3 });
  assert.equal(endless.exitCode, -1);
  assert.equal(endless.stdout.length, 2048);
  assert.ok(endless.stdout.startsWith('y\ny\n'));
});

test('a background child holding the pipes does not keep the command running', async () => {
  const started = Date.now();
  const result = await runShellCommand('sleep 3 & echo started', opts);
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, 'started\n');
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});

function handler(extra: Partial<ConstructorParameters<typeof CommandHandler>[0]> = {}) {
  return new CommandHandler({
    commands: {},
    allowRemoteCommands: false,
    maxOutputBytes: 65536,
    killGraceSeconds: 0.2,
    logger: silent,
    ...extra,
  });
}

test('run: a repeated command_id attaches while running and replays after; never runs twice', async () => {
  const dir = tmp();
  const log = path.join(dir, 'runs');
  const h = handler({ commands: { reset: `echo ran >> ${log}; sleep 0.3; echo done` } });
  const msg = (id: string) => ({ id, type: 'run', payload: { command: 'reset', command_id: 'wf1:reset:1', timeout: 5 } });
  const [a, b] = await Promise.all([h.handle(msg('m1')), sleep(50).then(() => h.handle(msg('m2')))]);
  assert.equal(a.id, 'm1');
  assert.equal(b.id, 'm2');
  assert.equal(a.status, 'ok');
  assert.deepEqual(a.data, b.data);
  assert.equal(a.error, null);
  assert.equal((a.data as any).stdout, 'done\n');
  const c = await h.handle(msg('m3'));
  assert.deepEqual(c.data, a.data);
  assert.equal(readFileSync(log, 'utf8'), 'ran\n', 'ran exactly once');
  // A new attempt id is a new command.
  await h.handle({ id: 'm4', type: 'run', payload: { command: 'reset', command_id: 'wf1:reset:2', timeout: 5 } });
  assert.equal(readFileSync(log, 'utf8'), 'ran\nran\n');
});

test('run: ids are forgotten after the memory window', async () => {
  const dir = tmp();
  const log = path.join(dir, 'runs');
  const h = handler({ commands: { reset: `echo ran >> ${log}` }, commandMemoryMs: 100 });
  const msg = { id: 'x', type: 'run', payload: { command: 'reset', command_id: 'wf:reset:1', timeout: 5 } };
  await h.handle(msg);
  await h.handle(msg);
  assert.equal(readFileSync(log, 'utf8'), 'ran\n');
  await sleep(150);
  await h.handle(msg);
  assert.equal(readFileSync(log, 'utf8'), 'ran\nran\n');
});

test('run: undeclared command → 404 command_not_declared; reused id for another command → 409', async () => {
  const h = handler({ commands: { readiness: 'true', cleanup: 'exit 3' } });
  const missing = await h.handle({ id: 'a', type: 'run', payload: { command: 'reset', command_id: 'w:reset:1', timeout: 5 } });
  assert.equal(missing.status, 'error');
  assert.deepEqual(missing.error, { code: 404, detail: 'command_not_declared' });
  assert.equal((missing.data as any).exit_code, -1);
  const failed = await h.handle({ id: 'b', type: 'run', payload: { command: 'cleanup', command_id: 'w:cleanup:1', timeout: 5 } });
  assert.equal(failed.status, 'error');
  assert.equal((failed.data as any).exit_code, 3);
  const reused = await h.handle({ id: 'c', type: 'run', payload: { command: 'readiness', command_id: 'w:cleanup:1', timeout: 5 } });
  assert.equal((reused.error as any).code, 409);
  const bad = await h.handle({ id: 'd', type: 'run', payload: { command: 'readiness', timeout: -1 } });
  assert.equal((bad.error as any).code, 400);
  assert.deepEqual(h.declaredCommands, ['cleanup', 'readiness']);
});

test('exec: refused unless allow_remote_commands; e2epool reply shape when allowed', async () => {
  const refused = await handler().handle({ id: 'e1', type: 'exec', payload: { cmd: 'echo hi', timeout: 5 } });
  assert.deepEqual(refused, { id: 'e1', status: 'error', data: { exit_code: -1, stdout: '', stderr: REMOTE_COMMANDS_DISABLED } });
  const h = handler({ allowRemoteCommands: true });
  assert.deepEqual(await h.handle({ id: 'e2', type: 'exec', payload: { cmd: 'echo hello', timeout: 5 } }), {
    id: 'e2',
    status: 'ok',
    data: { exit_code: 0, stdout: 'hello\n', stderr: '' },
  });
  const timeout = await h.handle({ id: 'e3', type: 'exec', payload: { cmd: 'sleep 60', timeout: 0.1 } });
  assert.equal(timeout.status, 'error');
  assert.deepEqual(timeout.data, { exit_code: -1, stdout: '', stderr: 'Command timed out after 0.1s' });
  const empty = await h.handle({ id: 'e4', type: 'exec', payload: { cmd: '', timeout: 5 } });
  assert.equal((empty.data as any).stderr, 'Empty command');
});

test('dedupe store: a run that throws is not remembered', async () => {
  const store = new CommandDedupeStore<number>(1000);
  await assert.rejects(store.runOnce('a', 'k', () => Promise.reject(new Error('boom'))));
  assert.deepEqual(await store.runOnce('a', 'k', async () => 7), { result: 7, replayed: false });
  assert.deepEqual(await store.runOnce('a', 'k', async () => 8), { result: 7, replayed: true });
});
