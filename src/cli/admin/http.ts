// The admin API over HTTP: one request, the admin token as a bearer token, JSON both ways. A 4xx or
// 5xx answer becomes an AdminRefusedError carrying the controller's own message; no answer at all
// becomes an AdminUnreachableError naming the URL and where it came from.
import type { AdminConnection } from './connection.js';
import { AdminRefusedError, AdminUnreachableError } from './errors.js';

export interface AdminRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** How long to wait for the answer. */
  timeoutMs: number;
}

/** The controller's `detail`: a string, or FastAPI-style items (`loc: msg`). */
export function detailText(body: unknown, status: number, statusText: string): string {
  const detail = body && typeof body === 'object' ? (body as Record<string, unknown>).detail : undefined;
  if (typeof detail === 'string' && detail) return detail;
  if (Array.isArray(detail) && detail.length > 0) {
    return detail
      .map((item) => {
        if (!item || typeof item !== 'object') return String(item);
        const { loc, msg } = item as { loc?: unknown; msg?: unknown };
        return Array.isArray(loc) ? `${loc.join('.')}: ${String(msg)}` : String(msg);
      })
      .join('; ');
  }
  return `HTTP ${status}${statusText ? ` ${statusText}` : ''}`;
}

function failureCode(err: unknown): string {
  // fetch's TypeError('fetch failed') wraps the system error (ECONNREFUSED, ENOTFOUND, a TLS code).
  let cause: unknown = err;
  let message = (err as Error)?.message ?? String(err);
  for (let depth = 0; depth < 5 && cause; depth++) {
    const c = cause as { code?: unknown; errors?: unknown[]; cause?: unknown; message?: unknown };
    if (typeof c.code === 'string') return typeof c.message === 'string' && c.message.includes(c.code) ? c.message : `${c.code}${c.message ? ` (${String(c.message)})` : ''}`;
    if (typeof c.message === 'string' && c.message) message = c.message;
    cause = Array.isArray(c.errors) && c.errors.length > 0 ? c.errors[0] : c.cause;
  }
  return message;
}

export async function adminRequest<T = unknown>(connection: AdminConnection, req: AdminRequest): Promise<T> {
  const url = new URL(`${connection.url}${req.path}`);
  for (const [key, value] of Object.entries(req.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
  const headers: Record<string, string> = { authorization: `Bearer ${connection.token}`, accept: 'application/json' };
  let body: string | undefined;
  if (req.body !== undefined) {
    body = JSON.stringify(req.body);
    headers['content-type'] = 'application/json';
  }
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { method: req.method, headers, body, signal: AbortSignal.timeout(req.timeoutMs), redirect: 'manual' });
    text = await res.text();
  } catch (err) {
    const name = (err as Error)?.name;
    const why = name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${Math.round(req.timeoutMs / 1000)} s` : failureCode(err);
    throw new AdminUnreachableError(`cannot reach the controller at ${connection.url} (from ${connection.sources.url}): ${why}`);
  }
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (a proxy's error page): the status says enough.
  }
  if (res.status >= 300) throw new AdminRefusedError(res.status, detailText(parsed, res.status, res.statusText), parsed);
  if (parsed === undefined && text) throw new AdminUnreachableError(`the answer of ${req.method} ${req.path} is not JSON: is ${connection.url} (from ${connection.sources.url}) an e2epool controller?`);
  return parsed as T;
}
