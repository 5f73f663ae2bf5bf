// Replays recorded histories of every checkpoint path against today's workflow code. A change to
// the workflow that is not behind patched() makes this fail with a non-determinism error.
// Top-level files and checkpoint-fixes-2026-12/ are histories of the first release (checkpointWorkflow,
// kept registered for its open runs); v2/ holds those of checkpointV2Workflow.
// Record a new path (missing files only) with:
//   E2EPOOL_RECORD_HISTORIES=1 npx vitest run test/workflows
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { bundleWorkflowsOnce, quietTemporalRuntime } from '../helpers/temporal.js';

const { History } = proto.temporal.api.history.v1;
const dir = new URL('./histories/', import.meta.url);
const files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.json')).sort();

describe('replay of recorded checkpoint histories', () => {
  it('has a recorded history for every path', () => {
    for (const path of ['success-cleanup', 'failure-cleanup-reset', 'success-reset-reset', 'cancel', 'ttl-job-finished', 'ttl-max-age-release', 'ttl-gitlab-error-extended', 'poller-finalize', 'duplicate-finalize', 'snapshot-failure', 'rejected', 'abandoned', 'reset-failure-retry', 'pause-failure-release', 'stale-session-retry', 'own-job-wait', 'worker-killed-mid-rollback', 'bare-metal-reboot']) {
      assert.ok(files.includes(`${path}.json`), `missing test/workflows/histories/${path}.json`);
    }
  });

  it('has histories of today\'s code for the paths the review fixes changed', () => {
    for (const path of ['legacy-auto-reset-lost', 'current-reset-resent', 'double-retry', 'release-delete-fails', 'malformed-signals', 'bare-metal-reboot', 'reset-failure-retry', 'success-cleanup']) {
      assert.ok(files.includes(`checkpoint-fixes-2026-12/${path}.json`), `missing test/workflows/histories/checkpoint-fixes-2026-12/${path}.json`);
    }
  });

  it('has a history of checkpointV2Workflow for every path it can take', () => {
    for (const path of [
      'success-cleanup', 'failure-cleanup-reset', 'success-reset-reset', 'cancel', 'ttl-job-finished', 'ttl-max-age-release', 'ttl-gitlab-error-extended',
      'poller-finalize', 'duplicate-finalize', 'snapshot-failure', 'rejected', 'abandoned', 'create-timeout', 'orphan-snapshot', 'claim-failure',
      'reset-failure-retry', 'pause-failure-release', 'stale-session-retry', 'own-job-wait', 'runner-busy', 'config-changed', 'worker-killed-mid-rollback',
      'bare-metal-reboot', 'bare-metal-legacy-auto', 'legacy-auto-reset-lost', 'legacy-reboot-instance-lost', 'current-reset-resent', 'command-not-declared',
      'agent-pause-unpause', 'unpause-retry', 'double-retry', 'release-delete-fails', 'malformed-signals',
    ]) {
      assert.ok(files.includes(`v2/${path}.json`), `missing test/workflows/histories/v2/${path}.json`);
    }
  });

  for (const file of files) {
    it(`replays ${file} deterministically`, async () => {
      quietTemporalRuntime();
      const bundle = await bundleWorkflowsOnce();
      const history = History.fromObject(JSON.parse(readFileSync(new URL(file, dir), 'utf8')));
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, file.replace(/\.json$/, '').replace(/\//g, '-'));
    });
  }
});
