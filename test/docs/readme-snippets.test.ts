// The README's GitLab pre_build_script, run by sh as gitlab-runner runs it: a failing create stops
// the job before any of its commands; a successful one exports the checkpoint name to the job.
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const snippet = /^pre_build_script = '(.*)'$/m.exec(readme)?.[1];

/** Runs the snippet, then the job's "script", with an `e2epool` on PATH that behaves as told. */
function job(createExit: number, script = snippet!) {
  const bin = mkdtempSync(path.join(tmpdir(), 'e2epool-snippet-'));
  writeFileSync(path.join(bin, 'e2epool'), `#!/bin/sh\nif [ ${createExit} -ne 0 ]; then echo "Controller is in maintenance mode" >&2; exit ${createExit}; fi\necho job-42-1700000000-abcdef12\n`);
  chmodSync(path.join(bin, 'e2epool'), 0o755);
  return spawnSync('sh', ['-c', `${script}\necho "job ran with checkpoint=$(sh -c 'echo $CHECKPOINT')"`], {
    env: { PATH: `${bin}:/usr/bin:/bin`, CI_JOB_ID: '42', CI_PROJECT_ID: '7' },
    encoding: 'utf8',
  });
}

describe("README's GitLab snippet", () => {
  it('is in the README', () => assert.ok(snippet));

  it('stops the job when the create fails (a controller in maintenance mode answers 503)', () => {
    const r = job(1);
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.stdout, /job ran/);
    assert.match(r.stderr, /maintenance/);
  });

  it('runs the job with CHECKPOINT exported when the create works', () => {
    const r = job(0);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /job ran with checkpoint=job-42-1700000000-abcdef12/);
  });

  it('the form it replaces did not stop the job (export hides the failure)', () => {
    const r = job(1, `export CHECKPOINT=$(e2epool create --job-id "$CI_JOB_ID") || exit 1`);
    assert.match(r.stdout, /job ran/);
  });
});
