// Constant-time comparison of secrets. Both sides are hashed first so the comparison always runs on
// equal-length digests and neither the length nor a matching prefix of the secret leaks.
import { createHash, timingSafeEqual } from 'node:crypto';

export function constantTimeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}
