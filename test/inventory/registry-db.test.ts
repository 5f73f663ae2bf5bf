// The runner registry against a real database: PGlite in memory and a throwaway PostgreSQL database.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { E2epoolError } from '../../src/domain/errors.js';
import { parseInventory } from '../../src/inventory/inventory-file.js';
import { runnerView } from '../../src/api/runner-view.js';
import { RunnerRegistry, type RunnerEvent } from '../../src/inventory/registry.js';
import { hashToken } from '../../src/inventory/token-hash.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { createPgliteDatabase, createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';

const PEPPER = 'test-pepper-registry';

const proxmoxInput = {
  runner_id: 'pve-01',
  backend: 'proxmox',
  proxmox_host: 'pve.example.com',
  proxmox_user: 'e2epool@pve',
  proxmox_token_name: 'ctl',
  proxmox_token_value: 'PVE-SECRET-VALUE-123',
  proxmox_node: 'pve1',
  proxmox_vmid: 100,
  gitlab_runner_id: 42,
  tags: ['e2e', 'proxmox'],
  gitlab_token: 'GITLAB-SECRET-456',
  gitlab_url: 'https://gitlab.example.com',
};

const bareMetalInput = { runner_id: 'bm-01', backend: 'bare_metal', reset_cmd: '/opt/reset.sh' };

function inventoryText(runners: Array<{ id: string; token: string; reset?: string }>): string {
  return (
    'runners:\n' +
    runners
      .map((r) => `  - {runner_id: ${r.id}, backend: bare_metal, token: ${r.token}, reset_cmd: ${r.reset ?? 'reset.sh'}, readiness_cmd: ok, gitlab_runner_id: 1}\n`)
      .join('')
  );
}

async function rawRunners(database: Database): Promise<Array<Record<string, unknown>>> {
  const result: any = await database.db.execute(sql`select * from runners order by runner_id`);
  return (result.rows ?? result) as Array<Record<string, unknown>>;
}

async function updatedAtOf(registry: RunnerRegistry, runnerId: string): Promise<number> {
  const r = await registry.getRunner(runnerId, { includeInactive: true });
  assert.ok(r, `runner ${runnerId} exists`);
  return r.updatedAt.getTime();
}

async function expectError(promise: Promise<unknown>, code: string, detail: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof E2epoolError, String(err));
    assert.equal(err.code, code);
    assert.equal(err.detail, detail);
    return true;
  });
}

for (const [kind, create] of [
  ['pglite', createPgliteDatabase],
  ['postgres', () => createPostgresDatabase('e2epool_reg')],
] as const) {
  describe(`runner registry on ${kind}`, () => {
    let database: TestDatabase;
    let registry: RunnerRegistry;
    const deactivated: RunnerEvent[] = [];
    const rotated: RunnerEvent[] = [];

    beforeAll(async () => {
      database = await create();
      registry = new RunnerRegistry({ db: database.db, pepper: PEPPER });
      registry.onRunnerDeactivated((e) => void deactivated.push(e));
      registry.onTokenRotated((e) => void rotated.push(e));
    });
    afterAll(async () => {
      await database?.drop();
    });

    it('creates a runner: 43-char token returned once, only its HMAC stored (scenarios 75, 78)', async () => {
      const { runner, token, reactivated } = await registry.createRunner(proxmoxInput);
      assert.equal(reactivated, false);
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(runner.isActive, true);
      assert.equal(runner.source, 'api');
      assert.deepEqual(runner.tags, ['e2e', 'proxmox']);
      assert.ok(runner.createdAt instanceof Date && runner.updatedAt instanceof Date);

      const rows = await rawRunners(database);
      assert.equal(rows.length, 1);
      const row = rows[0]!;
      assert.equal(row.token_hash, hashToken(PEPPER, token));
      const dump = JSON.stringify(rows);
      assert.ok(!dump.includes(token), 'the plain token is nowhere in the table');
      assert.ok(!('token' in row), 'there is no plaintext token column');
      assert.deepEqual(row.tags, ['e2e', 'proxmox']);
      const options = row.options as Record<string, unknown>;
      assert.equal(options.gitlabToken, 'GITLAB-SECRET-456', 'options without a column live in the options jsonb');
      assert.equal(options.resetMode, 'reboot');
      assert.equal(options.successAction, 'reset');
    });

    it('gives every runner its own token, and [] or missing tags read back as [] (scenarios 76, 77)', async () => {
      const a = await registry.createRunner(bareMetalInput);
      const b = await registry.createRunner({ ...bareMetalInput, runner_id: 'bm-02', tags: [] });
      assert.notEqual(a.token, b.token);
      assert.deepEqual(a.runner.tags, []);
      assert.deepEqual(b.runner.tags, []);
      assert.equal(a.runner.proxmoxHost, null);
      assert.equal(a.runner.gitlabRunnerId, null);
    });

    it('refuses an active duplicate with 409 and broken rules with 422 texts (scenario 79)', async () => {
      await expectError(registry.createRunner(bareMetalInput), 'conflict', "Runner 'bm-01' already exists");
      await expectError(registry.createRunner({ runner_id: 'x', backend: 'docker' }), 'validation', "Invalid backend 'docker'. Must be 'proxmox' or 'bare_metal'.");
      await expectError(registry.createRunner({ runner_id: 'x', backend: 'bare_metal' }), 'validation', "bare_metal backend requires 'reset_cmd'.");
      await expectError(
        registry.createRunner({ ...proxmoxInput, runner_id: 'x', proxmox_vmid: 0 }),
        'validation',
        'proxmox backend is missing required fields: proxmox_vmid',
      );
      await expectError(registry.createRunner({ runner_id: 'bad id!', backend: 'bare_metal' }), 'validation', "runner_id: String should match pattern '^[\\w.\\-]+$'");
    });

    it('lists active runners by runner_id; inactive ones only on request (scenarios 80, 81)', async () => {
      assert.deepEqual(
        (await registry.listRunners()).map((r) => r.runnerId),
        ['bm-01', 'bm-02', 'pve-01'],
      );
      assert.equal((await registry.getRunner('pve-01'))?.proxmoxVmid, 100);
      assert.equal(await registry.getRunner('nope'), null);
    });

    it('authenticates by token: lookup by hash, active runners only', async () => {
      const { token } = await registry.createRunner({ ...bareMetalInput, runner_id: 'auth-01' });
      assert.equal((await registry.authenticateRunnerToken(token))?.runnerId, 'auth-01');
      assert.equal(await registry.authenticateRunnerToken(token + 'x'), null);
      assert.equal(await registry.authenticateRunnerToken(''), null);
      // Another pepper derives other hashes: the same token is unknown there.
      const otherPepper = new RunnerRegistry({ db: database.db, pepper: 'another-pepper' });
      assert.equal(await otherPepper.authenticateRunnerToken(token), null);
      // A row written by hand with the hash of a token is found by that token: the lookup is by hash.
      await database.db.execute(
        sql`insert into runners (runner_id, backend, token_hash, reset_cmd) values ('hand-made', 'bare_metal', ${hashToken(PEPPER, 'hand-made-token-0123456789ab')}, 'r')`,
      );
      assert.equal((await registry.authenticateRunnerToken('hand-made-token-0123456789ab'))?.runnerId, 'hand-made');
    });

    it('deactivates softly: token refused, hidden from get/list, listeners told; unknown or repeated → null (scenario 82)', async () => {
      const { token } = await registry.createRunner({ ...bareMetalInput, runner_id: 'gone-01' });
      const runner = await registry.deactivateRunner('gone-01');
      assert.equal(runner?.isActive, false);
      assert.deepEqual(deactivated.at(-1), { runnerId: 'gone-01', cause: 'api' });
      assert.equal(await registry.authenticateRunnerToken(token), null);
      assert.equal(await registry.getRunner('gone-01'), null);
      assert.equal((await registry.getRunner('gone-01', { includeInactive: true }))?.isActive, false);
      assert.ok(!(await registry.listRunners()).some((r) => r.runnerId === 'gone-01'));
      assert.ok((await registry.listRunners({ includeInactive: true })).some((r) => r.runnerId === 'gone-01'));
      assert.equal(await registry.deactivateRunner('gone-01'), null);
      assert.equal(await registry.deactivateRunner('never-existed'), null);
    });

    it('reactivates an inactive runner with the new request fields and a new token', async () => {
      const first = await registry.createRunner({ ...proxmoxInput, runner_id: 'again-01' });
      await registry.deactivateRunner('again-01');
      const second = await registry.createRunner({ runner_id: 'again-01', backend: 'bare_metal', reset_cmd: 'r2' });
      assert.equal(second.reactivated, true);
      assert.notEqual(second.token, first.token);
      assert.equal(second.runner.isActive, true);
      assert.equal(second.runner.backend, 'bare_metal');
      assert.equal(second.runner.proxmoxHost, null, 'omitted optionals overwrite with null');
      assert.equal(second.runner.gitlabRunnerId, null);
      assert.deepEqual(second.runner.tags, []);
      assert.equal(second.runner.options.gitlabToken, null);
      assert.equal(second.runner.createdAt.getTime(), first.runner.createdAt.getTime());
      assert.equal(await registry.authenticateRunnerToken(first.token), null);
      assert.equal((await registry.authenticateRunnerToken(second.token))?.runnerId, 'again-01');
    });

    it('rotates a token: the old one stops working at once and listeners are told', async () => {
      const { token: old } = await registry.createRunner({ ...bareMetalInput, runner_id: 'rot-01' });
      const rotatedResult = await registry.rotateToken('rot-01');
      assert.ok(rotatedResult);
      assert.notEqual(rotatedResult.token, old);
      assert.equal(await registry.authenticateRunnerToken(old), null);
      assert.equal((await registry.authenticateRunnerToken(rotatedResult.token))?.runnerId, 'rot-01');
      assert.deepEqual(rotated.at(-1), { runnerId: 'rot-01', cause: 'api' });
      assert.equal(await registry.rotateToken('never-existed'), null);
      await registry.deactivateRunner('rot-01');
      assert.equal(await registry.rotateToken('rot-01'), null);
    });

    it('drains and undrains active runners only', async () => {
      assert.equal((await registry.setDrained('bm-01', true))?.drained, true);
      assert.equal((await registry.getRunner('bm-01'))?.drained, true);
      assert.equal((await registry.setDrained('bm-01', false))?.drained, false);
      assert.equal(await registry.setDrained('never-existed', true), null);
      assert.equal(await registry.setDrained('gone-01', true), null);
    });

    it('runnerView carries no secret and round-trips every public field (scenario 83)', async () => {
      const runner = (await registry.getRunner('pve-01'))!;
      const view = runnerView(runner);
      const json = JSON.stringify(view);
      for (const secret of ['PVE-SECRET-VALUE-123', 'GITLAB-SECRET-456']) assert.ok(!json.includes(secret));
      assert.ok(!('proxmox_token_value' in view) && !('gitlab_token' in view) && !('token' in view) && !('token_hash' in view));
      assert.deepEqual(
        {
          runner_id: view.runner_id,
          backend: view.backend,
          proxmox_host: view.proxmox_host,
          proxmox_user: view.proxmox_user,
          proxmox_token_name: view.proxmox_token_name,
          proxmox_node: view.proxmox_node,
          proxmox_vmid: view.proxmox_vmid,
          gitlab_runner_id: view.gitlab_runner_id,
          tags: view.tags,
          gitlab_url: view.gitlab_url,
          is_active: view.is_active,
        },
        {
          runner_id: 'pve-01',
          backend: 'proxmox',
          proxmox_host: 'pve.example.com',
          proxmox_user: 'e2epool@pve',
          proxmox_token_name: 'ctl',
          proxmox_node: 'pve1',
          proxmox_vmid: 100,
          gitlab_runner_id: 42,
          tags: ['e2e', 'proxmox'],
          gitlab_url: 'https://gitlab.example.com',
          is_active: true,
        },
      );
      assert.match(view.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$/, 'naive UTC like e2epool');
      assert.equal(runnerView(runner, 'once').token, 'once');
    });

    describe('inventory sync', () => {
      const fileA = () => parseInventory(inventoryText([{ id: 'inv-01', token: 'inv-01-token-0123456789abcdef' }, { id: 'inv-02', token: 'inv-02-token-0123456789abcdef' }]));

      it('writes inventory runners with hashed tokens and records the content hash', async () => {
        const result = await registry.syncInventory(fileA());
        assert.equal(result.applied, true);
        assert.deepEqual(result.created, ['inv-01', 'inv-02']);
        assert.deepEqual(result.deactivated, []);
        const runner = await registry.authenticateRunnerToken('inv-01-token-0123456789abcdef');
        assert.equal(runner?.runnerId, 'inv-01');
        assert.equal(runner?.source, 'inventory');
        const dump = JSON.stringify(await rawRunners(database));
        assert.ok(!dump.includes('inv-01-token-0123456789abcdef'), 'inventory tokens are hashed too');
        const setting: any = await database.db.execute(sql`select value from controller_settings where key = 'inventory_hash'`);
        assert.equal((setting.rows ?? setting)[0].value.contentHash, fileA().contentHash);
      });

      it('does nothing when the same file is synced again (idempotent, no updated_at churn)', async () => {
        const before = await updatedAtOf(registry, 'inv-01');
        const again = await registry.syncInventory(fileA());
        assert.equal(again.applied, false);
        assert.equal(await updatedAtOf(registry, 'inv-01'), before);
      });

      it('applies a changed file: updates, deactivates missing inventory runners, never touches API runners', async () => {
        const apiBefore = await updatedAtOf(registry, 'bm-01');
        const inv02Before = await updatedAtOf(registry, 'inv-02');
        const file = parseInventory(inventoryText([{ id: 'inv-02', token: 'inv-02-token-0123456789abcdef', reset: 'reset-v2.sh' }]));
        const result = await registry.syncInventory(file);
        assert.equal(result.applied, true);
        assert.deepEqual(result.updated, ['inv-02']);
        assert.deepEqual(result.deactivated, ['inv-01']);
        assert.deepEqual(deactivated.at(-1), { runnerId: 'inv-01', cause: 'inventory' });
        assert.equal((await registry.getRunner('inv-02'))?.resetCmd, 'reset-v2.sh');
        assert.ok((await updatedAtOf(registry, 'inv-02')) >= inv02Before);
        assert.equal(await registry.authenticateRunnerToken('inv-01-token-0123456789abcdef'), null);
        // Every API runner is still active and unchanged.
        assert.equal(await updatedAtOf(registry, 'bm-01'), apiBefore);
        for (const id of ['bm-01', 'bm-02', 'pve-01', 'auth-01', 'again-01']) assert.equal((await registry.getRunner(id))?.source, 'api', id);
      });

      it('skips an inventory runner whose id belongs to an API runner, with a warning', async () => {
        const apiRow = (await rawRunners(database)).find((r) => r.runner_id === 'bm-01')!;
        const file = parseInventory(inventoryText([{ id: 'inv-02', token: 'inv-02-token-0123456789abcdef', reset: 'reset-v2.sh' }, { id: 'bm-01', token: 'takeover-token-0123456789abcdef' }]));
        const result = await registry.syncInventory(file);
        assert.deepEqual(result.skipped, ['bm-01']);
        assert.deepEqual(result.warnings, ["Inventory runner 'bm-01' skipped: a runner with that id was registered through the admin API; rename one of them."]);
        assert.deepEqual((await rawRunners(database)).find((r) => r.runner_id === 'bm-01'), apiRow, 'the API row is byte for byte the same');
        assert.equal(await registry.authenticateRunnerToken('takeover-token-0123456789abcdef'), null);
      });

      it('skips an inventory runner whose token is already used by another runner', async () => {
        const file = parseInventory(inventoryText([{ id: 'inv-02', token: 'inv-02-token-0123456789abcdef' }, { id: 'inv-03', token: 'hand-made-token-0123456789ab' }]));
        const result = await registry.syncInventory(file);
        assert.deepEqual(result.skipped, ['inv-03']);
        assert.deepEqual(result.warnings, ["Inventory runner 'inv-03' skipped: its token is already used by runner 'hand-made'."]);
      });

      it('a changed inventory token replaces the old one and tells the listeners; a removed runner comes back when re-added', async () => {
        const file = parseInventory(
          inventoryText([
            { id: 'inv-01', token: 'inv-01-token-0123456789abcdef' },
            { id: 'inv-02', token: 'inv-02-new-token-0123456789abcdef' },
          ]),
        );
        const result = await registry.syncInventory(file);
        assert.deepEqual(result.reactivated, ['inv-01']);
        assert.deepEqual(result.updated, ['inv-02']);
        assert.deepEqual(rotated.at(-1), { runnerId: 'inv-02', cause: 'inventory' });
        assert.equal(await registry.authenticateRunnerToken('inv-02-token-0123456789abcdef'), null);
        assert.equal((await registry.authenticateRunnerToken('inv-02-new-token-0123456789abcdef'))?.runnerId, 'inv-02');
        assert.equal((await registry.authenticateRunnerToken('inv-01-token-0123456789abcdef'))?.runnerId, 'inv-01');
      });

      it('inventory runners keep their token from the file: rotation is refused, drain survives a sync', async () => {
        await expectError(registry.rotateToken('inv-01'), 'invalid_state', "Runner 'inv-01' comes from the inventory file: change its token there");
        await registry.setDrained('inv-01', true);
        await registry.syncInventory(parseInventory(inventoryText([{ id: 'inv-01', token: 'inv-01-token-0123456789abcdef', reset: 'changed.sh' }, { id: 'inv-02', token: 'inv-02-new-token-0123456789abcdef' }])));
        const runner = await registry.getRunner('inv-01');
        assert.equal(runner?.resetCmd, 'changed.sh');
        assert.equal(runner?.drained, true);
      });

      it('two instances syncing the same file do not flap', async () => {
        const file = parseInventory(inventoryText([{ id: 'inv-01', token: 'inv-01-token-0123456789abcdef' }, { id: 'inv-04', token: 'inv-04-token-0123456789abcdef' }]));
        // A second instance: its own connection pool on PostgreSQL.
        const second: Database = kind === 'postgres' ? await openDatabase(database.url, { poolSize: 2 }) : database;
        try {
          const other = new RunnerRegistry({ db: second.db, pepper: PEPPER });
          const results = await Promise.all([registry.syncInventory(file), other.syncInventory(file)]);
          assert.deepEqual(
            results.map((r) => r.applied).sort(),
            [false, true],
            'exactly one instance applies the file',
          );
          const stamp = await updatedAtOf(registry, 'inv-04');
          for (let i = 0; i < 3; i++) {
            assert.equal((await other.syncInventory(file)).applied, false);
            assert.equal((await registry.syncInventory(file)).applied, false);
          }
          assert.equal(await updatedAtOf(registry, 'inv-04'), stamp, 'no flapping');
          assert.equal((await registry.getRunner('inv-04'))?.isActive, true);
        } finally {
          if (second !== database) await second.close();
        }
      });

      it('a new pepper forces a re-sync so inventory tokens keep working', async () => {
        const file = parseInventory(inventoryText([{ id: 'inv-01', token: 'inv-01-token-0123456789abcdef' }, { id: 'inv-04', token: 'inv-04-token-0123456789abcdef' }]));
        const repeppered = new RunnerRegistry({ db: database.db, pepper: 'rotated-pepper' });
        assert.equal(await repeppered.authenticateRunnerToken('inv-04-token-0123456789abcdef'), null);
        const result = await repeppered.syncInventory(file);
        assert.equal(result.applied, true);
        assert.equal((await repeppered.authenticateRunnerToken('inv-04-token-0123456789abcdef'))?.runnerId, 'inv-04');
        // Back to the original pepper for the other tests.
        assert.equal((await registry.syncInventory(file)).applied, true);
      });
    });

    if (kind === 'postgres') {
      it('concurrent creates of one runner id: one 201, the rest 409', async () => {
        const attempts = await Promise.allSettled(Array.from({ length: 5 }, () => registry.createRunner({ ...bareMetalInput, runner_id: 'race-01' })));
        const ok = attempts.filter((a) => a.status === 'fulfilled');
        assert.equal(ok.length, 1);
        for (const a of attempts) {
          if (a.status === 'rejected') {
            assert.ok(a.reason instanceof E2epoolError);
            assert.equal(a.reason.code, 'conflict');
          }
        }
      });
    }
  });
}
