// Two controller instances on one PostgreSQL and one Temporal dev server, with real agent processes
// connected to each. Checkpoint workflows run on instance A's worker only; agent commands for a
// runner whose socket lives on instance B must be routed to B's own task queue, and back to A
// after B drains and the agent reconnects there.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { loadConfig } from '../../src/config.js';
import { startController, type Controller } from '../../src/controller.js';
import { createLogger } from '../../src/logger.js';
import { startTemporalDevServer } from '../../temporal/dev-server.js';
import { bundleWorkflowsOnce, quietTemporalRuntime } from '../helpers/temporal.js';
import { createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { eventually } from '../helpers/eventually.js';

const repo = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-two-'));
const logger = createLogger({ level: 'silent' });

let temporal: Awaited<ReturnType<typeof startTemporalDevServer>>;
let pgdb: TestDatabase;
let a: Controller;
let b: Controller;
const agents: ChildProcess[] = [];

/** Runs the CLI as a separate process, asynchronously: the controllers live in this process. */
function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin/e2epool.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function startAgent(runnerId: string, controllerUrl: string): { socket: string; marker: string; proc: ChildProcess } {
  const socket = path.join(dir, `${runnerId}.sock`);
  const marker = path.join(dir, `${runnerId}.resets`);
  const config = path.join(dir, `${runnerId}.yml`);
  writeFileSync(
    config,
    [
      `controller_url: ${controllerUrl.replace(/^http/, "ws")}/ws/agent`,
      `runner_id: ${runnerId}`,
      `token: ${runnerId}-token-0123456789abcdef`,
      `socket_path: ${socket}`,
      'socket_group: none',
      'heartbeat_interval: 5',
      'reconnect_max_delay: 2',
      'commands:',
      `  reset: "echo reset >> ${marker}"`,
      '  readiness: "true"',
    ].join('\n'),
  );
  chmodSync(config, 0o600);
  const log = openSync(path.join(dir, `${runnerId}-${agents.length}.log`), 'w');
  const proc = spawn(process.execPath, [path.join(repo, 'bin/e2epool.js'), 'agent', '--config', config], { stdio: ['ignore', log, log] });
  agents.push(proc);
  return { socket, marker, proc };
}

const polling = { timeoutMs: 60_000, intervalMs: 250 };
/** What a wait is for, and where the agents' logs are. */
const inLogs = (what: string) => `${what} (logs in ${dir})`;

async function presenceOf(runnerId: string): Promise<string | null> {
  const r: any = await pgdb.db.execute(sql`select instance_id from agent_presence where runner_id = ${runnerId}`);
  return r.rows[0]?.instance_id ?? null;
}

async function stateOf(name: string): Promise<string> {
  const r: any = await pgdb.db.execute(sql`select state from checkpoints where name = ${name}`);
  return r.rows[0]?.state;
}

beforeAll(async () => {
  quietTemporalRuntime();
  temporal = await startTemporalDevServer({ logger, dbFile: path.join(dir, 'temporal.sqlite'), ui: false });
  pgdb = await createPostgresDatabase('e2epool_two');
  writeFileSync(
    path.join(dir, 'inventory.yml'),
    ['runners:', ...['r1', 'r2'].flatMap((id) => [`  - runner_id: ${id}`, '    backend: bare_metal', `    token: ${id}-token-0123456789abcdef`, '    reset_cmd: "true"', '    reset_mode: in_place'])].join('\n'),
  );
  const config = loadConfig({
    E2EPOOL_DATABASE_URL: pgdb.url,
    E2EPOOL_INVENTORY_PATH: path.join(dir, 'inventory.yml'),
    E2EPOOL_TEMPORAL_ADDRESS: temporal.address,
    E2EPOOL_TEMPORAL_REGISTER_SEARCH_ATTRIBUTES: 'true',
    E2EPOOL_TASK_QUEUE: 'two-controllers',
    E2EPOOL_PORT: '0',
    E2EPOOL_HOST: '127.0.0.1',
    E2EPOOL_LOG_LEVEL: 'silent',
    E2EPOOL_SHUTDOWN_GRACE_SECONDS: '2',
    E2EPOOL_READINESS_STABLE_SECONDS: '0',
    E2EPOOL_FINALIZE_COOLDOWN_SECONDS: '0',
  });
  const workflowBundle = await bundleWorkflowsOnce();
  a = await startController(config, { logger, workflowBundle });
  b = await startController(config, { logger, checkpointWorker: false });
});

afterAll(async () => {
  for (const p of agents) p.kill('SIGTERM');
  await a?.stop();
  await b?.stop().catch(() => undefined);
  await pgdb?.drop();
  await temporal?.stop();
});

describe('two controller instances', () => {
  it('routes agent commands to the instance that holds the socket, and follows the agent when it moves', async () => {
    const r1 = startAgent('r1', b.url);
    const r2 = startAgent('r2', a.url);
    await eventually(inLogs('r1 on B'), async () => (await presenceOf('r1')) === b.instanceId, polling);
    await eventually(inLogs('r2 on A'), async () => (await presenceOf('r2')) === a.instanceId, polling);

    // r1: workflow runs on A's worker, its reset must reach the agent connected to B.
    const created = await cli(['create', '--job-id', '501', '--socket', r1.socket]);
    assert.equal(created.status, 0, created.stderr);
    const name = created.stdout.trim();
    const fin = await cli(['finalize', '--checkpoint', name, '--status', 'failure', '--socket', r1.socket]);
    assert.equal(fin.status, 0, fin.stderr);
    assert.equal(fin.stdout.trim(), 'Finalize queued');
    await eventually(inLogs(`${name} reset`), async () => (await stateOf(name)) === 'reset', polling);
    assert.equal(readFileSync(r1.marker, 'utf8').trim(), 'reset', 'the reset ran once, on the host behind B');

    // r2 in parallel: its agent is on A itself.
    const created2 = await cli(['create', '--job-id', '502', '--socket', r2.socket]);
    assert.equal(created2.status, 0, created2.stderr);
    const name2 = created2.stdout.trim();
    assert.equal((await cli(['finalize', '--checkpoint', name2, '--status', 'canceled', '--socket', r2.socket])).status, 0);
    await eventually(inLogs(`${name2} reset`), async () => (await stateOf(name2)) === 'reset', polling);

    // B drains: r1's agent is closed with 1001, reconnects (to A, the only address it knows
    // after we restart it there) and the next checkpoint's reset goes through A.
    await b.stop();
    await eventually(inLogs('r1 presence gone'), async () => (await presenceOf('r1')) === null || (await presenceOf('r1')) !== b.instanceId, polling);
    r1.proc.kill('SIGTERM');
    await eventually(inLogs('r1 agent exit'), async () => r1.proc.exitCode !== null || !existsSync(r1.socket), polling);
    const moved = startAgent('r1', a.url);
    await eventually(inLogs('r1 on A'), async () => (await presenceOf('r1')) === a.instanceId, polling);
    const created3 = await cli(['create', '--job-id', '503', '--socket', moved.socket]);
    assert.equal(created3.status, 0, created3.stderr);
    const name3 = created3.stdout.trim();
    assert.equal((await cli(['finalize', '--checkpoint', name3, '--status', 'failure', '--socket', moved.socket])).status, 0);
    await eventually(inLogs(`${name3} reset`), async () => (await stateOf(name3)) === 'reset', polling);
    assert.deepEqual(readFileSync(moved.marker, 'utf8').trim().split('\n'), ['reset', 'reset']);
  });
});
