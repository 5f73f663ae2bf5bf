// Failed authentications per remote address (HTTP and agent handshakes alike): past the limit in a
// minute, the address gets 429 without its credentials being checked until the minute is over.
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../logger.js';
import { clientAddressResolver, type ClientAddressOf } from './client-address.js';

export interface AuthFailureLimits {
  /** Failed authentications one address may make per minute; 0 disables the limit. */
  perMinute: number;
  /** Proxies whose X-Forwarded-For names the client (E2EPOOL_TRUSTED_PROXIES). */
  trustedProxies?: readonly string[];
}

const WINDOW_MS = 60_000;
/** Addresses tracked at once; the oldest windows go first beyond it. */
const MAX_TRACKED = 10_000;

export class AuthFailureLimiter {
  private readonly windows = new Map<string, { startedAt: number; failures: number; logged: boolean }>();
  /** The client's address of a request, through trusted proxies. */
  readonly addressOf: ClientAddressOf;

  constructor(
    private readonly limits: AuthFailureLimits,
    private readonly logger?: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.addressOf = clientAddressResolver(limits.trustedProxies ?? []);
  }

  /** Whether the request's client is over its limit now. */
  isRequestBlocked(req: IncomingMessage): boolean {
    return this.isBlocked(this.addressOf(req));
  }

  recordRequestFailure(req: IncomingMessage, surface: string): void {
    this.recordFailure(this.addressOf(req), surface);
  }

  /** Whether this address is over its limit now (its request is then answered 429). */
  isBlocked(address: string | undefined): boolean {
    if (this.limits.perMinute <= 0) return false;
    const w = this.current(address ?? 'unknown');
    return w !== null && w.failures >= this.limits.perMinute;
  }

  recordFailure(address: string | undefined, surface: string): void {
    if (this.limits.perMinute <= 0) return;
    const key = address ?? 'unknown';
    let w = this.current(key);
    if (!w) {
      if (this.windows.size >= MAX_TRACKED) this.windows.delete(this.windows.keys().next().value!);
      w = { startedAt: this.now(), failures: 0, logged: false };
      this.windows.set(key, w);
    }
    w.failures += 1;
    if (w.failures >= this.limits.perMinute && !w.logged) {
      w.logged = true;
      this.logger?.warn({ remote: key, surface, failures: w.failures }, 'too many failed authentications from one address: answering 429 for the rest of the minute');
    }
  }

  private current(key: string) {
    const w = this.windows.get(key);
    if (!w) return null;
    if (this.now() - w.startedAt >= WINDOW_MS) {
      this.windows.delete(key);
      return null;
    }
    return w;
  }
}

export const TOO_MANY_FAILED_AUTHENTICATIONS = 'Too many failed authentications; try again in a minute';
