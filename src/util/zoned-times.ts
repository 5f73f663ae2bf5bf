// Every timestamp the HTTP API and the agent WebSocket answer is ISO 8601 in UTC with its zone (`…Z`). The read model
// writes some times without a zone (as the Python e2epool did) and raw SQL can hand over database
// text (`2026-12-01 10:00:00+00`); this turns both into `2026-12-01T10:00:00.000Z` before they
// leave. Only values under timestamp keys (`at`, `…_at`, `…At`) are touched.
const NAIVE_ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?$/;
const DATABASE_TEXT = /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d(?::?\d\d)?)$/;

export const isTimestampKey = (key: string) => key === 'at' || key.endsWith('_at') || /[a-z]At$/.test(key);

/** One timestamp in the API's form; anything that is not a timestamp is returned unchanged. */
export function zonedTime(value: string): string {
  if (NAIVE_ISO.test(value)) return new Date(`${value}Z`).toISOString();
  if (DATABASE_TEXT.test(value) && !/T.*Z$/.test(value)) {
    const d = new Date(value.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00'));
    if (!Number.isNaN(d.getTime())) return d.toISOString();
  }
  return value;
}

/** A copy of `value` with every timestamp under a timestamp key in the API's form. */
export function zoneTimestamps<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => zoneTimestamps(v)) as T;
  if (value instanceof Date) return value.toISOString() as T;
  if (!value || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'string' && isTimestampKey(key)) out[key] = zonedTime(v);
    else out[key] = zoneTimestamps(v);
  }
  return out as T;
}
