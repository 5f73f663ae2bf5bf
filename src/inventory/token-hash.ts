// Runner tokens are stored as HMAC-SHA256(TOKEN_PEPPER, token): a leaked table gives no usable token,
// and the hash is deterministic so it can carry a unique index and be looked up directly.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Shortest runner token, admin token or pepper accepted anywhere. */
export const MIN_TOKEN_LENGTH = 24;

/** Used when E2EPOOL_TOKEN_PEPPER is unset (development); the registry warns about it. */
export const DEVELOPMENT_TOKEN_PEPPER = 'e2epool-development-pepper-do-not-use-in-production';

/** Hex HMAC-SHA256 of the token keyed by the pepper (64 lowercase hex characters). */
export function hashToken(pepper: string, token: string): string {
  return createHmac('sha256', pepper).update(token, 'utf8').digest('hex');
}

/** 32 random bytes, URL-safe base64 without padding (43 characters), as e2epool issued them. */
export function generateRunnerToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time equality of two hex hashes; false (not an exception) when they cannot match. */
export function tokenHashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  if (left.length !== right.length) return false;
  return timingSafeEqual(left, right);
}

/** Identifies a pepper without revealing it, so a pepper change forces an inventory re-sync. */
export function pepperFingerprint(pepper: string): string {
  return hashToken(pepper, 'e2epool:pepper-fingerprint').slice(0, 16);
}
