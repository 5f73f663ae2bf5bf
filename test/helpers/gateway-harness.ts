// Shared pieces of the gateway tests: a real http.Server with the gateway attached, an in-memory
// checkpoint service standing in for the real one, a token registry, captured logs, and a small
// WebSocket agent client.
import assert from 'node:assert/strict';
import type { AuthFailureLimiter } from '../../src/util/auth-failures.js';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { E2epoolError } from '../../src/domain/errors.js';
import { createAgentGateway, type AgentGateway, type AgentRequestHandler, type GatewayTuning, type SessionEvent } from '../../src/gateway/index.js';
import type { GatewayDeps } from '../../src/gateway/gateway.js';
import type { Db } from '../../src/store/database.js';
import { captureLogs } from './log-capture.js';
import type { CheckpointResponse } from '../../src/services/checkpoint-read-model.js';

export const TOKENS: Record<string, string> = {
  r1: 'tok-r1-Zq8sSecretValue',
  r2: 'tok-r2-Xw3sSecretValue',
  r3: 'tok-r3-Pk5sSecretValue',
};

/** runner id → token, mutable so tests can revoke or rotate. */
export class TokenRegistry {
  readonly byRunner = new Map(Object.entries(TOKENS));
  async authenticate(runnerId: string | undefined, token: string): Promise<{ runnerId: string } | null> {
    for (const [runner, t] of this.byRunner) {
      if (t === token && (runnerId === undefined || runnerId === runner)) return { runnerId: runner };
    }
    return null;
  }
}

type Checkpoint = CheckpointResponse;

/** A small but real checkpoint service with e2epool's answers, plus knobs for slow and failing calls. */
export class InMemoryCheckpoints implements AgentRequestHandler {
  readonly checkpoints = new Map<string, Checkpoint>();
  readonly calls: Array<{ type: string; runnerId: string; payload: unknown; opts?: unknown }> = [];
  createDelayMs = 0;

  async create(runnerId: string, payload: { job_id: string; caller?: string; project_id?: string }, opts?: { legacySession?: boolean }): Promise<unknown> {
    this.calls.push({ type: 'create', runnerId, payload, opts });
    if (payload.job_id === 'explode') throw new Error('connection to postgresql://app:hunter2@db failed, token=abc123');
    if (this.createDelayMs) await sleep(this.createDelayMs);
    const active = [...this.checkpoints.values()].find((c) => c.runner_id === runnerId && (c.state === 'created' || c.state === 'finalize_queued'));
    if (active) throw new E2epoolError('conflict', `Active checkpoint '${active.name}' already exists for runner '${runnerId}'`);
    const name = `job-${payload.job_id}-${Math.floor(Date.now() / 1000)}-${randomBytes(4).toString('hex')}`;
    const cp: Checkpoint = {
      name,
      runner_id: runnerId,
      job_id: payload.job_id,
      state: 'created',
      finalize_status: null,
      finalize_source: null,
      created_at: new Date().toISOString(),
      finalized_at: null,
    };
    this.checkpoints.set(name, cp);
    return cp;
  }

  async finalize(runnerId: string, payload: { checkpoint_name: string; status: string; source?: string }): Promise<unknown> {
    this.calls.push({ type: 'finalize', runnerId, payload });
    const cp = this.owned(runnerId, payload.checkpoint_name);
    if (cp.state !== 'created') return { detail: 'Already finalized', state: cp.state };
    cp.state = 'finalize_queued';
    cp.finalize_status = payload.status;
    cp.finalize_source = payload.source ?? 'agent';
    cp.finalized_at = new Date().toISOString();
    return { detail: 'Finalize queued', checkpoint_name: cp.name };
  }

  async status(runnerId: string, payload: { checkpoint_name: string }): Promise<unknown> {
    this.calls.push({ type: 'status', runnerId, payload });
    return this.owned(runnerId, payload.checkpoint_name);
  }

  private owned(runnerId: string, name: string): Checkpoint {
    const cp = this.checkpoints.get(name);
    if (!cp) throw new E2epoolError('checkpoint_not_found', 'Checkpoint not found');
    if (cp.runner_id !== runnerId) throw new E2epoolError('checkpoint_not_found', 'Checkpoint not found');
    return cp;
  }
}

export interface GatewayHarness {
  gateway: AgentGateway;
  server: http.Server;
  /** ws://127.0.0.1:<port>/ws/agent */
  wsUrl: string;
  httpUrl: string;
  instanceId: string;
  registry: TokenRegistry;
  checkpoints: InMemoryCheckpoints;
  logs: string[];
  events: SessionEvent[];
  close(): Promise<void>;
}

export async function startGateway(opts: {
  db: Db;
  instanceId?: string;
  heartbeatIntervalSeconds?: number;
  heartbeatTimeoutSeconds?: number;
  tuning?: GatewayTuning;
  registry?: TokenRegistry;
  authFailures?: AuthFailureLimiter;
  onSessionReplaced?: GatewayDeps['onSessionReplaced'];
}): Promise<GatewayHarness> {
  const { logger, lines: logs } = captureLogs();
  const registry = opts.registry ?? new TokenRegistry();
  const checkpoints = new InMemoryCheckpoints();
  const instanceId = opts.instanceId ?? `test-${randomBytes(4).toString('hex')}`;
  const gateway = createAgentGateway({
    db: opts.db,
    instanceId,
    logger,
    heartbeatIntervalSeconds: opts.heartbeatIntervalSeconds ?? 30,
    heartbeatTimeoutSeconds: opts.heartbeatTimeoutSeconds ?? 90,
    authenticate: (runnerId, token) => registry.authenticate(runnerId, token),
    requests: checkpoints,
    tuning: { closeTimeoutMs: 500, ...opts.tuning },
    ...(opts.authFailures ? { authFailures: opts.authFailures } : {}),
    ...(opts.onSessionReplaced ? { onSessionReplaced: opts.onSessionReplaced } : {}),
  });
  const events: SessionEvent[] = [];
  gateway.on('session', (e) => events.push(e));
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
  });
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    gateway,
    server,
    wsUrl: `ws://127.0.0.1:${port}/ws/agent`,
    httpUrl: `http://127.0.0.1:${port}`,
    instanceId,
    registry,
    checkpoints,
    logs,
    events,
    close: async () => {
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** No log line may contain a runner token. */
export function assertNoTokensLogged(logs: string[]): void {
  for (const token of Object.values(TOKENS)) {
    assert.ok(!logs.some((l) => l.includes(token)), `a log line contains the token ${token.slice(0, 8)}…`);
  }
}

export type Frame = Record<string, any>;

export interface ConnectOptions {
  runnerId?: string;
  token?: string;
  /** Send the token in `Authorization: Bearer` instead of the query. */
  header?: boolean;
  /** A raw Authorization header value (wins over `token`). */
  authorization?: string;
  autoPong?: boolean;
}

function agentUrl(base: string, o: ConnectOptions): { url: string; headers: Record<string, string> } {
  const url = new URL(base);
  const headers: Record<string, string> = {};
  if (o.runnerId !== undefined) url.searchParams.set('runner_id', o.runnerId);
  if (o.token !== undefined) {
    if (o.header) headers.authorization = `Bearer ${o.token}`;
    else url.searchParams.set('token', o.token);
  }
  if (o.authorization !== undefined) headers.authorization = o.authorization;
  return { url: url.toString(), headers };
}

/** A scripted agent over a real WebSocket. */
export class TestAgent {
  readonly received: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly listeners = new Set<(f: Frame) => void>();
  private seq = 0;
  /** Answers controller commands (`run`/`exec`); return undefined to stay silent. */
  onCommand: ((f: Frame) => Frame | undefined | Promise<Frame | undefined>) | null = null;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data) => {
      let frame: Frame;
      try {
        frame = JSON.parse(String(data));
      } catch {
        return;
      }
      this.received.push(frame);
      for (const l of this.listeners) l(frame);
      if ((frame.type === 'run' || frame.type === 'exec') && this.onCommand) {
        void Promise.resolve(this.onCommand(frame)).then((reply) => {
          if (reply && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(reply));
        });
      }
    });
  }

  static connect(base: string, o: ConnectOptions): Promise<TestAgent> {
    const { url, headers } = agentUrl(base, o);
    const ws = new WebSocket(url, { headers, autoPong: o.autoPong ?? true });
    const agent = new TestAgent(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(agent));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake rejected with HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Connects expecting an HTTP rejection; resolves with its status code. */
  static rejection(base: string, o: ConnectOptions): Promise<number> {
    const { url, headers } = agentUrl(base, o);
    const ws = new WebSocket(url, { headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        ws.terminate();
        reject(new Error('handshake unexpectedly accepted'));
      });
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        ws.terminate();
      });
      ws.once('error', () => undefined);
    });
  }

  send(frame: Frame | string | Buffer): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** Waits for the first frame (already received or future) matching `match`. */
  next(match: (f: Frame) => boolean, timeoutMs = 3000, from = 0): Promise<Frame> {
    const seen = this.received.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`no matching frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (f: Frame) => {
        if (!match(f)) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(f);
      };
      this.listeners.add(listener);
    });
  }

  /** Sends a request and waits for the reply with its id. */
  request(type: string, payload: Frame = {}, timeoutMs = 3000): Promise<Frame> {
    const id = `req-${++this.seq}-${randomBytes(3).toString('hex')}`;
    const from = this.received.length;
    this.send({ id, type, payload });
    return this.next((f) => f.id === id && 'status' in f, timeoutMs, from);
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}
