// Throwaway databases for data tests: an in-memory PGlite, and a fresh PostgreSQL database on the
// local server (dropped afterwards). With CI=true a missing PostgreSQL fails the test.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate, openDatabase, type Database } from '../../src/store/database.js';

export const POSTGRES_ADMIN_URL = process.env.E2EPOOL_TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

export interface TestDatabase extends Database {
  url: string;
  drop(): Promise<void>;
}

export async function createPgliteDatabase(): Promise<TestDatabase> {
  const database = await openDatabase('pglite:memory');
  await migrate(database);
  return { ...database, url: 'pglite:memory', drop: () => database.close() };
}

/** An empty database `<prefix>_<random>` on the local PostgreSQL (for processes that migrate it themselves). */
export async function createEmptyPostgresDatabase(prefix = 'e2epool_test'): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is required for this test at ${POSTGRES_ADMIN_URL}: ${(err as Error).message}`, { cause: err });
  }
  await admin.query(`create database ${name}`);
  await admin.end();
  return {
    name,
    url: POSTGRES_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`),
    drop: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** Creates `e2epool_test_<random>` on the local PostgreSQL, migrates it, and drops it on drop(). */
export async function createPostgresDatabase(prefix = 'e2epool_test'): Promise<TestDatabase> {
  const empty = await createEmptyPostgresDatabase(prefix);
  const database = await openDatabase(empty.url, { poolSize: 5 });
  await migrate(database);
  return {
    ...database,
    url: empty.url,
    drop: async () => {
      await database.close();
      await empty.drop();
    },
  };
}

/** Both kinds, for tests that must hold on PGlite and PostgreSQL alike. */
export const databaseKinds: Array<{ kind: 'pglite' | 'postgres'; create: () => Promise<TestDatabase> }> = [
  { kind: 'pglite', create: createPgliteDatabase },
  { kind: 'postgres', create: () => createPostgresDatabase() },
];
