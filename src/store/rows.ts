// The rows of a raw SQL query. node-postgres answers `{ rows }`, PGlite's drizzle driver the same
// shape; this is the one place that unwraps them.
import type { SQL } from 'drizzle-orm';
import type { Db } from './database.js';

/** Anything with drizzle's `execute`: the database or a transaction. */
export interface Executor {
  execute(query: SQL): PromiseLike<unknown>;
}

export async function rowsOf<T = Record<string, any>>(db: Db | Executor, query: SQL): Promise<T[]> {
  const result: any = await (db as Executor).execute(query);
  return (Array.isArray(result) ? result : (result?.rows ?? [])) as T[];
}
