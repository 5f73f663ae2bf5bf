import { test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildConnectUrl, reconnectBackoff } from '../../agent/controller-connection.js';
import { redactUrl } from '../../agent/log.js';

test('backoff doubles from the initial delay up to reconnect_max_delay: 1, 2, 4, ... 32, 60, 60 s', () => {
  const waits: number[] = [];
  let delay = 1000;
  for (let i = 0; i < 9; i += 1) {
    const step = reconnectBackoff(delay, 60_000, () => 0);
    waits.push(step.waitMs / 1000);
    delay = step.nextDelayMs;
  }
  assert.deepEqual(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
});

test('jitter adds at most 10 % of the delay', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 120_000 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (delay, r) => {
      const { waitMs } = reconnectBackoff(delay, 60_000, () => r);
      assert.ok(waitMs >= delay && waitMs < delay * 1.1 + 1e-9);
    }),
  );
});

test('connect URL carries runner_id and token (appended with & after an existing query); logs redact the token', () => {
  assert.equal(buildConnectUrl('ws://c/ws/agent', 'r1', 'a b&c'), 'ws://c/ws/agent?runner_id=r1&token=a%20b%26c');
  assert.equal(buildConnectUrl('wss://c/ws/agent?x=1', 'r1', 't'), 'wss://c/ws/agent?x=1&runner_id=r1&token=t');
  assert.equal(redactUrl(buildConnectUrl('wss://c/ws/agent', 'r1', 'supersecret')), 'wss://c/ws/agent?runner_id=r1&token=***');
});
