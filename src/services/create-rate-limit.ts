// Per-runner token bucket for creates that would start a workflow. In memory per instance: it only
// keeps a misbehaving job from flooding Temporal; the database enforces the real invariant.

export interface CreateRateLimitSettings {
  /** Creates allowed at once. */
  burst: number;
  /** Tokens added per minute. */
  perMinute: number;
}

export const DEFAULT_CREATE_RATE_LIMIT: CreateRateLimitSettings = { burst: 6, perMinute: 6 };

interface Bucket {
  tokens: number;
  at: number;
}

export class CreateRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly settings: CreateRateLimitSettings = DEFAULT_CREATE_RATE_LIMIT,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(settings.burst >= 1) || !(settings.perMinute > 0)) throw new Error('create rate limit needs burst >= 1 and perMinute > 0');
  }

  /** Takes one token for this runner; false when none is left. */
  take(runnerId: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(runnerId) ?? { tokens: this.settings.burst, at: now };
    const refilled = Math.min(this.settings.burst, bucket.tokens + ((now - bucket.at) / 60_000) * this.settings.perMinute);
    if (refilled < 1 - 1e-9) { // tolerate floating-point drift in the refill sum
      this.buckets.set(runnerId, { tokens: refilled, at: now });
      return false;
    }
    this.buckets.set(runnerId, { tokens: refilled - 1, at: now });
    this.prune(now);
    return true;
  }

  /** Full buckets carry no information: drop them so the map stays as small as the busy runners. */
  private prune(now: number): void {
    if (this.buckets.size < 1024) return;
    for (const [runnerId, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 60_000) * this.settings.perMinute >= this.settings.burst) this.buckets.delete(runnerId);
    }
  }
}
