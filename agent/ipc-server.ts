// The agent's Unix-socket server for the CLI: one framed request and one framed reply per
// connection. The socket is created 0660 (not e2epool's 0666) and given the configured group.
import net from 'node:net';
import { chmodSync, chownSync, lstatSync, unlinkSync } from 'node:fs';
import { encodeFrame, FrameDecoder, FrameTooLargeError, MAX_FRAME_BYTES } from './ipc-framing.js';
import type { AgentLogger } from './log.js';

export type IpcHandler = (request: Record<string, unknown>) => Promise<Record<string, unknown>>;

export interface IpcServerOptions {
  socketPath: string;
  mode: number;
  /** Group id to chown the socket to; null keeps the agent's own group. */
  gid: number | null;
  handler: IpcHandler;
  logger: AgentLogger;
  /** A client that sends no complete request within this time is disconnected. */
  requestReadTimeoutMs?: number;
  maxFrameBytes?: number;
}

export function ipcError(id: string, code: number, detail: string): Record<string, unknown> {
  return { id, status: 'error', data: null, error: { code, detail } };
}

export class IpcServer {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly inFlight = new Set<Promise<void>>();
  private closing = false;

  constructor(private readonly opts: IpcServerOptions) {}

  get activeRequests(): number {
    return this.inFlight.size;
  }

  /** Binds the socket. Refuses when another agent is listening; removes a stale socket file. */
  async start(): Promise<void> {
    const { socketPath } = this.opts;
    await this.removeStaleSocket();
    // Half-open: a client that shuts down its write side after the request still gets the reply.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket));
    // The socket file takes the process umask at bind time: keep it private until chmod/chown.
    const previousUmask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(previousUmask);
    }
    try {
      if (this.opts.gid !== null) chownSync(socketPath, -1, this.opts.gid);
      chmodSync(socketPath, this.opts.mode);
    } catch (err) {
      server.close();
      throw err;
    }
    server.on('error', (err) => this.opts.logger.error({ err: err.message }, 'IPC server error'));
    this.server = server;
  }

  private async removeStaleSocket(): Promise<void> {
    const { socketPath } = this.opts;
    let isSocket: boolean;
    try {
      isSocket = lstatSync(socketPath).isSocket();
    } catch (err: any) {
      if (err?.code === 'ENOENT') return;
      throw err;
    }
    if (!isSocket) throw new Error(`${socketPath} exists and is not a socket; remove it or set socket_path`);
    const live = await new Promise<boolean>((resolve) => {
      const probe = net.connect(socketPath);
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (live) throw new Error(`another agent is already listening on ${socketPath}`);
    unlinkSync(socketPath);
  }

  private onConnection(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(this.opts.requestReadTimeoutMs ?? 10_000, () => socket.destroy());
    const decoder = new FrameDecoder(this.opts.maxFrameBytes ?? MAX_FRAME_BYTES);
    let answered = false;
    socket.on('end', () => {
      if (!answered) socket.destroy();
    });
    socket.on('data', (chunk) => {
      if (answered) return;
      const frames = decoder.push(chunk);
      const first = frames[0];
      if (!first) return;
      answered = true;
      socket.setTimeout(0);
      if (!first.ok) {
        this.reply(socket, ipcError('', 400, first.error));
        return;
      }
      const request = first.value;
      if (!request || typeof request !== 'object' || Array.isArray(request)) {
        this.reply(socket, ipcError('', 400, 'IPC request must be a JSON object'));
        return;
      }
      const task = this.answer(socket, request as Record<string, unknown>);
      this.inFlight.add(task);
      void task.finally(() => this.inFlight.delete(task));
    });
  }

  private async answer(socket: net.Socket, request: Record<string, unknown>): Promise<void> {
    const id = typeof request.id === 'string' ? request.id : '';
    let response: Record<string, unknown>;
    try {
      response = await this.opts.handler(request);
    } catch (err: any) {
      this.opts.logger.error({ err: String(err?.message ?? err) }, 'IPC handler failed');
      response = ipcError(id, 500, 'IPC handler error');
    }
    this.reply(socket, response);
  }

  private reply(socket: net.Socket, response: Record<string, unknown>): void {
    let frame: Buffer;
    try {
      frame = encodeFrame(response, this.opts.maxFrameBytes ?? MAX_FRAME_BYTES);
    } catch (err) {
      const detail = err instanceof FrameTooLargeError ? 'Reply exceeds the IPC maximum size' : 'Reply is not serialisable';
      frame = encodeFrame(ipcError(typeof response.id === 'string' ? response.id : '', 500, detail));
    }
    if (!socket.destroyed) socket.end(frame);
  }

  /**
   * Stops accepting, lets requests in flight finish for up to `graceMs`, then drops the rest and
   * removes the socket file.
   */
  async stop(graceMs: number): Promise<{ unfinished: number }> {
    this.closing = true;
    const server = this.server;
    this.server = null;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    this.unlinkSocket();
    let unfinished = 0;
    if (this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.allSettled([...this.inFlight]).then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), graceMs);
        }),
      ]);
      clearTimeout(timer);
      unfinished = timedOut ? this.inFlight.size : 0;
    }
    for (const socket of this.sockets) socket.destroy();
    await closed;
    return { unfinished };
  }

  private unlinkSocket(): void {
    try {
      if (lstatSync(this.opts.socketPath).isSocket()) unlinkSync(this.opts.socketPath);
    } catch {
      // Already gone.
    }
  }
}
