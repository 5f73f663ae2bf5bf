// The agent's upgrade request: its path and credentials, authentication against the registry, the
// session epoch, the revocations that overtake a handshake, and HTTP rejections of the upgrade.
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { stripSecretsFromUrl, type Logger } from '../logger.js';
import { TOO_MANY_FAILED_AUTHENTICATIONS, type AuthFailureLimiter } from '../util/auth-failures.js';
import { AGENT_WS_PATH, type GatewayDeps } from './gateway-options.js';

/** Frames above MAX_FRAME_BYTES get a 400 reply; frames above this hard cap close the socket (1009). */
const HARD_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

/** Where an upgrade came from, for logs (the URL without secrets). */
export interface UpgradeOrigin {
  url: string;
  remote?: string;
}

export interface HandshakeGateDeps {
  logger: Logger;
  authenticate: GatewayDeps['authenticate'];
  authFailures?: AuthFailureLimiter | undefined;
  allowQueryTokens: boolean;
  /** False once the gateway drains: new sessions get 503. */
  accepting(): boolean;
  /** A new session epoch from the database sequence. */
  nextEpoch(): Promise<number>;
  /** The WebSocket is open: the gateway takes the session from here. */
  onConnection(ws: WebSocket, runnerId: string, epoch: number, token: string, where: UpgradeOrigin): void;
}

/** Turns upgrade requests on `/ws/agent` into authenticated sockets, or into HTTP errors. */
export class HandshakeGate {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: HARD_MAX_PAYLOAD_BYTES,
    // We validate UTF-8 ourselves so a bad frame gets a 400 reply instead of a 1007 close.
    skipUTF8Validation: true,
    perMessageDeflate: false,
    clientTracking: false,
  });
  /** revoke() marks: a handshake authenticated before a revocation is refused. */
  private revocations = 0;
  private readonly revokedAt = new Map<string, number>();

  constructor(private readonly deps: HandshakeGateDeps) {}

  /** A runner's credentials were revoked: handshakes of it still in flight are refused. */
  revoke(runnerId: string): void {
    this.revocations += 1;
    this.revokedAt.set(runnerId, this.revocations);
  }

  onUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
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
      this.deps.logger.error({ err, url: stripSecretsFromUrl(req.url ?? '') }, 'agent handshake failed');
      rejectUpgrade(socket, 500, 'Internal server error');
    });
  }

  close(): void {
    this.wss.close();
  }

  private async handshake(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const { logger } = this.deps;
    const limiter = this.deps.authFailures;
    const where = { url: stripSecretsFromUrl(req.url ?? ''), remote: limiter ? limiter.addressOf(req) : req.socket.remoteAddress };
    if (!this.deps.accepting()) return rejectUpgrade(socket, 503, 'Controller instance is shutting down', { 'Retry-After': '1' });
    if (limiter?.isRequestBlocked(req)) return rejectUpgrade(socket, 429, TOO_MANY_FAILED_AUTHENTICATIONS, { 'Retry-After': '60' });
    const creds = readCredentials(req, url, { allowQueryToken: this.deps.allowQueryTokens });
    if (!creds.ok) {
      limiter?.recordRequestFailure(req, 'agent');
      logger.warn({ ...where }, `agent handshake rejected: ${creds.detail}`);
      return rejectUpgrade(socket, creds.status, creds.detail);
    }
    const revocationMark = this.revocations;
    let identity: { runnerId: string } | null;
    try {
      identity = await this.deps.authenticate(creds.runnerId, creds.token);
    } catch (err) {
      logger.error({ ...where, err }, 'agent handshake: runner registry unavailable');
      return rejectUpgrade(socket, 503, 'Runner registry unavailable', { 'Retry-After': '5' });
    }
    if (!identity || (creds.runnerId !== undefined && identity.runnerId !== creds.runnerId)) {
      limiter?.recordRequestFailure(req, 'agent');
      logger.warn({ ...where, runnerId: creds.runnerId }, 'agent handshake rejected: invalid credentials');
      return rejectUpgrade(socket, 403, 'Invalid credentials');
    }
    const runnerId = identity.runnerId;
    let epoch: number;
    try {
      epoch = await this.deps.nextEpoch();
    } catch (err) {
      logger.error({ ...where, runnerId, err }, 'agent handshake: database unavailable');
      return rejectUpgrade(socket, 503, 'Database unavailable', { 'Retry-After': '5' });
    }
    if (!this.deps.accepting()) return rejectUpgrade(socket, 503, 'Controller instance is shutting down', { 'Retry-After': '1' });
    if ((this.revokedAt.get(runnerId) ?? 0) > revocationMark) {
      logger.warn({ ...where, runnerId }, 'agent handshake rejected: credentials revoked during the handshake');
      return rejectUpgrade(socket, 403, 'Invalid credentials');
    }
    if (socket.destroyed) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.deps.onConnection(ws, runnerId, epoch, creds.token, where));
  }
}

export type HandshakeCredentials =
  | { ok: true; runnerId: string | undefined; token: string }
  | { ok: false; status: 401; detail: string };

/**
 * `Authorization: Bearer <token>` (runner id optional in the query), or e2epool's
 * `?runner_id=<id>&token=<token>`. The header wins when both are present.
 */
export function readCredentials(req: IncomingMessage, url: URL, opts: { allowQueryToken?: boolean } = {}): HandshakeCredentials {
  const runnerId = url.searchParams.get('runner_id') || undefined;
  const header = req.headers.authorization;
  if (header !== undefined) {
    // Case-sensitive prefix, as e2epool's HTTP auth (`bearer x` is rejected).
    if (!header.startsWith('Bearer ')) return { ok: false, status: 401, detail: 'Invalid authorization header' };
    const token = header.slice('Bearer '.length).trim();
    if (!token) return { ok: false, status: 401, detail: 'Invalid authorization header' };
    return { ok: true, runnerId, token };
  }
  const token = url.searchParams.get('token');
  if (token && opts.allowQueryToken === false) return { ok: false, status: 401, detail: 'Send the token in the Authorization header: tokens in the URL are turned off on this controller' };
  if (!token) return { ok: false, status: 401, detail: 'Missing credentials: send Authorization: Bearer <token> or ?runner_id=&token=' };
  return { ok: true, runnerId, token };
}

/** Answers the upgrade with a plain HTTP error and closes the socket (no WebSocket is accepted). */
export function rejectUpgrade(socket: Duplex, status: number, detail: string, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ detail });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  // end() flushes the response; make sure a peer that never reads does not keep the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
}
