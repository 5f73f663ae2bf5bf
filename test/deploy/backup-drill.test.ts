// scripts/backup-drill.sh against the local PostgreSQL: a migrated e2epool database with a few
// checkpoints is dumped, restored into a fresh database and shown back; every database made here,
// by the test or by the script, is gone afterwards.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { POSTGRES_ADMIN_URL, createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { claimRunner, recordProgress } from '../../src/store/checkpoint-store.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/backup-drill.sh', import.meta.url));

async function drill(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('bash', [SCRIPT, ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err: any) {
    if (typeof err?.code !== 'number') throw err;
    return { code: err.code, stdout: String(err.stdout), stderr: String(err.stderr) };
  }
}

async function adminQuery<T = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

async function databasesLike(prefix: string): Promise<string[]> {
  const rows = await adminQuery<{ datname: string }>('select datname from pg_database where starts_with(datname, $1) order by datname', [prefix]);
  return rows.map((r) => r.datname);
}

const NAMES = ['job-101-1764590000-aaaaaaaa', 'job-102-1764590100-bbbbbbbb', 'job-103-1764590200-cccccccc'];

describe('backup drill script', () => {
  let source: TestDatabase;
  let sourceName: string;
  const workdir = mkdtempSync(path.join(tmpdir(), 'e2epool-drill-test-'));

  beforeAll(async () => {
    source = await createPostgresDatabase('e2epool_drill');
    sourceName = source.url.slice(source.url.lastIndexOf('/') + 1);
    for (const [i, name] of NAMES.entries()) {
      const runnerId = `drill-runner-${i + 1}`;
      await source.db.execute(sql`insert into runners (runner_id, backend, token_hash, options) values (${runnerId}, 'bare_metal', ${`hash-${runnerId}`}, '{}'::jsonb)`);
      const createdAt = new Date(Date.UTC(2026, 11, 1, 10, i));
      const claimed = await claimRunner(source.db, { name, runnerId, jobId: String(101 + i), backend: 'bare_metal', cooldownSeconds: 0 }, createdAt);
      assert.equal(claimed.ok, true);
    }
    // The first one is finished: its transitions and end state must come back too.
    await recordProgress(source.db, {
      name: NAMES[0]!,
      runnerId: 'drill-runner-1',
      transitions: [
        { seq: 1, from: 'creating', to: 'created', event: 'snapshot_taken' },
        { seq: 2, from: 'created', to: 'finalize_queued', event: 'finalize_requested', fields: { finalizeStatus: 'success', finalizeSource: 'hook', finalizeQueuedAtMs: Date.now() } },
      ],
    });
  });

  afterAll(async () => {
    rmSync(workdir, { recursive: true, force: true });
    // Whatever a failed run may have left behind.
    for (const name of await databasesLike(`${sourceName}_`)) await adminQuery(`drop database if exists ${name} with (force)`);
    await source?.drop();
  });

  it('dumps, restores into a fresh database, shows the checkpoints back, and drops the copy', async () => {
    const result = await drill([source.url]);
    assert.equal(result.code, 0, result.stderr);
    const out = result.stdout;
    assert.match(out, new RegExp(`dump: +${sourceName} -> `));
    assert.match(out, new RegExp(`restored: ${sourceName}_drill_\\d{14} `));
    assert.match(out, /schema: +\d+ migrations applied/);
    assert.match(out, /^checkpoints +3 +3$/m);
    assert.match(out, /^runners +3 +3$/m);
    assert.match(out, /^checkpoint_transitions +(\d+) +\1$/m);
    assert.match(out, /^checkpoints in the restored database: 3$/m);
    // Newest first, with their states.
    const shown = NAMES.map((n) => out.indexOf(n));
    assert.ok(shown.every((at) => at > 0), out);
    assert.ok(shown[2]! < shown[1]! && shown[1]! < shown[0]!, 'newest first');
    assert.match(out, new RegExp(`${NAMES[0]} \\| drill-runner-1 +\\| finalize_queued`));
    assert.match(out, new RegExp(`${NAMES[2]} \\| drill-runner-3 +\\| creating`));
    assert.match(out, /^drill ok$/m);
    assert.match(out, /^dropped .*_drill_\d{14} /m);
    assert.deepEqual(await databasesLike(`${sourceName}_drill`), [], 'the restored copy is dropped');
  });

  it('keeps the copy and the dump when asked, and restores a kept dump again', async () => {
    const target = `${sourceName}_kept`;
    const dumpFile = path.join(workdir, 'e2epool.dump');
    const kept = await drill(['--keep', '--target', target, '--dump-file', dumpFile, '--limit', '1', source.url]);
    assert.equal(kept.code, 0, kept.stderr);
    assert.ok(existsSync(dumpFile), 'the dump is kept');
    assert.deepEqual(await databasesLike(target), [target]);
    const restored = new pg.Client({ connectionString: source.url.replace(/\/[^/]*$/, `/${target}`) });
    await restored.connect();
    try {
      const rows = (await restored.query('select name, state from checkpoints order by name')).rows;
      assert.deepEqual(rows.map((r) => r.name), NAMES);
      assert.equal(rows[0].state, 'finalize_queued');
    } finally {
      await restored.end();
    }
    assert.equal(kept.stdout.split('\n').filter((l) => l.includes('| drill-runner-')).length, 1, '--limit 1 shows one row');
    await adminQuery(`drop database ${target} with (force)`);

    // Last night's backup: restore the file without dumping again.
    const again = await drill(['--from-dump', dumpFile, '--target', `${sourceName}_again`, source.url]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /given; .* is not dumped/);
    assert.match(again.stdout, /^checkpoints +3$/m);
    assert.match(again.stdout, /^checkpoints in the restored database: 3$/m);
    assert.deepEqual(await databasesLike(`${sourceName}_again`), []);
  });

  it('fails clearly, leaving nothing behind, for a database that does not exist or a target that does', async () => {
    const missing = await drill([source.url.replace(/\/[^/]*$/, `/${sourceName}_missing`)]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /cannot connect to .*_missing/);
    assert.deepEqual(await databasesLike(`${sourceName}_missing`), []);

    const taken = await drill(['--target', sourceName, source.url]);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, /must not be the source database/);
  });
});
