// The boot id an agent reports in its hello: the kernel's, unless a simulated host names its own.
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readBootId } from '../../agent/daemon.js';

describe('agent boot id', () => {
  it("is the kernel's boot id on Linux, else one per process", () => {
    const file = '/proc/sys/kernel/random/boot_id';
    if (existsSync(file)) assert.equal(readBootId({}), readFileSync(file, 'utf8').trim());
    else assert.match(readBootId({}), /^[0-9a-f-]{36}$/);
  });

  it('is E2EPOOL_AGENT_BOOT_ID when a simulated host sets it (blank is ignored)', () => {
    assert.equal(readBootId({ E2EPOOL_AGENT_BOOT_ID: 'guest-boot-7' }), 'guest-boot-7');
    assert.notEqual(readBootId({ E2EPOOL_AGENT_BOOT_ID: '  ' }), '');
  });
});
