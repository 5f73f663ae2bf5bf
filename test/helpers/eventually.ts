// The one polling helper of the suite: waits until a check gives a value, or fails naming what it
// waited for (with the check's last error, which is usually the reason).
import { setTimeout as sleep } from 'node:timers/promises';

export interface EventuallyOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

type Value<T> = Exclude<Awaited<T>, undefined | null | false | 0 | ''>;

/**
 * Polls `check` until it returns a truthy value, and returns it. A check that throws is tried again; after `timeoutMs` the error names
 * `what` (a function is called then, so it can describe the state at that moment).
 */
export async function eventually<T>(what: string | (() => string), check: () => T, options: EventuallyOptions | number = {}): Promise<Value<T>> {
  const { timeoutMs = 15_000, intervalMs = 50 } = typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Value<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const label = typeof what === 'function' ? what() : what;
      const reason = lastError === undefined ? '' : `: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}${reason}`);
    }
    await sleep(intervalMs);
  }
}
