// Opens the database (PGlite file or PostgreSQL) and applies migrations. Same dialect, same migrations.
import { mkdirSync, openSync, closeSync, writeFileSync, readFileSync, unlinkSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import * as schema from '../../db/schema.js';

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /** Human-readable location without credentials. */
  where: string;
  close(): Promise<void>;
}

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../db/migrations');

/** The only advisory lock in the system: serialises migrations across instances. */
const MIGRATION_LOCK_KEY = 0x65_32_65_70; // "e2ep"

export class DatabaseLockedError extends Error {
  readonly code = 'database_locked';
}

export function redactDatabaseUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+)(:[^@/]*)?@/, '//$1:***@');
}

export async function openDatabase(url: string, opts: { poolSize?: number } = {}): Promise<Database> {
  if (url.startsWith('pglite:')) return openPglite(url.slice('pglite:'.length) || '.data/pglite');
  return openPostgres(url, opts.poolSize ?? 10);
}

async function openPostgres(url: string, poolSize: number): Promise<Database> {
  const { default: pg } = await import('pg');
  const { drizzle } = await import('drizzle-orm/node-postgres');
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  const db = drizzle(pool, { schema }) as unknown as Db;
  return {
    db,
    kind: 'postgres',
    where: redactDatabaseUrl(url),
    close: () => pool.end(),
  };
}

/**
 * PGlite is single-process: a lock file next to the data dir holds our pid, and a second opener
 * fails with a clear message instead of corrupting the files.
 */
async function openPglite(dir: string): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const memory = dir === 'memory' || dir === ':memory:';
  let releaseLock = () => undefined as void;
  if (!memory) {
    mkdirSync(dir, { recursive: true });
    releaseLock = acquireLockFile(path.join(dir, '..', `${path.basename(dir)}.e2epool.lock`));
  }
  try {
    const client = memory ? new PGlite() : new PGlite(dir);
    await client.waitReady;
    const db = drizzle(client, { schema }) as unknown as Db;
    return {
      db,
      kind: 'pglite',
      where: memory ? 'pglite (in memory)' : `pglite:${dir}`,
      close: async () => {
        await client.close();
        releaseLock();
      },
    };
  } catch (err) {
    releaseLock();
    throw err;
  }
}

function acquireLockFile(file: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(file, 'utf8') === String(process.pid)) unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (err: any) {
      if (err.code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(file, 'utf8'));
      if (holder && isAlive(holder)) {
        throw new DatabaseLockedError(
          `The embedded PGlite database ${path.dirname(file)} is in use by process ${holder}. ` +
            'PGlite allows one process only: stop it, or use PostgreSQL (E2EPOOL_DATABASE_URL=postgresql://...) for several instances.',
        );
      }
      // Stale lock of a dead process.
      if (existsSync(file)) unlinkSync(file);
    }
  }
  throw new DatabaseLockedError(`Could not lock ${file}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: any) {
    return err.code === 'EPERM';
  }
}

/** Applies pending migrations; idempotent and safe when several instances start at once. */
export async function migrate(database: Database): Promise<void> {
  const config = { migrationsFolder: MIGRATIONS_DIR, migrationsSchema: 'public', migrationsTable: '__e2epool_migrations' };
  if (database.kind === 'pglite') {
    const { migrate: run } = await import('drizzle-orm/pglite/migrator');
    await run(database.db as any, config);
    return;
  }
  // Hold the advisory lock on one dedicated connection for the whole migration.
  const { drizzle } = await import('drizzle-orm/node-postgres');
  const { migrate: run } = await import('drizzle-orm/node-postgres/migrator');
  const pool = (database.db as any).$client as import('pg').Pool;
  const client = await pool.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await run(drizzle(client, { schema }), config);
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}

export async function ping(database: Database): Promise<void> {
  await pingDb(database.db);
}

/** `SELECT 1`: whether the database answers. */
export async function pingDb(db: Db): Promise<void> {
  await db.execute(sql`select 1`);
}
