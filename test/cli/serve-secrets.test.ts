// `serve` and `worker` refuse to start without a token pepper or with short secrets, before they
// open anything; the message names every problem and no secret.
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

  it('serve refuses the example secrets of .env.example, one JSON line on stderr', () => {
    const example = Object.fromEntries(
      readFileSync(path.join(repoRoot, '.env.example'), 'utf8')
        .split('\n')
        .filter((l) => /^E2EPOOL_(ADMIN_TOKEN|TOKEN_PEPPER)=/.test(l))
        .map((l) => l.split('=', 2) as [string, string]),
    );
    assert.equal(Object.keys(example).length, 2);
    const result = run('serve', example);
    assert.equal(result.status, 1, result.stderr);
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, 'one record');
    const record = JSON.parse(lines[0]!) as { level: number; msg: string };
    assert.equal(record.level, 60);
    assert.match(record.msg, /E2EPOOL_TOKEN_PEPPER is still the example value/);
    assert.match(record.msg, /E2EPOOL_ADMIN_TOKEN is still the example value/);
    for (const value of Object.values(example)) assert.ok(!result.stderr.includes(value), 'the value is not printed');
  });
});
