// The agent's outbound WebSocket to the controller (e2epool protocol §5 plus `hello`): connects with
// runner_id/token query parameters and a bearer header, reconnects with exponential backoff and
// jitter, sends app-level pings, and treats a controller silent for 3 heartbeats as dead.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import type { AgentLogger } from './log.js';
import { redactUrl } from './log.js';

export interface ControllerReply {
  id: string;
  status: 'ok' | 'error';
  data?: unknown;
  error?: { code: number; detail: string } | string | null;
  [key: string]: unknown;
}

export interface HelloInfo {
  agentVersion: string;
  bootId: string;
  commands: string[];
}

export interface SessionInfo {
  connectedAt: Date;
  /** From the controller's hello answer; null on a legacy controller or before it answered. */
  sessionEpoch: number | null;
  instanceId: string | null;
  protocol: 'pending' | 'current' | 'legacy';
}

export interface ControllerConnectionOptions {
  controllerUrl: string;
  runnerId: string;
  token: string;
  heartbeatIntervalMs: number;
  reconnectInitialDelayMs: number;
  reconnectMaxDelayMs: number;
  hello: HelloInfo;
  /** Also put the token in the URL (e2epool controllers only read it there). */
  sendTokenInQuery?: boolean;
  /** Extra CA certificates (PEM) to trust for wss://. */
  ca?: string;
  /** Answers controller → agent commands (`run`, `exec`); the reply goes back on the same socket. */
  onCommand: (message: Record<string, unknown>) => Promise<Record<string, unknown>>;
  isCommand: (message: Record<string, unknown>) => boolean;
  logger: AgentLogger;
  random?: () => number;
}

export const HELLO_PROTOCOL_VERSION = 2;
/** WebSocket close code "going away": the controller is draining; reconnect at once. */
export const CLOSE_GOING_AWAY = 1001;
const HELLO_TIMEOUT_MS = 30_000;
const MAX_CONTROLLER_FRAME_BYTES = 16 * 1024 * 1024;

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * The connect URL: the runner id in the query (appended with & when the URL has one), and the token
 * too only for e2epool controllers (`send_token_in_query`); ours read it from the header.
 */
export function buildConnectUrl(controllerUrl: string, runnerId: string, token: string | null): string {
  const sep = controllerUrl.includes('?') ? '&' : '?';
  return `${controllerUrl}${sep}runner_id=${encodeURIComponent(runnerId)}${token !== null ? `&token=${encodeURIComponent(token)}` : ''}`;
}

/**
 * e2epool's backoff: wait `delay + U(0, 0.1·delay)`, then double the delay up to the cap.
 * Returns this wait and the next delay.
 */
export function reconnectBackoff(delayMs: number, maxDelayMs: number, random: () => number): { waitMs: number; nextDelayMs: number } {
  return { waitMs: delayMs + random() * 0.1 * delayMs, nextDelayMs: Math.min(delayMs * 2, maxDelayMs) };
}

export function errorReply(id: string, code: number, detail: string): ControllerReply {
  return { id, status: 'error', data: null, error: { code, detail } };
}

interface Pending {
  resolve: (reply: ControllerReply) => void;
  timer: NodeJS.Timeout;
}

export class ControllerConnection extends EventEmitter {
  private ws: WebSocket | null = null;
  private sessionInfo: SessionInfo | null = null;
  private readonly pending = new Map<string, Pending>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private nextDelayMs: number;
  private lastHeardAt = 0;
  private stopping = false;
  private started = false;
  private readonly random: () => number;

  constructor(private readonly opts: ControllerConnectionOptions) {
    super();
    this.nextDelayMs = opts.reconnectInitialDelayMs;
    this.random = opts.random ?? Math.random;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  get session(): SessionInfo | null {
    return this.connected ? this.sessionInfo : null;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  /** Closes the session (code 1000) and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2000);
      ws.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'agent stopping');
    });
  }

  /**
   * Sends one request and waits for the controller's reply. Never throws: being offline, losing
   * the connection or the deadline passing come back as e2epool's 503 error replies.
   */
  request(type: string, payload: Record<string, unknown>, timeoutMs: number): Promise<ControllerReply> {
    const ws = this.ws;
    const id = randomHex(6);
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve(errorReply(id, 503, 'Not connected to controller'));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(errorReply(id, 503, 'Controller did not respond in time'));
      }, timeoutMs);
      this.pending.set(id, { resolve, timer });
      ws.send(JSON.stringify({ id, type, payload }), (err) => {
        if (err) this.settle(id, errorReply(id, 503, 'Connection lost'));
      });
    });
  }

  private settle(id: string, reply: ControllerReply): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(reply);
    return true;
  }

  /** Removes the token from anything a library might echo back (error texts). */
  private scrub(text: string): string {
    const token = this.opts.token;
    const cleaned = token ? text.split(token).join('***') : text;
    return redactUrl(cleaned);
  }

  private connect(): void {
    if (this.stopping) return;
    const { controllerUrl, runnerId, token, logger } = this.opts;
    logger.info({ controller: redactUrl(controllerUrl), runnerId }, 'connecting to controller');
    let ws: WebSocket;
    try {
      ws = new WebSocket(buildConnectUrl(controllerUrl, runnerId, this.opts.sendTokenInQuery ? token : null), {
        headers: { Authorization: `Bearer ${token}` },
        ...(this.opts.ca ? { ca: this.opts.ca } : {}),
        handshakeTimeout: Math.max(5000, this.opts.heartbeatIntervalMs),
        maxPayload: MAX_CONTROLLER_FRAME_BYTES,
      });
    } catch (err: any) {
      logger.error({ err: this.scrub(String(err?.message ?? err)) }, 'cannot open controller connection');
      this.scheduleReconnect(false);
      return;
    }
    this.ws = ws;
    let opened = false;

    ws.on('open', () => {
      opened = true;
      this.nextDelayMs = this.opts.reconnectInitialDelayMs;
      this.lastHeardAt = Date.now();
      this.sessionInfo = { connectedAt: new Date(), sessionEpoch: null, instanceId: null, protocol: 'pending' };
      logger.info({ controller: redactUrl(controllerUrl), runnerId }, 'connected to controller');
      this.startHeartbeat(ws);
      this.sendHello();
      this.emit('connected');
    });
    ws.on('message', (data, isBinary) => {
      this.lastHeardAt = Date.now();
      this.onMessage(ws, data, isBinary);
    });
    ws.on('pong', () => {
      this.lastHeardAt = Date.now();
    });
    ws.on('ping', () => {
      this.lastHeardAt = Date.now();
    });
    ws.on('error', (err) => {
      logger.warn({ err: this.scrub(err.message) }, opened ? 'controller connection error' : 'cannot connect to controller');
    });
    ws.on('close', (code, reason) => {
      clearInterval(this.heartbeatTimer);
      if (this.ws === ws) this.ws = null;
      const hadSession = opened;
      this.sessionInfo = null;
      for (const id of [...this.pending.keys()]) this.settle(id, errorReply(id, 503, 'Connection lost'));
      if (hadSession) {
        logger.warn({ code, reason: this.scrub(reason.toString('utf8')) }, 'controller connection closed');
        this.emit('disconnected', code);
      }
      if (!this.stopping) this.scheduleReconnect(hadSession && code === CLOSE_GOING_AWAY);
    });
  }

  private scheduleReconnect(immediately: boolean): void {
    if (this.stopping) return;
    let waitMs = 0;
    if (!immediately) {
      const next = reconnectBackoff(this.nextDelayMs, this.opts.reconnectMaxDelayMs, this.random);
      waitMs = next.waitMs;
      this.nextDelayMs = next.nextDelayMs;
    }
    this.opts.logger.info({ inSeconds: Math.round(waitMs) / 1000 }, immediately ? 'controller is draining: reconnecting now' : 'reconnecting to controller');
    this.reconnectTimer = setTimeout(() => this.connect(), waitMs);
  }

  private startHeartbeat(ws: WebSocket): void {
    const interval = this.opts.heartbeatIntervalMs;
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const silentMs = Date.now() - this.lastHeardAt;
      if (silentMs > 3 * interval) {
        this.opts.logger.warn({ silentSeconds: Math.round(silentMs / 1000) }, 'controller stopped answering: reconnecting');
        ws.terminate();
        return;
      }
      // App-level ping as e2epool sent it; the protocol ping also reaches controllers that do not answer app pings.
      ws.send(JSON.stringify({ id: randomHex(4), type: 'ping', payload: {} }), (err) => {
        if (err) ws.terminate();
      });
      ws.ping();
    }, interval);
  }

  private sendHello(): void {
    const ws = this.ws;
    if (!ws) return;
    const id = randomHex(6);
    const { agentVersion, bootId, commands } = this.opts.hello;
    const timer = setTimeout(() => this.pending.delete(id), HELLO_TIMEOUT_MS);
    this.pending.set(id, {
      timer,
      resolve: (reply) => {
        if (this.ws !== ws || !this.sessionInfo) return;
        const data = (reply.data ?? {}) as Record<string, unknown>;
        if (reply.status === 'ok') {
          this.sessionInfo.protocol = 'current';
          this.sessionInfo.sessionEpoch = typeof data.session_epoch === 'number' ? data.session_epoch : null;
          this.sessionInfo.instanceId = typeof data.instance_id === 'string' ? data.instance_id : null;
          this.opts.logger.info(
            { sessionEpoch: this.sessionInfo.sessionEpoch, instanceId: this.sessionInfo.instanceId },
            'controller accepted hello',
          );
          this.emit('hello', this.sessionInfo);
        } else if (reply.error && typeof reply.error === 'object' && reply.error.detail === 'Connection lost') {
          // The session ended before the answer; the next session says hello again.
        } else {
          this.sessionInfo.protocol = 'legacy';
          this.opts.logger.info('controller did not accept hello: legacy session (raw exec commands only)');
        }
      },
    });
    ws.send(
      JSON.stringify({
        id,
        type: 'hello',
        payload: { protocol: HELLO_PROTOCOL_VERSION, agent_version: agentVersion, boot_id: bootId, commands },
      }),
    );
  }

  private onMessage(ws: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    let message: unknown;
    try {
      message = JSON.parse(isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString());
    } catch {
      this.opts.logger.warn('ignored a controller frame that is not JSON');
      return;
    }
    if (!message || typeof message !== 'object' || Array.isArray(message)) {
      this.opts.logger.warn('ignored a controller frame that is not a JSON object');
      return;
    }
    const msg = message as Record<string, unknown>;
    if (this.opts.isCommand(msg)) {
      this.opts
        .onCommand(msg)
        .then((reply) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(reply));
          else this.opts.logger.warn({ id: msg.id }, 'command finished after its session closed: reply not sent');
        })
        .catch((err) => this.opts.logger.error({ err: this.scrub(String(err?.message ?? err)) }, 'command handler failed'));
      return;
    }
    if (typeof msg.id === 'string') this.settle(msg.id, msg as ControllerReply);
  }
}
