// One agent WebSocket session: its identity (runner, epoch), what the agent declared, liveness
// clocks, the commands waiting for a reply, and an orderly close.
import { WebSocket } from 'ws';
import { E2epoolError } from '../domain/errors.js';
import { FloodGuard, type RateLimitSettings } from './rate-limit.js';

export type SessionKind = 'legacy' | 'current';

/** Why a session ended, as reported in `session` events and logs. */
export type SessionEndReason = 'closed' | 'replaced' | 'heartbeat_timeout' | 'revoked' | 'draining' | 'rate_limited' | 'superseded';

export interface AgentSessionInfo {
  runnerId: string;
  sessionEpoch: number;
  kind: SessionKind;
  /** null for legacy sessions. */
  declaredCommands: string[] | null;
  agentVersion: string | null;
  bootId: string | null;
  connectedAt: Date;
}

export interface CommandReplyFrame {
  id: string;
  status: unknown;
  data: unknown;
  error: unknown;
}

interface PendingCommand {
  resolve(reply: CommandReplyFrame): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** Replies are dropped (and logged by the caller) rather than queued without bound for a slow reader. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

export const monotonicNow = (): number => performance.now();

export class AgentSession {
  readonly connectedAt = new Date();
  kind: SessionKind = 'legacy';
  declaredCommands: string[] | null = null;
  agentVersion: string | null = null;
  bootId: string | null = null;

  /** Monotonic milliseconds of the last inbound frame or pong. */
  lastFrameAt: number;
  lastPingAt: number;
  /** When the ping still waiting for any sign of life was sent; null when none is outstanding. */
  pingOutstandingSince: number | null = null;
  lastPresenceTouchAt: number;
  lastAuthAt: number;
  reauthRunning = false;
  /** Whether our presence row was written; a failed write is retried on the next touch. */
  presenceRecorded = false;

  inFlightRequests = 0;
  readonly flood: FloodGuard;
  endReason: SessionEndReason | null = null;

  private readonly pending = new Map<string, PendingCommand>();
  private presenceChain: Promise<unknown> = Promise.resolve();
  private terminateTimer: NodeJS.Timeout | null = null;
  private finished = false;
  private resolveClosed!: () => void;
  /** Resolves once teardown (registry and presence cleanup) has completed. */
  readonly closed: Promise<void>;

  constructor(
    readonly ws: WebSocket,
    readonly runnerId: string,
    readonly sessionEpoch: number,
    rateLimit: RateLimitSettings,
  ) {
    const now = monotonicNow();
    this.lastFrameAt = now;
    this.lastPingAt = now;
    this.lastPresenceTouchAt = now;
    this.lastAuthAt = now;
    this.flood = new FloodGuard(rateLimit, now);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  get isOpen(): boolean {
    return this.endReason === null && this.ws.readyState === WebSocket.OPEN;
  }

  get pendingCommands(): number {
    return this.pending.size;
  }

  get busy(): boolean {
    return this.inFlightRequests > 0 || this.pending.size > 0;
  }

  info(): AgentSessionInfo {
    return {
      runnerId: this.runnerId,
      sessionEpoch: this.sessionEpoch,
      kind: this.kind,
      declaredCommands: this.declaredCommands ? [...this.declaredCommands] : null,
      agentVersion: this.agentVersion,
      bootId: this.bootId,
      connectedAt: this.connectedAt,
    };
  }

  markAlive(now: number): void {
    this.lastFrameAt = now;
    this.pingOutstandingSince = null;
  }

  /** Sends a text frame if the socket is open and not backed up; returns whether it was queued. */
  send(text: string): boolean {
    if (this.ws.readyState !== WebSocket.OPEN || this.ws.bufferedAmount > MAX_BUFFERED_BYTES) return false;
    this.ws.send(text);
    return true;
  }

  ping(now: number): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.lastPingAt = now;
    this.pingOutstandingSince ??= now;
    this.ws.ping();
  }

  /** Sends a command and waits for the reply with the same id. */
  request(id: string, frame: string, timeoutMs: number, onTimeout: () => Error): Promise<CommandReplyFrame> {
    if (!this.isOpen) return Promise.reject(this.notDeliveredError());
    return new Promise<CommandReplyFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(onTimeout());
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(frame, (err) => {
        if (err) this.settle(id, (p) => p.reject(this.notDeliveredError()));
      });
    });
  }

  /** Routes an agent reply to its waiting command; false for unknown ids. */
  deliverReply(reply: CommandReplyFrame): boolean {
    return this.settle(reply.id, (p) => p.resolve(reply));
  }

  failPending(makeError: () => Error): void {
    for (const id of [...this.pending.keys()]) this.settle(id, (p) => p.reject(makeError()));
  }

  notDeliveredError(): E2epoolError {
    return new E2epoolError('agent_not_delivered', `Agent ${this.runnerId} disconnected before the command was sent`, { sessionEpoch: this.sessionEpoch });
  }

  lostError(): E2epoolError {
    return new E2epoolError('agent_not_connected', `Agent ${this.runnerId} disconnected`, { lost: true, sessionEpoch: this.sessionEpoch });
  }

  /** Serialises this session's presence writes so connect, hello, touch and delete stay in order. */
  presence<T>(write: () => Promise<T>): Promise<T> {
    const next = this.presenceChain.then(write, write);
    this.presenceChain = next.catch(() => undefined);
    return next;
  }

  /** Starts a close handshake; a peer that does not answer within `terminateAfterMs` is cut off. */
  close(code: number, reason: SessionEndReason, message: string, terminateAfterMs: number): void {
    if (this.endReason !== null) return;
    this.endReason = reason;
    try {
      this.ws.close(code, message);
    } catch {
      this.ws.terminate();
    }
    this.terminateTimer = setTimeout(() => this.ws.terminate(), terminateAfterMs);
    this.terminateTimer.unref();
  }

  terminate(reason: SessionEndReason): void {
    this.endReason ??= reason;
    this.ws.terminate();
  }

  /** Called once on the socket's close event; returns false if already called. */
  beginTeardown(): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.endReason ??= 'closed';
    if (this.terminateTimer) clearTimeout(this.terminateTimer);
    return true;
  }

  markClosed(): void {
    this.resolveClosed();
  }

  private settle(id: string, action: (p: PendingCommand) => void): boolean {
    const pending = this.pending.get(id);
    if (!pending) return false;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    action(pending);
    return true;
  }
}
