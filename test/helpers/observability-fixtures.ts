// Rows with known timestamps for the metrics, stats and alert tests, written straight into the read
// model, plus a tiny express server on 127.0.0.1:0 and an HTTP receiver for webhooks.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Router } from 'express';
import { sql } from 'drizzle-orm';
import { errorMiddleware, notFoundHandler } from '../../src/api/errors.js';
import { createLogger } from '../../src/logger.js';
import type { Db } from '../../src/store/database.js';

const END_STATES = new Set(['deleted', 'reset', 'gc_reset', 'create_failed', 'released']);
let seq = 0;

export const at = (base: Date, seconds: number) => new Date(base.getTime() + seconds * 1000);

export async function insertRunner(db: Db, runnerId: string, opts: { backend?: string; active?: boolean; drained?: boolean } = {}): Promise<void> {
  await db.execute(sql`insert into runners (runner_id, backend, token_hash, is_active, drained)
    values (${runnerId}, ${opts.backend ?? 'proxmox'}, ${randomBytes(32).toString('hex')}, ${opts.active ?? true}, ${opts.drained ?? false})`);
}

/** A controller instance (live unless `lastSeen` is old) and agent sessions held by it. */
export async function insertSessions(db: Db, instanceId: string, runnerIds: string[], lastSeen = new Date()): Promise<void> {
  await db.execute(sql`insert into controller_instances (instance_id, last_seen) values (${instanceId}, ${lastSeen})`);
  for (const runnerId of runnerIds) {
    await db.execute(sql`insert into agent_presence (runner_id, instance_id, session_epoch) values (${runnerId}, ${instanceId}, ${++seq})`);
  }
}

export interface CheckpointRow {
  name?: string;
  runnerId: string;
  backend?: 'proxmox' | 'bare_metal';
  state: string;
  createdAt: Date;
  createdDoneAt?: Date;
  finalizeQueuedAt?: Date;
  resetStartedAt?: Date;
  /** Written as a `reset_done` transition. */
  resetDoneAt?: Date;
  readyAt?: Date;
  /** For end states: the end transition is written at this time. */
  endedAt?: Date;
  finalizeStatus?: 'success' | 'failure' | 'canceled';
  finalizeSource?: string;
  holdsClaim?: boolean;
  ttlExtensions?: number;
}

export async function insertCheckpoint(db: Db, row: CheckpointRow): Promise<string> {
  const name = row.name ?? `job-${++seq}-${Date.now()}-${randomBytes(4).toString('hex')}`;
  const ts = (d: Date | undefined) => (d ? d.toISOString() : null);
  await db.execute(sql`insert into checkpoints (name, runner_id, job_id, backend, state, holds_claim, finalize_status, finalize_source,
      finalize_queued_at, ttl_extensions, created_at, updated_at, created_done_at, reset_started_at, ready_at, ended_at)
    values (${name}, ${row.runnerId}, ${String(++seq)}, ${row.backend ?? 'proxmox'}, ${row.state}, ${row.holdsClaim ?? false},
      ${row.finalizeStatus ?? null}, ${row.finalizeSource ?? null}, ${ts(row.finalizeQueuedAt)}::timestamptz, ${row.ttlExtensions ?? 0},
      ${ts(row.createdAt)}::timestamptz, ${ts(row.createdAt)}::timestamptz, ${ts(row.createdDoneAt)}::timestamptz,
      ${ts(row.resetStartedAt)}::timestamptz, ${ts(row.readyAt)}::timestamptz, ${ts(row.endedAt)}::timestamptz)`);
  const transition = async (s: number, to: string, event: string, when: Date) =>
    db.execute(sql`insert into checkpoint_transitions (checkpoint_name, runner_id, seq, to_state, event, at)
      values (${name}, ${row.runnerId}, ${s}, ${to}, ${event}, ${when.toISOString()}::timestamptz)`);
  await transition(0, 'creating', 'claimed', row.createdAt);
  if (row.resetDoneAt) await transition(1, 'awaiting_readiness', 'reset_done', row.resetDoneAt);
  if (END_STATES.has(row.state)) await transition(2, row.state, 'ended', row.endedAt ?? new Date());
  else if (row.state !== 'creating') await transition(2, row.state, 'moved', row.createdDoneAt ?? row.createdAt);
  return name;
}

export interface TestServer {
  base: string;
  close(): Promise<void>;
}

export async function serve(...routers: Router[]): Promise<TestServer> {
  const app = express();
  for (const r of routers) app.use(r);
  app.use(notFoundHandler);
  app.use(errorMiddleware(createLogger({ level: 'silent' })));
  const server = await new Promise<http.Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface Receiver {
  url: string;
  bodies: Array<{ path: string; body: any; raw: string }>;
  /** Status codes to answer, one per request in order; 200 afterwards. */
  failWith: number[];
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', bodies: [], failWith: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      receiver.bodies.push({ path: req.url ?? '', body: JSON.parse(raw), raw });
      res.statusCode = receiver.failWith.shift() ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return receiver;
}

