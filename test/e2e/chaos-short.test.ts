// The short fixed-seed chaos run of the suite: `npm run chaos` for two minutes against real
// processes (two serve instances, PostgreSQL, a Temporal dev server, both simulators). It must
// inject faults of many kinds, see lifecycles end, and report no violation except those tagged with
// a workflow-review finding that is still open (bench/chaos/open-findings.ts).
import { test, onTestFinished } from 'vitest';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../temporal/tool-paths.js';
import { requireTemporalBinaries } from '../helpers/temporal.js';
import { isOpenFinding } from '../../bench/chaos/open-findings.js';

test('two minutes of seeded chaos: faults of many kinds, lifecycles end, no violation but open review findings', { timeout: 12 * 60_000 }, async () => {
  requireTemporalBinaries(['cli']);
  const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-chaos-test-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'report.json');
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/chaos.ts', '--seed', '1', '--minutes', '2', '--faults-per-minute', '15', '--drain-seconds', '240', '--out', out], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.ok(code === 0 || code === 1, `chaos harness failed (exit ${code}):\n${stderr}`);
  const report = JSON.parse(readFileSync(out, 'utf8'));

  assert.ok(report.faultsInjected.total >= 15, `only ${report.faultsInjected.total} faults injected`);
  assert.ok(Object.keys(report.faultsInjected.byKind).length >= 8, `faults of only ${Object.keys(report.faultsInjected.byKind).length} kinds`);
  assert.ok(report.checkpoints.answeredToAgents >= 20, `only ${report.checkpoints.answeredToAgents} checkpoints created`);
  assert.ok(report.groundTruth.commandsRun > 0 && report.groundTruth.pauseCalls > 0 && report.groundTruth.proxmoxTasks > 0, 'ground truth was recorded');
  const ended = Object.entries(report.checkpoints.byEndState as Record<string, number>).filter(([s]) => ['deleted', 'reset'].includes(s));
  assert.ok(ended.length === 2, `both success and reset paths ended: ${JSON.stringify(report.checkpoints.byEndState)}`);

  const known = report.violations.filter((v: { reviewFinding?: string }) => isOpenFinding(v.reviewFinding));
  const unknown = report.violations.filter((v: { reviewFinding?: string }) => !isOpenFinding(v.reviewFinding));
  if (known.length) console.log(`violations of open review findings (workflow v2): ${JSON.stringify(report.reviewFindingsCaught)}`);
  assert.deepEqual(unknown, [], 'violations not explained by an open review finding');
});
