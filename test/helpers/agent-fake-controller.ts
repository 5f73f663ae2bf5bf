// A small real WebSocket server that plays the controller side of the e2epool agent protocol (§5)
// plus `hello`, for the agent integration tests. Each test decides how requests are answered.
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';

export type Envelope = Record<string, any>;
export type RequestAnswer = (msg: Envelope, session: Session) => Envelope | null | Promise<Envelope | null>;

export interface Session {
  ws: WebSocket;
  url: URL;
  authorization: string | undefined;
  received: Envelope[];
  closed: boolean;
  closeCode?: number;
}

export class FakeController {
  readonly sessions: Session[] = [];
  /** Answers per request type; unanswered types get a 400 like e2epool. */
  answers: Record<string, RequestAnswer> = {};
  /** When false, app-level pings get no pong and protocol pings get no pong either. */
  respondToPings = true;
  epoch = 0;
  private http: http.Server | null = null;
  private wss: WebSocketServer | null = null;
  port = 0;

  constructor(readonly runnerId = 'runner-1', readonly token = 'tok-SECRET-8f3a9c', readonly instanceId = 'ctl-a') {
    this.answers.ping = (m) => ({ id: m.id, status: 'ok', data: { pong: true }, error: null });
    this.answers.hello = (m) => ({ id: m.id, status: 'ok', data: { session_epoch: ++this.epoch, instance_id: this.instanceId }, error: null });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws/agent`;
  }

  get last(): Session | undefined {
    return this.sessions[this.sessions.length - 1];
  }

  async start(port = this.port): Promise<void> {
    const server = http.createServer((_req, res) => res.writeHead(404).end());
    const wss = new WebSocketServer({
      noServer: true,
      autoPong: false,
    });
    server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const bearer = req.headers.authorization?.replace(/^Bearer /, '');
      const ok = url.pathname === '/ws/agent' && url.searchParams.get('runner_id') === this.runnerId &&
        (url.searchParams.get('token') === this.token || bearer === this.token);
      if (!ok) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => this.onSession(ws, url, req.headers.authorization));
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.http = server;
    this.wss = wss;
  }

  private onSession(ws: WebSocket, url: URL, authorization: string | undefined): void {
    const session: Session = { ws, url, authorization, received: [], closed: false };
    this.sessions.push(session);
    ws.on('ping', (data) => {
      if (this.respondToPings) ws.pong(data);
    });
    ws.on('close', (code) => {
      session.closed = true;
      session.closeCode = code;
    });
    ws.on('message', async (raw) => {
      const msg = JSON.parse(raw.toString()) as Envelope;
      session.received.push(msg);
      if ('status' in msg) return; // a command reply, awaited by sendCommand
      if (msg.type === 'ping' && !this.respondToPings) return;
      const answer = this.answers[msg.type];
      const reply = answer
        ? await answer(msg, session)
        : { id: msg.id ?? '', status: 'error', error: { code: 400, detail: `Unknown type ${msg.type}` } };
      if (reply && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(reply));
    });
  }

  /** Sends a controller → agent command and waits for the reply with the same id. */
  sendCommand(session: Session, msg: Envelope, timeoutMs = 5000): Promise<Envelope> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${msg.id}`)), timeoutMs);
      const onMessage = (raw: WebSocket.RawData) => {
        const reply = JSON.parse(raw.toString());
        if (reply.id === msg.id && 'status' in reply) {
          clearTimeout(timer);
          session.ws.off('message', onMessage);
          resolve(reply);
        }
      };
      session.ws.on('message', onMessage);
      session.ws.send(JSON.stringify(msg));
    });
  }

  /** Resolves when `count` sessions have said hello. */
  async waitForSessions(count: number, timeoutMs = 5000): Promise<Session> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const helloed = this.sessions.filter((s) => !s.closed && s.received.some((m) => m.type === 'hello'));
      if (this.sessions.filter((s) => s.received.some((m) => m.type === 'hello')).length >= count && helloed.length > 0) {
        return helloed[helloed.length - 1]!;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`expected ${count} agent sessions, saw ${this.sessions.length}`);
  }

  /** Stops listening and drops every session (no close frame, like a crashed controller). */
  async stop(): Promise<void> {
    for (const s of this.sessions) if (!s.closed) s.ws.terminate();
    this.wss?.close();
    const server = this.http;
    this.http = null;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
