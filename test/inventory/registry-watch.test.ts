// inventory.yml edits reach the registry without a restart: startInventorySync on a real file and a
// throwaway PostgreSQL database.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RunnerRegistry } from '../../src/inventory/registry.js';
import { startInventorySync, type InventorySyncHandle } from '../../src/inventory/watch.js';
import { createLogger } from '../../src/logger.js';
import { createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';

const entry = (id: string, token: string, reset = 'reset.sh') =>
  `  - {runner_id: ${id}, backend: bare_metal, token: ${token}, reset_cmd: ${reset}, readiness_cmd: ok, gitlab_runner_id: 1}\n`;

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

void describe('inventory file → registry, live', () => {
  let database: TestDatabase;
  let registry: RunnerRegistry;
  let dir: string;
  let file: string;
  let handle: InventorySyncHandle;
  const logs: string[] = [];

  before(async () => {
    database = await createPostgresDatabase('e2epool_reg');
    const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void logs.push(s) } });
    registry = new RunnerRegistry({ db: database.db, pepper: 'watch-pepper', logger });
    dir = await mkdtemp(path.join(tmpdir(), 'e2epool-live-'));
    file = path.join(dir, 'inventory.yml');
    // No file yet: an empty inventory, not an error.
    handle = await startInventorySync({ registry, path: file, logger, debounceMs: 20 });
  });
  after(async () => {
    handle?.watcher.close();
    await database?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  void it('starts with no inventory runners when the file is missing', async () => {
    assert.equal(handle.initial.applied, true);
    assert.deepEqual(await registry.listRunners(), []);
  });

  void it('an added file registers its runners, whose tokens then authenticate', async () => {
    await writeFile(file, 'runners:\n' + entry('live-01', 'live-01-token-0123456789abcdef'));
    await eventually('live-01', async () => (await registry.getRunner('live-01')) !== null);
    assert.equal((await registry.authenticateRunnerToken('live-01-token-0123456789abcdef'))?.runnerId, 'live-01');
  });

  void it('an edit updates and removes runners', async () => {
    await writeFile(file, 'runners:\n' + entry('live-02', 'live-02-token-0123456789abcdef', 'reset-2.sh'));
    await eventually('live-02', async () => (await registry.getRunner('live-02'))?.resetCmd === 'reset-2.sh');
    assert.equal(await registry.getRunner('live-01'), null, 'removed from the file: deactivated');
    assert.equal(await registry.authenticateRunnerToken('live-01-token-0123456789abcdef'), null);
  });

  void it('a broken edit leaves the registry as it was and logs why', async () => {
    await writeFile(file, 'runners:\n  - {runner_id: live-02, backend: bare_metal, token: live-02-token-0123456789abcdef}\n');
    await eventually('the error log', async () => logs.some((l) => l.includes('inventory file is invalid')));
    assert.equal((await registry.getRunner('live-02'))?.resetCmd, 'reset-2.sh');
    assert.ok(logs.some((l) => l.includes("Runner 'live-02' with bare_metal backend requires 'reset_cmd'.")));
    assert.ok(!logs.some((l) => l.includes('live-02-token-0123456789abcdef')), 'tokens are never logged');
  });
});
