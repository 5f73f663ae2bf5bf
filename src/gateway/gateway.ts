// The agent gateway: WebSocket endpoint `/ws/agent` on the controller's HTTP server. Authenticates
// at the handshake, keeps one live session per runner (highest epoch wins), records presence in the
// database, enforces heartbeats, handles agent requests off the socket's read path, runs commands on
// runner hosts, and drains gracefully.
import { EventEmitter } from 'node:events';
import { TOO_MANY_FAILED_AUTHENTICATIONS, type AuthFailureLimiter } from '../util/auth-failures.js';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { E2epoolError } from '../domain/errors.js';
import { stripSecretsFromUrl, type Logger } from '../logger.js';
import type { Db } from '../store/database.js';
import { DEFAULT_REPLY_GRACE_SECONDS, runAgentCommand, type AgentCommandRequest, type AgentCommandOutput } from './agent-command.js';
import { errorEnvelope, parseFrame, type HelloPayload, type RequestType } from './envelope.js';
import { readCredentials, rejectUpgrade } from './handshake.js';
import { INSTANCE_HEARTBEAT_SECONDS, markInstanceDraining, registerInstance, startInstanceHeartbeat, type InstanceHeartbeat } from './instance-store.js';
import { PresenceStore } from './presence-store.js';
import { DEFAULT_RATE_LIMIT, type RateLimitSettings } from './rate-limit.js';
import { SessionRegistry } from './session-registry.js';
import { handleAgentRequest, type AgentRequestHandler } from './request-dispatch.js';
import { AgentSession, monotonicNow, type AgentSessionInfo, type SessionEndReason } from './session.js';

export type { AgentRequestHandler } from './request-dispatch.js';
export type { AgentCommandRequest, AgentCommandOutput } from './agent-command.js';
export type { AgentSessionInfo, SessionEndReason } from './session.js';

export const AGENT_WS_PATH = '/ws/agent';

/** Close codes the gateway uses. */
export const CLOSE_CODES = {
  /** A newer session of the same runner took over. */
  replaced: 4000,
  /** The runner was deactivated or its token changed. */
  revoked: 4401,
  /** This controller instance is stopping; reconnect at once. */
  goingAway: 1001,
  /** Sustained flood. */
  policy: 1008,
} as const;

/** Frames above MAX_FRAME_BYTES get a 400 reply; frames above this hard cap close the socket (1009). */
const HARD_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;
/** Only this much of a frame is parsed just to echo its id in a 429 reply. */
const MAX_PARSE_WHEN_LIMITED = 64 * 1024;

export interface GatewayTuning {
  rateLimit?: Partial<RateLimitSettings>;
  /** Concurrent requests one session may have in flight (default 32); more get 429. */
  maxInFlightPerSession?: number;
  /** Minimum seconds between presence `last_seen` writes per session (default 5). */
  presenceTouchSeconds?: number;
  /** Seconds between re-checks of a session's credentials (default 60; 0 disables). */
  reauthSeconds?: number;
  /** Extra seconds to wait for a command's reply after its own timeout (default 30). */
  commandReplyGraceSeconds?: number;
  /** How long a close handshake may take before the socket is cut (default 2000 ms). */
  closeTimeoutMs?: number;
  /** Seconds between `controller_instances` heartbeats (default 10). */
  instanceHeartbeatSeconds?: number;
}

export interface GatewayDeps {
  db: Db;
  instanceId: string;
  logger: Logger;
  heartbeatIntervalSeconds: number;
  heartbeatTimeoutSeconds: number;
  /** Registry lookup: the runner a token belongs to (runner id given by e2epool agents), or null. */
  authenticate(runnerId: string | undefined, token: string): Promise<{ runnerId: string } | null>;
  requests: AgentRequestHandler;
  tuning?: GatewayTuning;
  /** Shared with the HTTP API: failed handshakes count against the address too. */
  authFailures?: AuthFailureLimiter;
  /** Accept `?token=` (e2epool agents send nothing else); default true. */
  allowQueryTokens?: boolean;
  /** A new session took over from one that was still open (same runner): someone else may hold its credential. */
  onSessionReplaced?: (info: { runnerId: string; previousEpoch: number; newEpoch: number; previousRemote?: string | undefined; remote?: string | undefined }) => void;
}

export type SessionEvent =
  | { type: 'connected'; runnerId: string; sessionEpoch: number }
  | { type: 'hello'; runnerId: string; sessionEpoch: number; agentVersion: string | null; bootId: string | null; commands: string[] }
  | { type: 'disconnected'; runnerId: string; sessionEpoch: number; reason: SessionEndReason; code: number };

type GatewayState = 'running' | 'draining' | 'closed';

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Close reasons are limited to 123 bytes by the protocol. */
function closeMessage(text: string): string {
  let out = text;
  while (Buffer.byteLength(out) > 120) out = out.slice(0, -1);
  return out;
}

export class AgentGateway {
  private readonly events = new EventEmitter();
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: HARD_MAX_PAYLOAD_BYTES,
    // We validate UTF-8 ourselves so a bad frame gets a 400 reply instead of a 1007 close.
    skipUTF8Validation: true,
    perMessageDeflate: false,
    clientTracking: false,
  });
  private readonly registry = new SessionRegistry();
  private readonly presence: PresenceStore;
  /** Kept for periodic re-authentication; never logged, never on the session object. */
  private readonly tokens = new WeakMap<AgentSession, string>();
  private readonly remotes = new WeakMap<AgentSession, string | undefined>();
  private readonly servers = new Map<Server, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>();
  private readonly logger: Logger;
  private readonly rateLimit: RateLimitSettings;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly sweeper: NodeJS.Timeout;
  private state: GatewayState = 'running';
  private drainPromise: Promise<void> | null = null;
  private instanceHeartbeat: InstanceHeartbeat | null = null;
  private inFlightRequests = 0;
  /** closeRunnerSessions marks: a handshake authenticated before a revocation is refused. */
  private revocations = 0;
  private readonly revokedAt = new Map<string, number>();

  constructor(private readonly deps: GatewayDeps) {
    this.logger = deps.logger.child({ component: 'agent-gateway', instanceId: deps.instanceId });
    this.presence = new PresenceStore(deps.db, deps.instanceId);
    this.rateLimit = { ...DEFAULT_RATE_LIMIT, ...deps.tuning?.rateLimit };
    this.intervalMs = deps.heartbeatIntervalSeconds * 1000;
    this.timeoutMs = deps.heartbeatTimeoutSeconds * 1000;
    if (!(this.intervalMs > 0) || !(this.timeoutMs > 0)) throw new Error('heartbeat interval and timeout must be positive');
    const tickMs = Math.min(1000, Math.max(50, Math.min(this.intervalMs, this.timeoutMs) / 4));
    this.sweeper = setInterval(() => this.sweep(), tickMs);
    this.sweeper.unref();
  }

  private get tuning(): GatewayTuning {
    return this.deps.tuning ?? {};
  }

  private get closeTimeoutMs(): number {
    return this.tuning.closeTimeoutMs ?? 2000;
  }

  // ---- Public API -------------------------------------------------------------------------------

  /** Serves `/ws/agent` on this HTTP server's upgrade requests. */
  attach(server: Server): void {
    if (this.servers.has(server)) return;
    const listener = (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(server, req, socket, head);
    server.on('upgrade', listener);
    this.servers.set(server, listener);
  }

  on(event: 'session', listener: (e: SessionEvent) => void): this {
    this.events.on(event, listener);
    return this;
  }

  off(event: 'session', listener: (e: SessionEvent) => void): this {
    this.events.off(event, listener);
    return this;
  }

  /** The runner's live session on this instance, or null. */
  sessionOf(runnerId: string): AgentSessionInfo | null {
    const session = this.registry.get(runnerId);
    return session?.isOpen ? session.info() : null;
  }

  /** Every live session on this instance. */
  sessions(): AgentSessionInfo[] {
    return this.registry.sessions().filter((s) => s.isOpen && this.registry.get(s.runnerId) === s).map((s) => s.info());
  }

  /** Runs a command on the runner host through its live session on this instance. */
  async runCommand(runnerId: string, request: AgentCommandRequest): Promise<AgentCommandOutput> {
    if (this.state !== 'running') {
      throw new E2epoolError('agent_not_delivered', `Agent ${runnerId} not connected: controller instance is shutting down`, { draining: true });
    }
    const session = this.registry.get(runnerId);
    const log = { runnerId, command: request.name, commandId: request.commandId, sessionEpoch: session?.sessionEpoch };
    this.logger.info(log, 'agent command');
    try {
      const result = await runAgentCommand(session, runnerId, request, {
        replyGraceSeconds: this.tuning.commandReplyGraceSeconds ?? DEFAULT_REPLY_GRACE_SECONDS,
      });
      this.logger.info({ ...log, exitCode: result.exitCode, durationMs: result.durationMs }, 'agent command succeeded');
      return result;
    } catch (err) {
      const e = err as E2epoolError;
      this.logger.warn({ ...log, code: e.code, detail: e.detail, exitCode: e.extra?.exitCode }, 'agent command failed');
      throw err;
    } finally {
      if (session) this.onWorkDone(session);
    }
  }

  /** Closes every session of a runner (deactivated, token rotated) and waits for their teardown. */
  async closeRunnerSessions(runnerId: string, reason: string): Promise<void> {
    this.revocations += 1;
    this.revokedAt.set(runnerId, this.revocations);
    const sessions = this.registry.sessionsOf(runnerId);
    for (const s of sessions) {
      this.logger.info({ runnerId, sessionEpoch: s.sessionEpoch, reason }, 'closing agent session');
      s.close(CLOSE_CODES.revoked, 'revoked', closeMessage(reason), this.closeTimeoutMs);
    }
    await Promise.all(sessions.map((s) => s.closed));
  }

  /** Registers this instance in `controller_instances` and heartbeats it until drain/close. */
  async registerInstance(): Promise<void> {
    await registerInstance(this.deps.db, this.deps.instanceId);
    this.instanceHeartbeat ??= startInstanceHeartbeat({
      db: this.deps.db,
      instanceId: this.deps.instanceId,
      logger: this.logger,
      intervalSeconds: this.tuning.instanceHeartbeatSeconds ?? INSTANCE_HEARTBEAT_SECONDS,
    });
  }

  /**
   * Graceful stop: refuse new sessions (503), mark this instance draining, let idle sessions go at
   * once and busy ones finish within `graceMs`, then fail what is left retryably, close every socket
   * with 1001 and delete this instance's presence rows.
   */
  drain(graceMs: number): Promise<void> {
    this.drainPromise ??= this.runDrain(graceMs);
    return this.drainPromise;
  }

  /** Drains with no grace, then detaches from the HTTP servers and stops every timer. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    await this.drain(0);
    this.state = 'closed';
    clearInterval(this.sweeper);
    for (const [server, listener] of this.servers) server.off('upgrade', listener);
    this.servers.clear();
    this.wss.close();
  }

  // ---- Handshake --------------------------------------------------------------------------------

  private onUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      rejectUpgrade(socket, 400, 'Bad request URL');
      return;
    }
    if (url.pathname !== AGENT_WS_PATH) {
      // Another upgrade listener may own this path; answer only when nobody else can.
      if (server.listeners('upgrade').length <= 1) rejectUpgrade(socket, 404, 'Not Found');
      return;
    }
    socket.on('error', () => undefined); // a peer resetting mid-handshake must not crash the process
    this.handshake(req, socket, head, url).catch((err: unknown) => {
      this.logger.error({ err, url: stripSecretsFromUrl(req.url ?? '') }, 'agent handshake failed');
      rejectUpgrade(socket, 500, 'Internal server error');
    });
  }

  private async handshake(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const limiter = this.deps.authFailures;
    const where = { url: stripSecretsFromUrl(req.url ?? ''), remote: limiter ? limiter.addressOf(req) : req.socket.remoteAddress };
    if (this.state !== 'running') return rejectUpgrade(socket, 503, 'Controller instance is shutting down', { 'Retry-After': '1' });
    if (limiter?.isRequestBlocked(req)) return rejectUpgrade(socket, 429, TOO_MANY_FAILED_AUTHENTICATIONS, { 'Retry-After': '60' });
    const creds = readCredentials(req, url, { allowQueryToken: this.deps.allowQueryTokens !== false });
    if (!creds.ok) {
      limiter?.recordRequestFailure(req, 'agent');
      this.logger.warn({ ...where }, `agent handshake rejected: ${creds.detail}`);
      return rejectUpgrade(socket, creds.status, creds.detail);
    }
    const revocationMark = this.revocations;
    let identity: { runnerId: string } | null;
    try {
      identity = await this.deps.authenticate(creds.runnerId, creds.token);
    } catch (err) {
      this.logger.error({ ...where, err }, 'agent handshake: runner registry unavailable');
      return rejectUpgrade(socket, 503, 'Runner registry unavailable', { 'Retry-After': '5' });
    }
    if (!identity || (creds.runnerId !== undefined && identity.runnerId !== creds.runnerId)) {
      limiter?.recordRequestFailure(req, 'agent');
      this.logger.warn({ ...where, runnerId: creds.runnerId }, 'agent handshake rejected: invalid credentials');
      return rejectUpgrade(socket, 403, 'Invalid credentials');
    }
    const runnerId = identity.runnerId;
    let epoch: number;
    try {
      epoch = await this.presence.nextEpoch();
    } catch (err) {
      this.logger.error({ ...where, runnerId, err }, 'agent handshake: database unavailable');
      return rejectUpgrade(socket, 503, 'Database unavailable', { 'Retry-After': '5' });
    }
    if (this.state !== 'running') return rejectUpgrade(socket, 503, 'Controller instance is shutting down', { 'Retry-After': '1' });
    if ((this.revokedAt.get(runnerId) ?? 0) > revocationMark) {
      this.logger.warn({ ...where, runnerId }, 'agent handshake rejected: credentials revoked during the handshake');
      return rejectUpgrade(socket, 403, 'Invalid credentials');
    }
    if (socket.destroyed) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, runnerId, epoch, creds.token, where));
  }

  // ---- Session lifecycle ------------------------------------------------------------------------

  private onConnection(ws: WebSocket, runnerId: string, epoch: number, token: string, where: { url: string; remote?: string }): void {
    const session = new AgentSession(ws, runnerId, epoch, this.rateLimit);
    this.tokens.set(session, token);
    this.remotes.set(session, where.remote);
    ws.on('error', (err) => this.logger.warn({ runnerId, sessionEpoch: epoch, error: err.message }, 'agent socket error'));
    ws.on('close', (code) => void this.teardown(session, code));
    ws.on('pong', () => this.onAlive(session, monotonicNow()));
    ws.on('message', (data) => this.onFrame(session, toBuffer(data)));

    const { accepted, replaced } = this.registry.register(session);
    this.logger.info({ ...where, runnerId, sessionEpoch: epoch }, 'agent connected');
    if (!accepted) {
      session.close(CLOSE_CODES.replaced, 'replaced', 'replaced by a newer session', this.closeTimeoutMs);
      return;
    }
    if (replaced) {
      this.logger.warn({ runnerId, sessionEpoch: replaced.sessionEpoch, newSessionEpoch: epoch, previousRemote: this.remotes.get(replaced), remote: where.remote }, 'agent session replaced while still open');
      this.deps.onSessionReplaced?.({ runnerId, previousEpoch: replaced.sessionEpoch, newEpoch: epoch, previousRemote: this.remotes.get(replaced), remote: where.remote });
      replaced.close(CLOSE_CODES.replaced, 'replaced', 'replaced by a newer session', this.closeTimeoutMs);
    }
    void session.presence(() => this.recordPresence(session, true));
    this.emit({ type: 'connected', runnerId, sessionEpoch: epoch });
  }

  /** Upserts the presence row from the session's state; a newer row elsewhere supersedes us. */
  private async recordPresence(session: AgentSession, connected: boolean): Promise<void> {
    try {
      const own = await this.presence.upsert(
        {
          runnerId: session.runnerId,
          sessionEpoch: session.sessionEpoch,
          bootId: session.bootId,
          agentVersion: session.agentVersion,
          declaredCommands: session.declaredCommands,
        },
        { connected },
      );
      session.presenceRecorded = own;
      if (!own) this.supersede(session);
    } catch (err) {
      this.logger.warn({ runnerId: session.runnerId, sessionEpoch: session.sessionEpoch, err }, 'could not record agent presence; will retry');
    }
  }

  private supersede(session: AgentSession): void {
    if (session.endReason !== null || session.ws.readyState !== session.ws.OPEN) return;
    this.logger.info({ runnerId: session.runnerId, sessionEpoch: session.sessionEpoch }, 'agent session superseded by a newer session on another instance');
    session.close(CLOSE_CODES.replaced, 'superseded', 'replaced by a newer session', this.closeTimeoutMs);
  }

  private onAlive(session: AgentSession, now: number): void {
    session.markAlive(now);
    const touchMs = (this.tuning.presenceTouchSeconds ?? 5) * 1000;
    if (now - session.lastPresenceTouchAt < touchMs || session.endReason !== null) return;
    session.lastPresenceTouchAt = now;
    void session.presence(async () => {
      if (!session.presenceRecorded) return this.recordPresence(session, true);
      try {
        if (!(await this.presence.touch(session.runnerId, session.sessionEpoch))) this.supersede(session);
      } catch (err) {
        this.logger.warn({ runnerId: session.runnerId, err }, 'could not refresh agent presence');
      }
    });
  }

  private async teardown(session: AgentSession, code: number): Promise<void> {
    if (!session.beginTeardown()) return;
    const reason = session.endReason ?? 'closed';
    const { runnerId, sessionEpoch } = session;
    session.failPending(() => session.lostError());
    this.registry.remove(session);
    try {
      await session.presence(() => this.presence.remove(runnerId, sessionEpoch));
    } catch (err) {
      this.logger.warn({ runnerId, sessionEpoch, err }, 'could not remove agent presence');
    }
    const fields = { runnerId, sessionEpoch, reason, code };
    if (reason === 'heartbeat_timeout') this.logger.warn(fields, 'agent offline: no heartbeat');
    else this.logger.info(fields, 'agent disconnected');
    this.emit({ type: 'disconnected', runnerId, sessionEpoch, reason, code });
    session.markClosed();
  }

  /** Heartbeats, dead-peer detection and credential re-checks, for every session in one timer. */
  private sweep(): void {
    const now = monotonicNow();
    const reauthMs = (this.tuning.reauthSeconds ?? 60) * 1000;
    for (const session of this.registry.sessions()) {
      if (session.endReason !== null) continue;
      if (session.pingOutstandingSince !== null && now - session.pingOutstandingSince > this.timeoutMs) {
        session.terminate('heartbeat_timeout');
        continue;
      }
      if (now - session.lastPingAt >= this.intervalMs) session.ping(now);
      if (reauthMs > 0 && !session.reauthRunning && now - session.lastAuthAt >= reauthMs) void this.reauthenticate(session, now);
    }
  }

  /** Handshake auth is not the last word: a deactivated runner or rotated token ends the session. */
  private async reauthenticate(session: AgentSession, now: number): Promise<void> {
    const token = this.tokens.get(session);
    if (token === undefined) return;
    session.reauthRunning = true;
    session.lastAuthAt = now;
    try {
      const identity = await this.deps.authenticate(session.runnerId, token);
      if (!identity || identity.runnerId !== session.runnerId) {
        this.logger.info({ runnerId: session.runnerId, sessionEpoch: session.sessionEpoch }, 'agent credentials no longer valid; closing session');
        session.close(CLOSE_CODES.revoked, 'revoked', 'credentials no longer valid', this.closeTimeoutMs);
      }
    } catch (err) {
      this.logger.warn({ runnerId: session.runnerId, err }, 'could not re-check agent credentials; keeping the session');
    } finally {
      session.reauthRunning = false;
    }
  }

  // ---- Frames -----------------------------------------------------------------------------------

  private onFrame(session: AgentSession, data: Buffer): void {
    const now = monotonicNow();
    this.onAlive(session, now);
    if (session.endReason !== null) return;
    const verdict = session.flood.check(now);
    if (verdict === 'close') {
      this.logger.warn({ runnerId: session.runnerId, sessionEpoch: session.sessionEpoch }, 'agent flooding; closing session');
      session.close(CLOSE_CODES.policy, 'rate_limited', 'rate limit exceeded', this.closeTimeoutMs);
      return;
    }
    if (verdict === 'reject' && data.length > MAX_PARSE_WHEN_LIMITED) {
      session.send(errorEnvelope('', 429, 'Rate limit exceeded'));
      return;
    }
    const frame = parseFrame(data);
    switch (frame.kind) {
      case 'reply':
        // Command results are never rate-limited: losing one would lose a command's outcome.
        if (!session.deliverReply(frame)) this.logger.debug({ runnerId: session.runnerId, id: frame.id.slice(0, 64) }, 'reply for an unknown command id dropped');
        return;
      case 'stray-reply':
        this.logger.debug({ runnerId: session.runnerId, reason: frame.reason }, 'stray reply dropped');
        return;
      case 'invalid':
        session.send(errorEnvelope(frame.id, verdict === 'reject' ? 429 : 400, verdict === 'reject' ? 'Rate limit exceeded' : frame.detail));
        return;
      case 'request':
        if (verdict === 'reject') {
          session.send(errorEnvelope(frame.id, 429, 'Rate limit exceeded'));
          return;
        }
        if (session.inFlightRequests >= (this.tuning.maxInFlightPerSession ?? 32)) {
          session.send(errorEnvelope(frame.id, 429, 'Too many requests in flight'));
          return;
        }
        void this.runRequest(session, frame);
    }
  }

  /** Runs a request without holding up the socket: the reply is sent whenever it is ready. */
  private async runRequest(session: AgentSession, frame: { id: string; type: RequestType; payload: Record<string, unknown> }): Promise<void> {
    session.inFlightRequests += 1;
    this.inFlightRequests += 1;
    try {
      const reply = await handleAgentRequest(
        {
          runnerId: session.runnerId,
          sessionEpoch: session.sessionEpoch,
          legacySession: session.kind === 'legacy',
          requests: this.deps.requests,
          hello: (payload) => this.onHello(session, payload),
        },
        this.logger,
        frame,
      );
      if (!session.send(reply)) {
        this.logger.info({ runnerId: session.runnerId, requestType: frame.type }, 'agent reply dropped: session closed or backed up');
      }
    } finally {
      session.inFlightRequests -= 1;
      this.inFlightRequests -= 1;
      this.onWorkDone(session);
    }
  }

  /**
   * `hello` turns a session current (commands by name). It keeps the epoch it got at connect: the
   * epoch marks the connection, and a hello is only more detail about it.
   */
  private async onHello(session: AgentSession, payload: HelloPayload): Promise<unknown> {
    let own: boolean;
    try {
      own = await session.presence(() =>
        this.presence.upsert(
          {
            runnerId: session.runnerId,
            sessionEpoch: session.sessionEpoch,
            bootId: payload.boot_id ?? null,
            agentVersion: payload.agent_version ?? null,
            declaredCommands: payload.commands,
          },
          { connected: !session.presenceRecorded },
        ),
      );
    } catch (err) {
      this.logger.warn({ runnerId: session.runnerId, err }, 'could not record agent hello');
      throw new E2epoolError('database_unavailable', 'Could not record the session; send hello again');
    }
    if (!own) {
      this.supersede(session);
      throw new E2epoolError('agent_stale_route', 'This session was replaced by a newer one');
    }
    session.presenceRecorded = true;
    session.kind = 'current';
    session.declaredCommands = payload.commands;
    session.agentVersion = payload.agent_version ?? null;
    session.bootId = payload.boot_id ?? null;
    this.logger.info(
      { runnerId: session.runnerId, sessionEpoch: session.sessionEpoch, agentVersion: session.agentVersion, bootId: session.bootId, commands: payload.commands },
      'agent hello',
    );
    this.emit({
      type: 'hello',
      runnerId: session.runnerId,
      sessionEpoch: session.sessionEpoch,
      agentVersion: session.agentVersion,
      bootId: session.bootId,
      commands: [...payload.commands],
    });
    return { session_epoch: session.sessionEpoch, instance_id: this.deps.instanceId };
  }

  // ---- Drain ------------------------------------------------------------------------------------

  private onWorkDone(session: AgentSession): void {
    if (this.state === 'draining' && !session.busy) {
      session.close(CLOSE_CODES.goingAway, 'draining', 'controller shutting down', this.closeTimeoutMs);
    }
  }

  private busyCount(): number {
    let pending = this.inFlightRequests;
    for (const s of this.registry.sessions()) pending += s.pendingCommands;
    return pending;
  }

  private async runDrain(graceMs: number): Promise<void> {
    if (this.state === 'running') this.state = 'draining';
    this.logger.info({ graceMs }, 'agent gateway draining');
    try {
      await markInstanceDraining(this.deps.db, this.deps.instanceId);
    } catch (err) {
      this.logger.warn({ err }, 'could not mark this instance draining');
    }
    // Idle agents leave now and reconnect to another instance; busy ones finish first.
    for (const s of this.registry.sessions()) if (!s.busy) s.close(CLOSE_CODES.goingAway, 'draining', 'controller shutting down', this.closeTimeoutMs);
    const deadline = monotonicNow() + graceMs;
    while (this.busyCount() > 0 && monotonicNow() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(25, Math.max(1, deadline - monotonicNow()))));
    }
    const sessions = this.registry.sessions();
    for (const s of sessions) {
      s.failPending(
        () => new E2epoolError('agent_not_connected', `Agent ${s.runnerId} not connected: controller instance is shutting down`, { lost: true, draining: true }),
      );
      s.close(CLOSE_CODES.goingAway, 'draining', 'controller shutting down', this.closeTimeoutMs);
    }
    await Promise.all(sessions.map((s) => s.closed));
    try {
      await this.presence.removeOwn();
    } catch (err) {
      this.logger.warn({ err }, 'could not remove this instance presence rows');
    }
    this.instanceHeartbeat?.stop();
    this.instanceHeartbeat = null;
    this.logger.info('agent gateway drained');
  }

  private emit(event: SessionEvent): void {
    try {
      this.events.emit('session', event);
    } catch (err) {
      this.logger.error({ err }, 'session event listener failed');
    }
  }
}

export function createAgentGateway(deps: GatewayDeps): AgentGateway {
  return new AgentGateway(deps);
}
