// inventory.yml edits reach the registry without a restart: startInventorySync on a real file and a
// throwaway PostgreSQL database.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { RunnerRegistry } from '../../src/inventory/registry.js';
import { startInventorySync, type InventorySyncHandle } from '../../src/inventory/watch.js';
import { createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { eventually } from '../helpers/eventually.js';
import { captureLogs } from '../helpers/log-capture.js';

const entry = (id: string, token: string, reset = 'reset.sh') =>
  `  - {runner_id: ${id}, backend: bare_metal, token: ${token}, reset_cmd: ${reset}, readiness_cmd: ok, gitlab_runner_id: 1}\n`;

const polling = { timeoutMs: 5000, intervalMs: 20 };

describe('inventory file → registry, live', () => {
  let database: TestDatabase;
  let registry: RunnerRegistry;
  let dir: string;
  let file: string;
  let handle: InventorySyncHandle;
  const { logger, lines: logs } = captureLogs();

  beforeAll(async () => {
    database = await createPostgresDatabase('e2epool_reg');
    registry = new RunnerRegistry({ db: database.db, pepper: 'watch-pepper', logger });
    dir = await mkdtemp(path.join(tmpdir(), 'e2epool-live-'));
    file = path.join(dir, 'inventory.yml');
    // No file yet: an empty inventory, not an error.
    handle = await startInventorySync({ registry, path: file, logger, debounceMs: 20 });
  });
  afterAll(async () => {
    handle?.watcher.close();
    await database?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts with no inventory runners when the file is missing', async () => {
    assert.equal(handle.initial.applied, true);
    assert.deepEqual(await registry.listRunners(), []);
  });

  it('an added file registers its runners, whose tokens then authenticate', async () => {
    await writeFile(file, 'runners:\n' + entry('live-01', 'live-01-token-0123456789abcdef'));
    await eventually('live-01', async () => (await registry.getRunner('live-01')) !== null, polling);
    assert.equal((await registry.authenticateRunnerToken('live-01-token-0123456789abcdef'))?.runnerId, 'live-01');
  });

  it('an edit updates and removes runners', async () => {
    await writeFile(file, 'runners:\n' + entry('live-02', 'live-02-token-0123456789abcdef', 'reset-2.sh'));
    await eventually('live-02', async () => (await registry.getRunner('live-02'))?.resetCmd === 'reset-2.sh', polling);
    assert.equal(await registry.getRunner('live-01'), null, 'removed from the file: deactivated');
    assert.equal(await registry.authenticateRunnerToken('live-01-token-0123456789abcdef'), null);
  });

  it('a broken edit leaves the registry as it was and logs why', async () => {
    await writeFile(file, 'runners:\n  - {runner_id: live-02, backend: bare_metal, token: live-02-token-0123456789abcdef}\n');
    await eventually('the error log', async () => logs.some((l) => l.includes('inventory file is invalid')), polling);
    assert.equal((await registry.getRunner('live-02'))?.resetCmd, 'reset-2.sh');
    assert.ok(logs.some((l) => l.includes("Runner 'live-02' with bare_metal backend requires 'reset_cmd'.")));
    assert.ok(!logs.some((l) => l.includes('live-02-token-0123456789abcdef')), 'tokens are never logged');
  });
});
