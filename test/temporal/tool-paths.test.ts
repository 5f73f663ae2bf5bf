// Where the Temporal binaries are looked for, and the error when one is missing.
import assert from 'node:assert/strict';
import path from 'node:path';
import { afterEach, describe, test } from 'vitest';
import { E2epoolError } from '../../src/domain/errors.js';
import { repoRoot, requireTemporalTool, temporalToolPath } from '../../temporal/tool-paths.js';
import { requireTemporalBinaries } from '../helpers/temporal.js';

const saved = { ...process.env };

describe('temporal tool paths', () => {
  afterEach(() => {
    for (const key of ['E2EPOOL_TEMPORAL_CLI', 'E2EPOOL_TEMPORAL_TEST_SERVER', 'CI']) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });

  test('default to the project virtualenv', () => {
    assert.equal(temporalToolPath('cli', {}), path.join(repoRoot, '.tools/venv/bin/temporal'));
    assert.equal(temporalToolPath('test-server', {}), path.join(repoRoot, '.tools/venv/bin/temporal-test-server'));
  });

  test('an env override wins, relative to the repository root', () => {
    assert.equal(requireTemporalTool('cli', { E2EPOOL_TEMPORAL_CLI: process.execPath }), process.execPath);
    assert.equal(temporalToolPath('test-server', { E2EPOOL_TEMPORAL_TEST_SERVER: 'bin/x' }), path.join(repoRoot, 'bin/x'));
  });

  test('a missing binary is an error naming the path, the override and the install command', () => {
    assert.throws(
      () => requireTemporalTool('test-server', { E2EPOOL_TEMPORAL_TEST_SERVER: '/nonexistent/temporal-test-server' }),
      (err: unknown) => {
        assert.ok(err instanceof E2epoolError);
        assert.equal(err.code, 'not_configured');
        assert.match(err.message, /\/nonexistent\/temporal-test-server/);
        assert.match(err.message, /E2EPOOL_TEMPORAL_TEST_SERVER/);
        assert.match(err.message, /bash scripts\/install-tools\.sh/);
        return true;
      },
    );
  });

  test('test helpers fail (never skip) without a binary, with or without CI=true', () => {
    process.env.E2EPOOL_TEMPORAL_CLI = '/nonexistent/temporal';
    for (const ci of ['true', undefined]) {
      if (ci) process.env.CI = ci;
      else delete process.env.CI;
      assert.throws(() => requireTemporalBinaries(['cli']), /bash scripts\/install-tools\.sh/);
    }
  });
});
