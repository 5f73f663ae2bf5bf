// Paths match exactly: `/METRICS` and `/metrics/` are not `/metrics`, so a proxy rule on a path
// cannot be slipped past by a variant of it.
export const STRICT_ROUTING = { caseSensitive: true, strict: true } as const;
