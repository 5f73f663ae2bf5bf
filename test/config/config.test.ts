import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { ConfigError, loadConfig } from '../../src/config.js';
import { renderConfigurationReference } from '../../src/config-reference.js';

describe('configuration', () => {
  it('has working defaults: embedded PGlite, local Temporal, e2epool timings', () => {
    const c = loadConfig({});
    assert.equal(c.DATABASE_URL, 'pglite:.data/pglite');
    assert.equal(c.PORT, 8080);
    assert.equal(c.TEMPORAL_ADDRESS, 'localhost:7233');
    assert.equal(c.TEMPORAL_NAMESPACE, 'default');
    assert.equal(c.CHECKPOINT_TTL_SECONDS, 1800);
    assert.equal(c.POLLER_INTERVAL_SECONDS, 20);
    assert.equal(c.POLLER_MIN_AGE_SECONDS, 120);
    assert.equal(c.FINALIZE_COOLDOWN_SECONDS, 5);
    assert.equal(c.READINESS_TIMEOUT_SECONDS, 120);
    assert.equal(c.WS_HEARTBEAT_TIMEOUT, 90);
    assert.equal(c.HTTPX_TIMEOUT, 30);
    assert.equal(c.POLLER_ENABLED, true);
    assert.equal(c.ADMIN_TOKEN, undefined);
  });

  it('reads E2EPOOL_* variables, coerces numbers and booleans, and treats empty as unset', () => {
    const c = loadConfig({ E2EPOOL_PORT: '9000', E2EPOOL_POLLER_ENABLED: 'false', E2EPOOL_ADMIN_TOKEN: '', E2EPOOL_DATABASE_URL: 'postgresql://u@db:5432/e2epool' });
    assert.equal(c.PORT, 9000);
    assert.equal(c.POLLER_ENABLED, false);
    assert.equal(c.ADMIN_TOKEN, undefined);
    assert.equal(c.DATABASE_URL, 'postgresql://u@db:5432/e2epool');
  });

  it('names every bad key and why in one error', () => {
    assert.throws(
      () => loadConfig({ E2EPOOL_PORT: 'eighty', E2EPOOL_DATABASE_URL: 'mysql://x', E2EPOOL_LOG_LEVEL: 'loud', E2EPOOL_CHECKPOINT_TTL_SECONDS: '-5', E2EPOOL_GITLAB_URL: 'not a url' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const keys = err.problems.map((p) => p.split(':')[0]).sort();
        assert.deepEqual(keys, ['E2EPOOL_CHECKPOINT_TTL_SECONDS', 'E2EPOOL_DATABASE_URL', 'E2EPOOL_GITLAB_URL', 'E2EPOOL_LOG_LEVEL', 'E2EPOOL_PORT']);
        assert.match(err.message, /E2EPOOL_DATABASE_URL: must be pglite:<dir> or a postgres/);
        return true;
      },
    );
  });

  it('stops the CLI with exit code 1 and the message on a bad value', () => {
    const r = spawnSync(process.execPath, ['bin/e2epool.js', 'migrate'], { env: { ...process.env, E2EPOOL_PORT: 'x', E2EPOOL_HTTPX_TIMEOUT: '0' }, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /E2EPOOL_PORT/);
    assert.match(r.stderr, /E2EPOOL_HTTPX_TIMEOUT/);
  });

  it('docs/configuration.md is generated from the schema and up to date', () => {
    const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    assert.equal(committed, renderConfigurationReference(), 'docs/configuration.md is stale: run npm run docs:config');
    assert.match(committed, /E2EPOOL_ADMIN_TOKEN.*Secret/);
  });
});
