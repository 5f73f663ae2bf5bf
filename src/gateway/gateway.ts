// The agent gateway: WebSocket endpoint `/ws/agent` on the controller's HTTP server. Keeps one live
// session per runner (highest epoch wins), enforces heartbeats and re-checks credentials, runs
// agent requests off the socket's read path and commands on runner hosts, and drains gracefully.
// The handshake is handshake.ts, the presence rows session-presence.ts, frame intake frame-intake.ts.
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { WebSocket } from 'ws';
import { E2epoolError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import { DEFAULT_REPLY_GRACE_SECONDS, runAgentCommand, type AgentCommandRequest, type AgentCommandOutput } from './agent-command.js';
import type { HelloPayload } from './envelope.js';
import { takeFrame, toBuffer, type RequestFrame } from './frame-intake.js';
import { CLOSE_CODES, closeMessage, type GatewayDeps, type GatewayTuning, type SessionEvent } from './gateway-options.js';
import { HandshakeGate, type UpgradeOrigin } from './handshake.js';
import { INSTANCE_HEARTBEAT_SECONDS, markInstanceDraining, registerInstance, startInstanceHeartbeat, type InstanceHeartbeat } from './instance-store.js';
import { DEFAULT_RATE_LIMIT, type RateLimitSettings } from './rate-limit.js';
import { SessionPresence } from './session-presence.js';
import { SessionRegistry } from './session-registry.js';
import { handleAgentRequest } from './request-dispatch.js';
import { AgentSession, monotonicNow, type AgentSessionInfo } from './session.js';

export type { AgentRequestHandler } from './request-dispatch.js';
export type { AgentCommandRequest, AgentCommandOutput } from './agent-command.js';
export type { AgentSessionInfo } from './session.js';

export { AGENT_WS_PATH, CLOSE_CODES, type GatewayDeps, type GatewayTuning, type SessionEvent } from './gateway-options.js';

type GatewayState = 'running' | 'draining' | 'closed';

export class AgentGateway {
  private readonly events = new EventEmitter();
  private readonly registry = new SessionRegistry();
  private readonly presence: SessionPresence;
  private readonly handshakes: HandshakeGate;
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

  constructor(private readonly deps: GatewayDeps) {
    this.logger = deps.logger.child({ component: 'agent-gateway', instanceId: deps.instanceId });
    this.presence = new SessionPresence(deps.db, deps.instanceId, this.logger, {
      touchSeconds: deps.tuning?.presenceTouchSeconds ?? 5,
      closeTimeoutMs: deps.tuning?.closeTimeoutMs ?? 2000,
    });
    this.handshakes = new HandshakeGate({
      logger: this.logger,
      authenticate: (runnerId, token) => deps.authenticate(runnerId, token),
      authFailures: deps.authFailures,
      allowQueryTokens: deps.allowQueryTokens !== false,
      accepting: () => this.state === 'running',
      nextEpoch: () => this.presence.nextEpoch(),
      onConnection: (ws, runnerId, epoch, token, where) => this.onConnection(ws, runnerId, epoch, token, where),
    });
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
    const listener = (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handshakes.onUpgrade(server, req, socket, head);
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
    this.handshakes.revoke(runnerId);
    const sessions = this.registry.sessionsOf(runnerId);
    for (const s of sessions) {
      this.logger.info({ runnerId, sessionEpoch: s.sessionEpoch, reason }, 'closing agent session');
      s.close(CLOSE_CODES.revoked, 'revoked', closeMessage(reason), this.closeTimeoutMs);
    }
    await Promise.all(sessions.map((s) => s.closed));
  }

  /** Registers this instance in `controller_instances` and heartbeats it until drain/close. */
  async registerInstance(): Promise<void> {
    // With a stable E2EPOOL_INSTANCE_ID, rows of a previous process that died without draining
    // would look live again once the instance row is fresh: no session of ours exists yet.
    await this.presence.removeOwn();
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
    this.handshakes.close();
  }

  // ---- Session lifecycle ------------------------------------------------------------------------

  private onConnection(ws: WebSocket, runnerId: string, epoch: number, token: string, where: UpgradeOrigin): void {
    const session = new AgentSession(ws, runnerId, epoch, this.rateLimit);
    this.tokens.set(session, token);
    this.remotes.set(session, where.remote);
    ws.on('error', (err) => this.logger.warn({ runnerId, sessionEpoch: epoch, error: err.message }, 'agent socket error'));
    ws.on('close', (code) => void this.teardown(session, code));
    ws.on('pong', () => this.presence.alive(session, monotonicNow()));
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
    void session.presence(() => this.presence.record(session, true));
    this.emit({ type: 'connected', runnerId, sessionEpoch: epoch });
  }

  private async teardown(session: AgentSession, code: number): Promise<void> {
    if (!session.beginTeardown()) return;
    const reason = session.endReason ?? 'closed';
    const { runnerId, sessionEpoch } = session;
    session.failPending(() => session.lostError());
    this.registry.remove(session);
    await this.presence.remove(session);
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
    this.presence.alive(session, now);
    if (session.endReason !== null) return;
    takeFrame(session, data, now, {
      logger: this.logger,
      maxInFlightPerSession: this.tuning.maxInFlightPerSession ?? 32,
      closeTimeoutMs: this.closeTimeoutMs,
      runRequest: (live, frame) => void this.runRequest(live, frame),
    });
  }

  /** Runs a request without holding up the socket: the reply is sent whenever it is ready. */
  private async runRequest(session: AgentSession, frame: RequestFrame): Promise<void> {
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

  /** `hello` turns a session current (commands by name) once its row records what it declares. */
  private async onHello(session: AgentSession, payload: HelloPayload): Promise<unknown> {
    await this.presence.hello(session, payload);
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
      await delay(Math.min(25, Math.max(1, deadline - monotonicNow())));
    }
    const sessions = this.registry.sessions();
    for (const s of sessions) {
      s.failPending(
        () => new E2epoolError('agent_not_connected', `Agent ${s.runnerId} not connected: controller instance is shutting down`, { lost: true, draining: true }),
      );
      s.close(CLOSE_CODES.goingAway, 'draining', 'controller shutting down', this.closeTimeoutMs);
    }
    await Promise.all(sessions.map((s) => s.closed));
    await this.presence.removeOwn();
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
