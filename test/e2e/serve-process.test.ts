// `e2epool serve` as a supervisor runs it: every line it writes is one JSON object (the Temporal
// SDK's and core's lines included), start-up says which search attributes and schedules it set up,
// /metrics carries the SDK's worker metrics and the operator series, and /healthz answers 503 until
// the Temporal workers run.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { repoRoot } from '../../temporal/tool-paths.js';
import { startDevServerEnv } from '../helpers/temporal.js';
import { findFreePort } from '../../temporal/free-port.js';
import { createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { eventually } from '../helpers/eventually.js';

const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-serve-process-'));
const NAMESPACE = 'serve-process';

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        const parsed = JSON.parse(line) as unknown;
        assert.ok(parsed && typeof parsed === 'object' && !Array.isArray(parsed));
        return parsed as Record<string, unknown>;
      } catch {
        assert.fail(`not one JSON object per line: ${JSON.stringify(line)}`);
      }
    });
}

describe('e2epool serve as a process', { timeout: 300_000 }, () => {
  let env: TestWorkflowEnvironment;
  let database: TestDatabase;
  let child: ChildProcess | undefined;
  let stdout = '';
  let stderr = '';
  let url = '';
  let exited: Promise<number | null>;
  let address = '';
  let unhealthyWhileStarting: { status: number; body: string } | undefined;

  beforeAll(async () => {
    env = await startDevServerEnv({ namespace: NAMESPACE });
    address = (env as unknown as { address: string }).address;
    database = await createPostgresDatabase('e2epool_serve_process');
    writeFileSync(path.join(dir, 'inventory.yml'), 'runners: []\n');
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('E2EPOOL_')));
    const port = await findFreePort();
    child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'e2epool.js'), 'serve', '--port', String(port)], {
      cwd: dir,
      env: {
        ...clean,
        NO_COLOR: '',
        FORCE_COLOR: '1',
        E2EPOOL_DATABASE_URL: database.url,
        E2EPOOL_TEMPORAL_ADDRESS: address,
        E2EPOOL_TEMPORAL_NAMESPACE: NAMESPACE,
        E2EPOOL_TEMPORAL_REGISTER_SEARCH_ATTRIBUTES: 'true',
        E2EPOOL_TOKEN_PEPPER: 'pepper-for-the-serve-process-test',
        E2EPOOL_ADMIN_TOKEN: 'admin-token-for-the-serve-process-test',
        E2EPOOL_INVENTORY_PATH: path.join(dir, 'inventory.yml'),
        E2EPOOL_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    exited = new Promise((resolve) => child!.once('exit', (code) => resolve(code)));
    // While the workers are being built (the workflow bundle takes seconds), /healthz says so.
    const startupAnswers: Array<{ status: number; body: string }> = [];
    url = await eventually(
      () => `serve to listen; its stderr:\n${stderr.slice(-3000)}`,
      async () => {
        const listening = /listening on (http:\/\/\S+)/.exec(stdout)?.[1];
        if (listening) return listening;
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        startupAnswers.push({ status: res.status, body: await res.text() });
        return undefined;
      },
      { timeoutMs: 180_000, intervalMs: 250 },
    );
    unhealthyWhileStarting = startupAnswers.find((a) => a.status === 503);
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await env?.teardown();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answered /healthz with 503 while its workers were not running yet', () => {
    assert.ok(unhealthyWhileStarting, 'a 503 was seen before the workers ran');
    assert.match(unhealthyWhileStarting.body, /Temporal workers are not running/);
  });

  it('logs one JSON object per line, with what start-up set up and no colours', async () => {
    await eventually('the SDK to log the workers running', () => stdout.includes('"Worker state changed"'), { timeoutMs: 10_000, intervalMs: 250 });
    assert.doesNotMatch(stdout, /\[emitted\]|modules by path/, 'no webpack statistics');
    const lines = [...jsonLines(stdout), ...jsonLines(stderr)];
    assert.equal((stdout + stderr).includes('\u001b['), false, 'no ANSI escape sequences');
    const messages = lines.map((l) => String(l.msg));
    assert.ok(messages.some((m) => /^search attributes (registered|present)$/.test(m)), messages.join('\n'));
    const schedules = lines.find((l) => l.msg === 'housekeeping schedules ensured')?.schedules as string[] | undefined;
    assert.deepEqual(schedules?.map((s) => s.split(':')[0]).sort(), ['e2epool-orphan-audit', 'e2epool-retention'].sort());
    assert.ok(lines.some((l) => l.component === 'temporal-sdk' && l.msg === 'Worker state changed'), 'SDK lines come through the logger');
  });

  it('serves the SDK worker metrics and the operator series on /metrics', async () => {
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const series of [
      /^temporal_worker_task_slots_available\{.*task_queue="e2epool-checkpoints".*\} \d+/m,
      /^temporal_num_pollers\{/m,
      /^e2epool_build_info\{version="[^"]+",node="v\d+/m,
      /^e2epool_temporal_up 1$/m,
      /^e2epool_http_request_duration_seconds_count\{route="\/healthz",method="GET",status="200"\} [1-9]/m,
      /^e2epool_runners\{state="idle"\} 0$/m,
    ]) {
      assert.match(text, series);
    }
  });

  it('stops on SIGTERM with exit 0, still one JSON object per line', async () => {
    child!.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    child = undefined;
    const lines = [...jsonLines(stdout), ...jsonLines(stderr)];
    assert.ok(lines.some((l) => l.msg === 'received SIGTERM, stopping'));
    assert.ok(lines.some((l) => l.msg === 'controller stopped'));
  });
});
