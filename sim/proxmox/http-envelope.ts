// Proxmox's HTTP envelope: request bodies (form or JSON) read into parameters, `{ data }` answers,
// and errors whose message rides in the HTTP reason phrase.
import type http from 'node:http';

export class ApiFailure extends Error {
  constructor(readonly status: number, message: string, readonly errors?: Record<string, string>) {
    super(message);
  }
}

export function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 1_000_000) {
        reject(new ApiFailure(413, 'request entity too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function parseParams(url: URL, body: string, contentType: string | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [k, v] of url.searchParams) params[k] = v;
  if (body.length === 0) return params;
  if (contentType?.includes('application/json')) {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object') for (const [k, v] of Object.entries(parsed)) params[k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
  } else {
    for (const [k, v] of new URLSearchParams(body)) params[k] = v;
  }
  return params;
}

export /** Proxmox's error envelope: the reason phrase carries the message, the body repeats it. */
function sendError(res: http.ServerResponse, status: number, message: string, errors?: Record<string, string>): void {
  const reason = message.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, 400).trim() || 'error';
  const body = JSON.stringify({ data: null, message: `${message}\n`, ...(errors ? { errors } : {}) });
  res.writeHead(status, reason, { 'content-type': 'application/json;charset=UTF-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendData(res: http.ServerResponse, data: unknown, status = 200): void {
  const body = JSON.stringify({ data });
  res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
