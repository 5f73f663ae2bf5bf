import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'vitest';
import { generateRunnerToken, hashToken, pepperFingerprint, tokenHashesEqual } from '../../src/inventory/token-hash.js';

describe('runner token hashing', () => {
  it('hashToken is hex HMAC-SHA256 keyed by the pepper', () => {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert.equal(hashToken('Jefe', 'what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    assert.equal(hashToken('pepper', 'tok'), createHmac('sha256', 'pepper').update('tok').digest('hex'));
    assert.notEqual(hashToken('pepper-a', 'tok'), hashToken('pepper-b', 'tok'), 'the pepper changes every hash');
    assert.match(hashToken('p', ''), /^[0-9a-f]{64}$/);
  });

  it('generateRunnerToken gives 43 URL-safe base64 characters (32 bytes, no padding), never twice the same', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const token = generateRunnerToken();
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(token, 'base64url').length, 32);
      seen.add(token);
    }
    assert.equal(seen.size, 200);
  });

  it('tokenHashesEqual compares in constant time and answers false for any difference, including length', () => {
    const h = hashToken('p', 'token');
    assert.equal(tokenHashesEqual(h, hashToken('p', 'token')), true);
    const flipped = (h[0] === 'a' ? 'b' : 'a') + h.slice(1);
    assert.equal(tokenHashesEqual(h, flipped), false);
    assert.equal(tokenHashesEqual(h, h.slice(0, 63)), false);
    assert.equal(tokenHashesEqual(h, ''), false);
  });

  it('pepperFingerprint identifies a pepper without revealing it', () => {
    assert.equal(pepperFingerprint('a'), pepperFingerprint('a'));
    assert.notEqual(pepperFingerprint('a'), pepperFingerprint('b'));
    assert.ok(!pepperFingerprint('secret-pepper').includes('secret'));
  });
});
