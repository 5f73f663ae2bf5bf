// The CLI side of the IPC socket: connect, send one framed request, read one framed reply.
import net from 'node:net';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from './ipc-framing.js';

export type IpcFailure =
  | 'socket_not_found'
  | 'connection_refused'
  | 'permission_denied'
  | 'timeout'
  | 'closed'
  | 'protocol'
  | 'other';

export class IpcClientError extends Error {
  constructor(readonly kind: IpcFailure, message: string, readonly errno?: string) {
    super(message);
    this.name = 'IpcClientError';
  }
}

const connectFailures: Record<string, IpcFailure> = {
  ENOENT: 'socket_not_found',
  ECONNREFUSED: 'connection_refused',
  ENOTSOCK: 'connection_refused',
  EACCES: 'permission_denied',
  EPERM: 'permission_denied',
};

/** Sends one request; resolves with the agent's reply object or rejects with an IpcClientError. */
export function sendIpcRequest(
  socketPath: string,
  request: Record<string, unknown>,
  opts: { timeoutMs: number; maxFrameBytes?: number },
): Promise<Record<string, unknown>> {
  const maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
  let frame: Buffer;
  try {
    frame = encodeFrame(request, maxFrameBytes);
  } catch (err: any) {
    return Promise.reject(new IpcClientError('protocol', String(err?.message ?? err)));
  }
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const decoder = new FrameDecoder(maxFrameBytes);
    let connected = false;
    let done = false;
    const finish = (err: IpcClientError | null, value?: Record<string, unknown>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(
      () => finish(new IpcClientError('timeout', `agent did not answer within ${Math.round(opts.timeoutMs / 1000)}s`)),
      opts.timeoutMs,
    );
    socket.once('connect', () => {
      connected = true;
      socket.write(frame);
    });
    socket.on('data', (chunk) => {
      const first = decoder.push(chunk)[0];
      if (!first) return;
      if (!first.ok) return finish(new IpcClientError('protocol', first.error));
      const value = first.value;
      if (!value || typeof value !== 'object' || Array.isArray(value)) {
        return finish(new IpcClientError('protocol', 'agent reply is not a JSON object'));
      }
      finish(null, value as Record<string, unknown>);
    });
    socket.on('end', () => finish(new IpcClientError('closed', 'Agent closed connection')));
    socket.on('close', () => finish(new IpcClientError('closed', 'Agent closed connection')));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const kind = !connected && err.code ? connectFailures[err.code] : undefined;
      finish(new IpcClientError(kind ?? 'other', err.message, err.code));
    });
  });
}
