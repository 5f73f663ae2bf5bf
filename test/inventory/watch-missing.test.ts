// A missing inventory file is warned about once, not on every change in its folder: a log file
// written next to it would otherwise feed the warning loop. The warning comes back once the file
// has been seen again and goes missing a second time.
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { watchInventory, type InventoryWatcher } from '../../src/inventory/watch.js';
import { captureLogs } from '../helpers/log-capture.js';

const runnerYaml = `runners:\n  - {runner_id: r1, backend: bare_metal, token: token-of-r1-0123456789abcdef, reset_cmd: reset.sh, readiness_cmd: ok, gitlab_runner_id: 1}\n`;
const MISSING = 'inventory file is missing; keeping the last good registry';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('inventory watcher, missing file', () => {
  let dir: string;
  let file: string;
  let watcher: InventoryWatcher;
  const { logger, records: lines } = captureLogs();
  const missingWarnings = () => lines().filter((l) => l.msg === MISSING && l.level === 40).length;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'e2epool-watch-missing-'));
    file = path.join(dir, 'inventory.yml');
    watcher = watchInventory(file, () => undefined, { debounceMs: 10, logger });
  });

  afterAll(async () => {
    watcher.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('warns once however many changes its folder sees', async () => {
    await watcher.reload();
    // A log file in the same folder, written to again and again (serve > serve.log).
    const log = path.join(dir, 'serve.log');
    for (let i = 0; i < 20; i++) {
      await appendFile(log, `line ${i}\n`);
      await sleep(25);
    }
    await watcher.reload();
    await sleep(100);
    assert.equal(missingWarnings(), 1, JSON.stringify(lines().map((l) => l.msg)));
  });

  it('says when the file is back, and warns again when it goes missing again', async () => {
    await writeFile(file, runnerYaml);
    await watcher.reload();
    assert.ok(lines().some((l) => l.msg === 'inventory file is back' && l.level === 30));
    await rm(file);
    await watcher.reload();
    await appendFile(path.join(dir, 'serve.log'), 'more\n');
    await sleep(100);
    await watcher.reload();
    assert.equal(missingWarnings(), 2);
  });
});
