// Per-session flood protection: a token bucket for inbound frames, and a second bucket that counts
// rejections so that a sustained flood (not a short burst) closes the connection.

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.updatedAt = now;
  }

  /** Takes one token if available. `now` is in milliseconds (monotonic clock). */
  take(now: number): boolean {
    const elapsed = Math.max(0, now - this.updatedAt) / 1000;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.ratePerSecond);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface RateLimitSettings {
  /** Frames per second a session may send on average. */
  messagesPerSecond: number;
  /** Frames a session may send at once above the average. */
  burst: number;
  /** Rejected frames tolerated at once before the connection is closed. */
  rejectedBurst: number;
  /** Rejected frames per second tolerated on average (a slightly-too-fast agent is not cut off). */
  rejectedPerSecond: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitSettings = { messagesPerSecond: 50, burst: 100, rejectedBurst: 200, rejectedPerSecond: 10 };

export type FloodVerdict = 'accept' | 'reject' | 'close';

export class FloodGuard {
  private readonly frames: TokenBucket;
  private readonly rejections: TokenBucket;

  constructor(settings: RateLimitSettings, now: number) {
    this.frames = new TokenBucket(settings.messagesPerSecond, settings.burst, now);
    this.rejections = new TokenBucket(settings.rejectedPerSecond, settings.rejectedBurst, now);
  }

  /** Accounts one inbound frame: accept it, answer 429, or close the connection (1008). */
  check(now: number): FloodVerdict {
    if (this.frames.take(now)) return 'accept';
    return this.rejections.take(now) ? 'reject' : 'close';
  }
}
