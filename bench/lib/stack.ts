// The pieces a bench or chaos run measures, each started as the operator would start it and each in
// its own process group: a fresh database on the local PostgreSQL, a fresh Temporal dev server
// through `e2epool temporal-dev` (SQLite file), and one or more `e2epool serve` instances. Every
// piece can be stopped, killed and started again on the same port and files (chaos needs that).
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { stringify } from 'yaml';
import { spawnInOwnGroup, type GroupChild } from '../../temporal/process-group.js';
import { findFreePort } from '../../temporal/free-port.js';
import { repoRoot } from '../../temporal/tool-paths.js';

export const POSTGRES_ADMIN_URL = process.env.E2EPOOL_BENCH_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const CLI = path.join(repoRoot, 'bin', 'e2epool.js');

export interface RunnerEntry {
  runner_id: string;
  token: string;
  backend: 'bare_metal' | 'proxmox';
  [key: string]: unknown;
}

export function newToken(): string {
  return randomBytes(24).toString('hex');
}

export function writeInventory(file: string, runners: RunnerEntry[]): void {
  writeFileSync(file, stringify({ runners }), { mode: 0o600 });
}

export interface BenchDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function createBenchDatabase(prefix: string): Promise<BenchDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is needed at ${POSTGRES_ADMIN_URL} (set E2EPOOL_BENCH_POSTGRES_URL): ${(err as Error).message}`, { cause: err });
  }
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = POSTGRES_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    name,
    drop: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** A child process we started, restartable on the same arguments. */
export class ManagedProcess {
  private group: GroupChild | undefined;
  private log: WriteStream;
  private output = '';
  starts = 0;

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    logFile: string,
    private readonly readyPattern: RegExp,
    /** Arguments of every start after the first (e.g. without --fresh). */
    private readonly restartArgs: string[] = args,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
  }

  get pid(): number | undefined {
    return this.group && this.group.pgid > 0 ? this.group.pgid : undefined;
  }

  get running(): boolean {
    return this.group !== undefined;
  }

  /** Starts it and waits for its ready line on stdout. */
  async start(timeoutMs = 180_000): Promise<string> {
    this.output = '';
    this.starts += 1;
    const group = spawnInOwnGroup(process.execPath, [CLI, ...(this.starts === 1 ? this.args : this.restartArgs)], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot });
    this.group = group;
    const onData = (chunk: Buffer) => {
      this.log.write(chunk);
      if (this.output.length < 64_000) this.output += chunk.toString();
    };
    group.child.stdout!.on('data', onData);
    group.child.stderr!.on('data', (chunk: Buffer) => this.log.write(chunk));
    const started = Date.now();
    for (;;) {
      const match = this.output.match(this.readyPattern);
      if (match) return match[1] ?? match[0];
      if (this.group !== group) throw new Error(`${this.name} was stopped while starting`);
      const exited = await Promise.race([group.exited.then(() => true), sleep(100).then(() => false)]);
      if (exited) throw new Error(`${this.name} exited while starting; see its log`);
      if (Date.now() - started > timeoutMs) throw new Error(`${this.name} did not start within ${timeoutMs / 1000}s`);
    }
  }

  /** SIGTERM (graceful) or SIGKILL; resolves when its whole process group is gone. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', timeoutMs = 60_000): Promise<void> {
    const group = this.group;
    this.group = undefined;
    if (!group) return;
    if (signal === 'SIGKILL') {
      try {
        process.kill(-group.pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await group.stop({ timeoutMs });
  }

  close(): void {
    this.log.end();
  }
}

export interface StackOptions {
  workDir: string;
  instances: number;
  /** E2EPOOL_* settings (without the prefix) for every serve instance. */
  settings: Record<string, string | number | boolean>;
  inventory: RunnerEntry[];
  dbPrefix?: string;
}

export interface Stack {
  database: BenchDatabase;
  temporal: ManagedProcess;
  temporalAddress: string;
  controllers: ManagedProcess[];
  urls: string[];
  wsUrls: string[];
  adminToken: string;
  inventoryPath: string;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export async function startStack(opts: StackOptions, progress: (line: string) => void = () => undefined): Promise<Stack> {
  mkdirSync(opts.workDir, { recursive: true });
  const database = await createBenchDatabase(opts.dbPrefix ?? 'e2epool_bench');
  const inventoryPath = path.join(opts.workDir, 'inventory.yml');
  writeInventory(inventoryPath, opts.inventory);
  const adminToken = newToken();
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, E2EPOOL_LOG_LEVEL: process.env.E2EPOOL_LOG_LEVEL ?? 'warn' };
  for (const key of Object.keys(baseEnv)) if (key.startsWith('E2EPOOL_') && key !== 'E2EPOOL_LOG_LEVEL' && key !== 'E2EPOOL_TEMPORAL_CLI') delete baseEnv[key];

  const temporalOn = async () => {
    const temporalArgs = ['temporal-dev', '--db-file', path.join(opts.workDir, 'temporal.sqlite'), '--port', String(await findFreePort()), '--ui-port', String(await findFreePort())];
    // A restart (chaos) keeps the SQLite file and the ports: only the first start is fresh.
    return new ManagedProcess('temporal', [...temporalArgs, '--fresh'], baseEnv, path.join(opts.workDir, 'temporal.log'), /Frontend:\s+(\S+)/, temporalArgs);
  };
  let temporal = await temporalOn();
  const controllers: ManagedProcess[] = [];
  const stop = async () => {
    await Promise.all(controllers.map((c) => c.stop('SIGTERM', 30_000)));
    await temporal.stop('SIGTERM', 20_000);
    for (const p of [temporal, ...controllers]) p.close();
    await database.drop().catch(() => undefined);
  };
  try {
    progress('starting the Temporal dev server');
    // A free port can be taken by another process (a parallel test) before the server binds it:
    // then it exits at once, and another pair of ports is tried.
    let temporalAddress: string | undefined;
    for (let attempt = 1; temporalAddress === undefined; attempt++) {
      try {
        temporalAddress = await temporal.start();
      } catch (err) {
        if (attempt >= 3 || !/exited while starting/.test((err as Error).message)) throw err;
        progress(`the Temporal dev server exited while starting (attempt ${attempt}); trying other ports`);
        temporal.close();
        temporal = await temporalOn();
      }
    }
    const env: NodeJS.ProcessEnv = { ...baseEnv };
    const settings: Record<string, string | number | boolean> = {
      DATABASE_URL: database.url,
      INVENTORY_PATH: inventoryPath,
      HOST: '127.0.0.1',
      TEMPORAL_ADDRESS: temporalAddress,
      ADMIN_TOKEN: adminToken,
      TOKEN_PEPPER: newToken(),
      ...opts.settings,
    };
    for (const [key, value] of Object.entries(settings)) env[`E2EPOOL_${key}`] = String(value);
    const ports = await Promise.all(Array.from({ length: opts.instances }, () => findFreePort()));
    for (const [i, port] of ports.entries()) {
      controllers.push(new ManagedProcess(`controller-${i + 1}`, ['serve', '--port', String(port)], env, path.join(opts.workDir, `controller-${i + 1}.log`), /listening on (\S+)/));
    }
    progress(`starting ${opts.instances} controller instance(s)`);
    // One at a time: the first runs the migrations and registers the schedules.
    const urls: string[] = [];
    for (const c of controllers) urls.push(await c.start());
    return {
      database,
      temporal,
      temporalAddress,
      controllers,
      urls,
      wsUrls: urls.map((u) => `${u.replace(/^http/, 'ws')}/ws/agent`),
      adminToken,
      inventoryPath,
      env,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
