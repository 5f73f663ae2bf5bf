// One computation for many callers: concurrent calls share the one in flight, and its result is
// reused for `ttlMs`. Keeps unauthenticated floods of /health and /metrics away from the database.
export function sharedResult<T>(compute: () => Promise<T>, ttlMs: number, now: () => number = Date.now): () => Promise<T> {
  let cached: { at: number; value: T } | null = null;
  let inFlight: Promise<T> | null = null;
  return () => {
    if (cached && now() - cached.at < ttlMs) return Promise.resolve(cached.value);
    if (inFlight) return inFlight;
    inFlight = compute().then(
      (value) => {
        cached = { at: now(), value };
        inFlight = null;
        return value;
      },
      (err: unknown) => {
        inFlight = null;
        throw err;
      },
    );
    return inFlight;
  };
}
