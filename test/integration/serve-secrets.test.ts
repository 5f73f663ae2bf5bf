// `serve` and `worker` refuse to start without a token pepper or with short secrets, before they
// open anything; the message names every problem and no secret.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../temporal/tool-paths.js';

function run(command: string, env: Record<string, string>) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('E2EPOOL_')));
  return spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'e2epool.js'), command], { env: { ...clean, E2EPOOL_DATABASE_URL: 'pglite:memory', E2EPOOL_TEMPORAL_ADDRESS: '127.0.0.1:1', ...env }, encoding: 'utf8', timeout: 60_000 });
}

describe('production secrets', () => {
  for (const command of ['serve', 'worker']) {
    it(`${command} refuses to start without E2EPOOL_TOKEN_PEPPER or with a short admin token`, () => {
      const result = run(command, { E2EPOOL_ADMIN_TOKEN: 'short-admin-secret' });
      assert.equal(result.status, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`e2epool ${command} refuses to start`));
      assert.match(result.stderr, /E2EPOOL_TOKEN_PEPPER is not set/);
      assert.match(result.stderr, /E2EPOOL_ADMIN_TOKEN is shorter than 24 characters/);
      assert.ok(!result.stderr.includes('short-admin-secret'), 'the secret itself is not printed');
    });
  }
});
