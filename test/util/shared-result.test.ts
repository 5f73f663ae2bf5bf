import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { sharedResult } from '../../src/util/shared-result.js';

describe('sharedResult', () => {
  it('runs once for concurrent callers, reuses the answer for its lifetime, and never keeps a failure', async () => {
    let clock = 0;
    let runs = 0;
    let fail = false;
    const get = sharedResult(async () => {
      runs += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (fail) throw new Error('database down');
      return runs;
    }, 2000, () => clock);
    assert.deepEqual(await Promise.all(Array.from({ length: 50 }, () => get())), Array(50).fill(1));
    clock += 1999;
    assert.equal(await get(), 1);
    clock += 1;
    fail = true;
    await assert.rejects(get(), /database down/);
    fail = false;
    assert.equal(await get(), 3, 'a failure is not cached');
  });
});
