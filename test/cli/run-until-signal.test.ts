// The service wrapper of `serve` and `worker`: a fatal error reported by the service (a Temporal
// worker that stopped) stops it and exits 1, so a supervisor restarts it; a signal stops it and
// exits 0; a failed start exits 1. Run in a child process, as the commands run.
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const moduleUrl = pathToFileURL(path.resolve(import.meta.dirname, '../../src/cli/run-until-signal.ts')).href;
const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-run-until-signal-'));

function run(body: string, signalAfterMs?: number) {
  const script = path.join(dir, `case-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    script,
    `import { runUntilSignal } from ${JSON.stringify(moduleUrl)};
const log = { info: (m) => console.log(JSON.stringify({ level: 'info', msg: m })), error: (m) => console.log(JSON.stringify({ level: 'error', msg: m })) };
${signalAfterMs !== undefined ? `setTimeout(() => process.kill(process.pid, 'SIGTERM'), ${signalAfterMs});` : ''}
await runUntilSignal(async (fail) => {
  ${body}
}, log);
setInterval(() => {}, 1000);
`,
  );
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, lines: r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: string; msg: string }) };
}

describe('runUntilSignal', () => {
  it('stops the service and exits 1 when the service reports a fatal error', () => {
    const r = run(`setTimeout(() => fail(new Error('worker on e2epool-checkpoints stopped')), 100);
  return async () => console.log(JSON.stringify({ level: 'info', msg: 'service stopped' }));`);
    assert.equal(r.status, 1);
    assert.deepEqual(r.lines.map((l) => l.msg), ['stopping after a fatal error: worker on e2epool-checkpoints stopped', 'service stopped']);
  });

  it('a fatal error reported while starting still stops the service and exits 1', () => {
    const r = run(`fail(new Error('early'));
  return async () => console.log(JSON.stringify({ level: 'info', msg: 'service stopped' }));`);
    assert.equal(r.status, 1);
    assert.ok(r.lines.some((l) => l.msg === 'service stopped'));
  });

  it('exits 0 after a signal, and 1 when the start fails', () => {
    const stopped = run(`return async () => console.log(JSON.stringify({ level: 'info', msg: 'service stopped' }));`, 200);
    assert.equal(stopped.status, 0);
    assert.deepEqual(stopped.lines.map((l) => l.msg), ['received SIGTERM, stopping', 'service stopped']);
    const failed = run(`throw new Error('no database');`);
    assert.equal(failed.status, 1);
    assert.deepEqual(failed.lines.map((l) => `${l.level}:${l.msg}`), ['error:Error: no database']);
  });
});
