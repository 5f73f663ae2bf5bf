import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { InventoryFile } from '../../src/inventory/inventory-file.js';
import { watchInventory, type InventoryWatcher } from '../../src/inventory/watch.js';
import { eventually } from '../helpers/eventually.js';
import { captureLogs } from '../helpers/log-capture.js';

const runnerYaml = (id: string, reset = 'reset.sh') =>
  `runners:\n  - {runner_id: ${id}, backend: bare_metal, token: token-of-${id}-0123456789abcdef, reset_cmd: ${reset}, readiness_cmd: ok, gitlab_runner_id: 1}\n`;

const polling = { timeoutMs: 3000, intervalMs: 10 };

describe('inventory watcher', () => {
  let dir: string;
  let file: string;
  let watcher: InventoryWatcher;
  const seen: InventoryFile[] = [];
  const { logger, records: logLines } = captureLogs();
  let failNext = false;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'e2epool-watch-'));
    file = path.join(dir, 'inventory.yml');
    await writeFile(file, runnerYaml('r1'));
    watcher = watchInventory(
      file,
      (inv) => {
        if (failNext) {
          failNext = false;
          throw new Error('database is down');
        }
        seen.push(inv);
      },
      { debounceMs: 20, logger },
    );
    await watcher.reload();
  });

  afterAll(async () => {
    watcher.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('hands over the file as it is at start', () => {
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.runners[0]!.runnerId, 'r1');
    assert.equal(watcher.lastHash, seen[0]!.contentHash);
  });

  it('picks up an edit in place without a restart', async () => {
    await writeFile(file, runnerYaml('r2'));
    await eventually('the edit', () => seen.length === 2, polling);
    assert.equal(seen[1]!.runners[0]!.runnerId, 'r2');
  });

  it('picks up an editor that writes a new file and renames it over the old one', async () => {
    const tmp = path.join(dir, '.inventory.yml.swp');
    await writeFile(tmp, runnerYaml('r3'));
    await rename(tmp, file);
    await eventually('the replaced file', () => seen.length === 3, polling);
    assert.equal(seen[2]!.runners[0]!.runnerId, 'r3');
  });

  it('ignores changes that keep the content hash (comments, formatting)', async () => {
    await writeFile(file, `# a comment\n${runnerYaml('r3')}\n\n`);
    await sleep(200);
    assert.equal(seen.length, 3);
  });

  it('keeps the last good registry when the file turns bad, logs a clear error without secrets, and recovers', async () => {
    const errorsBefore = logLines().filter((l) => l.level === 50).length;
    await writeFile(file, 'runners:\n  - {runner_id: r4, backend: docker, token: very-secret-token-123456}\n');
    await eventually('the error log', () => logLines().filter((l) => l.level === 50).length > errorsBefore, polling);
    const error = logLines().filter((l) => l.level === 50).at(-1)!;
    assert.equal(error.msg, 'inventory file is invalid; keeping the last good registry');
    assert.match(String(error.error), /Invalid backend 'docker' for runner 'r4'/);
    assert.equal(seen.length, 3, 'nothing handed over');
    assert.ok(!JSON.stringify(logLines()).includes('very-secret-token'), 'the token is never logged');

    await writeFile(file, runnerYaml('r4'));
    await eventually('the fixed file', () => seen.length === 4, polling);
    assert.equal(seen[3]!.runners[0]!.runnerId, 'r4');
  });

  it('logs the warnings of a new file', async () => {
    await writeFile(file, runnerYaml('r5').replace('reset_cmd:', 'ssh_host: h, reset_cmd:'));
    await eventually('the new file', () => seen.length === 5, polling);
    assert.ok(logLines().some((l) => l.level === 40 && l.msg === "Runner 'r5': unknown key 'ssh_host' ignored."));
  });

  it('a failing onChange keeps the previous hash, so the next event tries again', async () => {
    failNext = true;
    await writeFile(file, runnerYaml('r6'));
    await eventually('the failure log', () => logLines().some((l) => l.msg === 'applying the inventory failed; keeping the last good registry'), polling);
    assert.equal(seen.length, 5);
    assert.equal(watcher.lastHash, seen[4]!.contentHash);
    await watcher.reload();
    assert.equal(seen.length, 6);
    assert.equal(seen[5]!.runners[0]!.runnerId, 'r6');
  });

  it('a file that disappears keeps the last good registry', async () => {
    await rm(file);
    await eventually('the missing-file warning', () => logLines().some((l) => l.msg === 'inventory file is missing; keeping the last good registry'), polling);
    assert.equal(seen.length, 6);
  });
});
