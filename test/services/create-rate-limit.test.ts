// The per-runner create token bucket and the timings the API hands to every checkpoint workflow.
import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { checkpointTimingsFromConfig, FIXED_TIMINGS } from '../../src/services/checkpoint-timings.js';
import { CreateRateLimiter } from '../../src/services/create-rate-limit.js';

describe('CreateRateLimiter', () => {
  it('allows the burst, refuses the next, refills at the rate, and keeps runners apart', () => {
    let now = 0;
    const limiter = new CreateRateLimiter({ burst: 3, perMinute: 6 }, () => now);
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('r1')), [true, true, true, false]);
    assert.equal(limiter.take('r2'), true, 'another runner has its own bucket');
    now += 9_000; // 0.9 token
    assert.equal(limiter.take('r1'), false);
    now += 1_000; // 1 token
    assert.equal(limiter.take('r1'), true);
    assert.equal(limiter.take('r1'), false);
    now += 10 * 60_000; // refills to the burst, never beyond
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('r1')), [true, true, true, false]);
  });

  it('refuses nonsensical settings', () => {
    assert.throws(() => new CreateRateLimiter({ burst: 0, perMinute: 1 }));
    assert.throws(() => new CreateRateLimiter({ burst: 1, perMinute: 0 }));
  });
});

describe('checkpointTimingsFromConfig', () => {
  it('takes every timing that has a setting from config and the rest from the fixed table', () => {
    const config = loadConfig({}, { CHECKPOINT_TTL_SECONDS: 111, FINALIZE_COOLDOWN_SECONDS: 7, POLLER_ENABLED: 'false', AGENT_ROUTE_ATTEMPTS: 3, READINESS_STABLE_SECONDS: 0 });
    const t = checkpointTimingsFromConfig(config);
    assert.equal(t.ttlSeconds, 111);
    assert.equal(t.cooldownSeconds, 7);
    assert.equal(t.pollerEnabled, false);
    assert.equal(t.agentRouteAttempts, 3);
    assert.equal(t.readinessStableSeconds, 0);
    assert.equal(t.maxTtlSeconds, config.CHECKPOINT_MAX_TTL_SECONDS);
    assert.equal(t.createWaitForCleanupSeconds, config.CREATE_WAIT_FOR_CLEANUP_SECONDS);
    assert.equal(t.commandTimeoutSeconds, config.COMMAND_TIMEOUT_SECONDS);
    assert.equal(t.createAcceptWindowSeconds, 120);
    assert.equal(t.idlePollSeconds, 5);
    assert.equal(t.pauseBudgetSeconds, 300);
    assert.equal(t.unpauseAlertAfterSeconds, 600);
    assert.equal(t.backendStepTimeoutSeconds, FIXED_TIMINGS.backendStepTimeoutSeconds);
    for (const [key, value] of Object.entries(t)) assert.ok(typeof value === 'number' ? Number.isFinite(value) : typeof value === 'boolean', key);
  });
});
