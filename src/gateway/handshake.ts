// Credentials of an agent's upgrade request, and HTTP rejections of the upgrade.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

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
