// Runs `temporal server start-dev` (the Temporal CLI from .tools/venv) as a child in its own process
// group, waits until the frontend answers, and registers our search attributes: the CLI's
// --search-attribute flag only applies when a namespace is first created, so a persistent SQLite
// file from an older version would otherwise miss new ones.
import { Connection } from '@temporalio/client';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../src/logger.js';
import { E2epoolError } from '../src/domain/errors.js';
import { findFreePort } from './free-port.js';
import { spawnInOwnGroup, type GroupChild } from './process-group.js';
import { registerSearchAttributes } from './search-attributes-admin.js';
import { requireTemporalCli } from './tool-paths.js';

export interface TemporalDevServerOptions {
  logger: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  /** SQLite file that keeps state across runs; unset keeps everything in memory. */
  dbFile?: string;
  /** Frontend gRPC port; unset picks a free one. */
  port?: number;
  /** Web UI port; unset picks a free one. Ignored with `ui: false`. */
  uiPort?: number;
  ui?: boolean;
  ip?: string;
  namespace?: string;
  /** Defaults to the project's .tools/venv/bin/temporal (or E2EPOOL_TEMPORAL_CLI). */
  cliPath?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
}

export interface TemporalDevServer {
  /** host:port of the frontend. */
  address: string;
  /** Base URL of the Web UI, undefined with `ui: false`. */
  uiUrl: string | undefined;
  namespace: string;
  /** Process group of the server (its pid). */
  pgid: number;
  /** Search attributes this start added (empty when the namespace already had them all). */
  registeredSearchAttributes: string[];
  /** Settles if the server exits, whether stopped or not. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops the whole process group; resolves when none of it is left. Idempotent. */
  stop(): Promise<void>;
}

const OUTPUT_TAIL_LINES = 40;

/** Removes a dev-server SQLite file and its journal files (for --fresh and `dev` without --keep-state). */
export function deleteTemporalDatabase(dbFile: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(dbFile + suffix, { force: true });
}

export async function startTemporalDevServer(opts: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const attempts = opts.port === undefined || (opts.ui !== false && opts.uiPort === undefined) ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      // Ports we picked can be taken between the probe and the bind by a parallel test; pick again.
      if (!(err instanceof PortInUseError) || attempt >= attempts) throw err instanceof PortInUseError ? err.cause : err;
      opts.logger.debug({ attempt }, 'temporal dev server: port taken, retrying with new ports');
    }
  }
}

class PortInUseError extends Error {
  constructor(override readonly cause: E2epoolError) {
    super(cause.message);
  }
}

async function startOnce(opts: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const { logger } = opts;
  const cliPath = opts.cliPath ?? requireTemporalCli();
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const ui = opts.ui ?? true;
  const port = opts.port ?? (await findFreePort(ip));
  const uiPort = ui ? (opts.uiPort ?? (await findFreePort(ip))) : undefined;
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;

  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--namespace', namespace];
  args.push('--log-level', opts.logLevel ?? 'warn', '--log-format', 'pretty');
  if (uiPort !== undefined) args.push('--ui-port', String(uiPort), '--ui-disable-news-fetch');
  else args.push('--headless');
  if (opts.dbFile) {
    const dbFile = path.resolve(opts.dbFile);
    mkdirSync(path.dirname(dbFile), { recursive: true });
    args.push('--db-filename', dbFile);
  }

  const address = `${ip}:${port}`;
  const uiUrl = uiPort !== undefined ? `http://${ip}:${uiPort}` : undefined;
  logger.debug({ cliPath, args }, 'starting temporal dev server');
  const group = spawnInOwnGroup(cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const outputTail = captureOutput(group, logger);
  let spawnError: Error | undefined;
  group.child.once('error', (err) => (spawnError = err));

  const failure = (why: string): E2epoolError =>
    new E2epoolError(
      'temporal_unavailable',
      `Temporal dev server (${cliPath}) ${why}.${outputTail.length ? `\nLast output:\n${outputTail.join('\n')}` : ''}`,
    );

  let exitedEarly = false;
  void group.exited.then(() => (exitedEarly = true));
  const stop = async (): Promise<void> => {
    await group.stop({ timeoutMs: opts.stopTimeoutMs ?? 10_000 });
  };

  try {
    const deadline = Date.now() + startTimeoutMs;
    const connection = await connectWhenReady(address, namespace, deadline, () => exitedEarly || spawnError !== undefined);
    if (!connection) {
      if (spawnError) throw failure(`could not be started: ${spawnError.message}`);
      if (exitedEarly) {
        const err = failure('exited during start');
        if (outputTail.some((line) => /address already in use/i.test(line))) throw new PortInUseError(err);
        throw err;
      }
      throw failure(`did not answer on ${address} within ${startTimeoutMs} ms`);
    }
    let registeredSearchAttributes: string[];
    try {
      registeredSearchAttributes = await registerSearchAttributes(connection, namespace);
    } finally {
      await connection.close();
    }
    if (uiUrl && !(await waitForUi(uiUrl, deadline, () => exitedEarly))) {
      throw failure(`Web UI did not answer on ${uiUrl} within ${startTimeoutMs} ms`);
    }
    logger.debug({ address, uiUrl, namespace, pgid: group.pgid, registeredSearchAttributes }, 'temporal dev server ready');
    let stopped = false;
    void group.exited.then(({ code, signal }) => {
      if (!stopped) logger.error({ code, signal, output: outputTail.join('\n') }, 'temporal dev server exited unexpectedly');
    });
    return {
      address,
      uiUrl,
      namespace,
      pgid: group.pgid,
      registeredSearchAttributes,
      exited: group.exited,
      stop: async () => {
        stopped = true;
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

// Connects once the frontend answers and the namespace exists; undefined when `gaveUp` or the deadline hits.
async function connectWhenReady(address: string, namespace: string, deadline: number, gaveUp: () => boolean): Promise<Connection | undefined> {
  while (Date.now() < deadline && !gaveUp()) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: 1_000 });
      await connection.workflowService.describeNamespace({ namespace });
      return connection;
    } catch {
      await connection?.close().catch(() => undefined);
      await sleep(100);
    }
  }
  return undefined;
}

async function waitForUi(uiUrl: string, deadline: number, gaveUp: () => boolean): Promise<boolean> {
  while (Date.now() < deadline && !gaveUp()) {
    try {
      const response = await fetch(uiUrl, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.ok) return true;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return false;
}

// Forwards the server's output to debug logs and keeps the last lines for error messages.
function captureOutput(group: GroupChild, logger: TemporalDevServerOptions['logger']): string[] {
  const tail: string[] = [];
  for (const [stream, readable] of [['stdout', group.child.stdout], ['stderr', group.child.stderr]] as const) {
    if (!readable) continue;
    readable.setEncoding('utf8');
    let partial = '';
    readable.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
        logger.debug({ stream }, `temporal: ${line}`);
      }
    });
  }
  return tail;
}
