// `e2epool temporal-dev` as a user runs it: prints the frontend and Web UI addresses, keeps state in
// the SQLite file across runs, and on SIGTERM/SIGINT exits 0 leaving no process of the server behind.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { connectTemporal } from '../../temporal/client.js';
import { findFreePort } from '../../temporal/free-port.js';
import { isProcessGroupAlive } from '../../temporal/process-group.js';
import { listMissingSearchAttributes } from '../../temporal/search-attributes-admin.js';
import { repoRoot } from '../../temporal/tool-paths.js';
import { eventually } from '../helpers/eventually.js';
import { childrenOf, processesInGroup } from '../helpers/process-table.js';
import { requireTemporalBinaries } from '../helpers/temporal.js';

interface RunningCommand {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function runCli(args: string[]): RunningCommand {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'e2epool.js'), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, E2EPOOL_LOG_LEVEL: 'warn' },
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

interface Started extends RunningCommand {
  address: string;
  uiUrl: string;
  serverPid: number;
}

async function startCommand(dbFile: string, extra: string[] = []): Promise<Started> {
  const [port, uiPort] = [await findFreePort(), await findFreePort()];
  const run = runCli(['temporal-dev', '--db-file', dbFile, '--port', String(port), '--ui-port', String(uiPort), ...extra]);
  await eventually(
    () => `temporal-dev to come up:\n${run.output()}`,
    () => run.output().includes('Press Ctrl-C to stop.') || run.child.exitCode !== null,
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  assert.ok(run.child.exitCode === null, `temporal-dev did not come up:\n${run.output()}`);
  const address = /Frontend:\s+(\S+)/.exec(run.output())?.[1];
  const uiUrl = /Web UI:\s+(\S+)/.exec(run.output())?.[1];
  assert.equal(address, `127.0.0.1:${port}`);
  assert.equal(uiUrl, `http://127.0.0.1:${uiPort}`);
  const server = childrenOf(run.child.pid!).find((p) => p.command.includes('start-dev'));
  assert.ok(server, 'the temporal server is a child of the command');
  return { ...run, address, uiUrl, serverPid: server.pid };
}

async function stopCommand(run: Started, signal: NodeJS.Signals): Promise<void> {
  run.child.kill(signal);
  const { code } = await run.exited;
  assert.equal(code, 0, run.output());
  assert.match(run.output(), /Temporal dev server stopped/);
  assert.equal(isProcessGroupAlive(run.serverPid), false, `left behind: ${JSON.stringify(processesInGroup(run.serverPid))}`);
  assert.deepEqual(processesInGroup(run.serverPid), []);
}

describe('e2epool temporal-dev', { concurrent: true }, () => {
  let dir: string;
  const running: RunningCommand[] = [];

  beforeAll(() => {
    requireTemporalBinaries(['cli']);
    dir = mkdtempSync(path.join(tmpdir(), 'e2epool-temporal-dev-'));
  });
  afterAll(() => {
    for (const run of running) if (run.child.exitCode === null) run.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves the frontend and Web UI with our search attributes, keeps state in the SQLite file, stops cleanly', async () => {
    const dbFile = path.join(dir, 'state', 'temporal.sqlite');
    const first = await startCommand(dbFile);
    running.push(first);
    // Its own process group, apart from the command's, so a terminal Ctrl-C reaches us first.
    const server = processesInGroup(first.serverPid).find((p) => p.pid === first.serverPid);
    assert.ok(server && server.command.includes(`--db-filename ${dbFile}`));

    const ui = await fetch(first.uiUrl);
    assert.equal(ui.status, 200);
    assert.match(ui.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await ui.text(), /<html/i);

    const workflowId = `persisted-${Date.now()}`;
    const temporal = await connectTemporal({ TEMPORAL_ADDRESS: first.address, TEMPORAL_NAMESPACE: 'default' });
    try {
      assert.deepEqual(await listMissingSearchAttributes(temporal.connection, 'default'), []);
      // No worker needed: a started run stays open and must survive a restart.
      await temporal.client.workflow.start('selfCheckWorkflow', { workflowId, taskQueue: 'nobody-polls', args: [{ message: 'x' }] });
    } finally {
      await temporal.connection.close();
    }
    await stopCommand(first, 'SIGTERM');
    assert.ok(existsSync(dbFile));

    const second = await startCommand(dbFile);
    running.push(second);
    const again = await connectTemporal({ TEMPORAL_ADDRESS: second.address, TEMPORAL_NAMESPACE: 'default' });
    try {
      const description = await again.client.workflow.getHandle(workflowId).describe();
      assert.equal(description.status.name, 'RUNNING');
    } finally {
      await again.connection.close();
    }
    assert.match(second.output(), /Search attributes: all present/);
    await stopCommand(second, 'SIGINT');
  });

  test('--fresh starts from an empty database', async () => {
    const dbFile = path.join(dir, 'fresh.sqlite');
    const first = await startCommand(dbFile);
    running.push(first);
    await stopCommand(first, 'SIGTERM');
    const fresh = await startCommand(dbFile, ['--fresh']);
    running.push(fresh);
    assert.match(fresh.output(), /\(fresh\)/);
    assert.match(fresh.output(), /Search attributes: registered RunnerId, JobId, CheckpointState, Backend, NeedsAttention/);
    await stopCommand(fresh, 'SIGTERM');
  });

  test('rejects a bad port before starting anything', async () => {
    const run = runCli(['temporal-dev', '--port', '70000']);
    const { code } = await run.exited;
    assert.notEqual(code, 0);
    assert.match(run.output(), /--port must be an integer from 0 to 65535, got 70000/);
  });
});
