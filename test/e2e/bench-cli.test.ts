// The measuring scripts' command lines: --help answers, bad options are usage errors (exit 2)
// before anything is started.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../../temporal/tool-paths.js';

const run = (script: string, args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });

for (const script of ['bench/bench.ts', 'bench/chaos.ts']) {
  test(`${script} --help prints its usage and exits 0`, () => {
    const r = run(script, ['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: npm run (bench|chaos)/);
    assert.match(r.stdout, /--seed|--runners/);
  });
}

test('bad options are usage errors that name the option', () => {
  const bench = run('bench/bench.ts', ['--runners', 'many']);
  assert.equal(bench.status, 2);
  assert.match(bench.stderr, /--runners must be an integer/);
  const agents = run('bench/bench.ts', ['--agents', 'python']);
  assert.equal(agents.status, 2);
  assert.match(agents.stderr, /--agents must be legacy or current/);
  const chaos = run('bench/chaos.ts', ['--minutes', '0']);
  assert.equal(chaos.status, 2);
  assert.match(chaos.stderr, /--minutes must be a number/);
  const unknown = run('bench/chaos.ts', ['--faults', 'all']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /Unknown option '--faults'/);
});
