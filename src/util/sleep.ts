// A sleep that ends early, without an error, when the signal aborts (loops check the signal next).
import { setTimeout as delay } from 'node:timers/promises';

export async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch(() => undefined);
}
