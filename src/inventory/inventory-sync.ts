// Syncing inventory.yml into the runner registry: one transaction, skipped when the content hash
// stored in `controller_settings` already matches (so instances never flap). Inventory runners
// missing from the file are deactivated; API runners are never touched.
import { eq } from 'drizzle-orm';
import { controllerSettings, runners } from '../../db/schema.js';
import type { Db } from '../store/database.js';
import type { InventoryFile, InventoryRunner } from './inventory-file.js';
import { configColumns, type RunnerRow } from './runner-rows.js';
import { pepperFingerprint } from './token-hash.js';

export interface InventorySyncResult {
  /** false when the stored content hash already matched: nothing was read or written. */
  applied: boolean;
  created: string[];
  updated: string[];
  reactivated: string[];
  unchanged: string[];
  deactivated: string[];
  skipped: string[];
  warnings: string[];
}

const INVENTORY_HASH_KEY = 'inventory_hash';

/** What a sync needs from the registry: its database, token hashing and who to tell. */
export interface InventorySyncContext {
  db: Db;
  pepper: string;
  hashToken(token: string): string;
  /** After the transaction: inventory runners deactivated, and those whose token changed. */
  deactivated(runnerId: string): Promise<void>;
  rotated(runnerId: string): Promise<void>;
  warn(message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

function sameColumns(row: RunnerRow, cols: ReturnType<typeof configColumns>): boolean {
  for (const [key, value] of Object.entries(cols)) {
    const current = row[key as keyof RunnerRow];
    if (key === 'tags' || key === 'options') {
      if (JSON.stringify(current) !== JSON.stringify(value)) return false;
    } else if (current !== value) {
      return false;
    }
  }
  return true;
}

/**
 * Applies an inventory file in one transaction, unless the content hash stored in
 * `controller_settings` already matches (another instance synced the same file): instances
 * never flap. Inventory runners missing from the file are deactivated; API runners are never
 * touched, and an inventory runner whose id belongs to one is skipped with a warning.
 */
export async function syncInventory(ctx: InventorySyncContext, file: Pick<InventoryFile, 'runners' | 'contentHash'>): Promise<InventorySyncResult> {
  const result: InventorySyncResult = { applied: false, created: [], updated: [], reactivated: [], unchanged: [], deactivated: [], skipped: [], warnings: [] };
  const rotated: string[] = [];
  const stamp = { contentHash: file.contentHash, pepper: pepperFingerprint(ctx.pepper) };

  await ctx.db.transaction(async (tx) => {
    // The settings row is the lock that serialises syncs across instances.
    await tx.insert(controllerSettings).values({ key: INVENTORY_HASH_KEY, value: {} }).onConflictDoNothing();
    const [setting] = await tx.select().from(controllerSettings).where(eq(controllerSettings.key, INVENTORY_HASH_KEY)).for('update');
    const stored = (setting?.value ?? {}) as Partial<typeof stamp>;
    if (stored.contentHash === stamp.contentHash && stored.pepper === stamp.pepper) return;
    result.applied = true;

    const rows = await tx.select().from(runners).for('update');
    const byId = new Map(rows.map((r) => [r.runnerId, r]));
    const holderOfHash = new Map(rows.map((r) => [r.tokenHash, r.runnerId]));
    const inFile = new Set<string>();
    const now = new Date();

    for (const runner of file.runners) {
      inFile.add(runner.runnerId);
      const outcome = await applyInventoryRunner(ctx, tx as unknown as Db, runner, byId.get(runner.runnerId), holderOfHash, now);
      if (outcome.kind === 'skipped') {
        result.skipped.push(runner.runnerId);
        result.warnings.push(outcome.warning);
        continue;
      }
      result[outcome.kind].push(runner.runnerId);
      if (outcome.tokenChanged) rotated.push(runner.runnerId);
    }
    for (const row of rows) {
      if (row.source !== 'inventory' || !row.isActive || inFile.has(row.runnerId)) continue;
      await tx.update(runners).set({ isActive: false, updatedAt: now }).where(eq(runners.id, row.id));
      result.deactivated.push(row.runnerId);
    }
    await tx
      .update(controllerSettings)
      .set({ value: stamp, updatedAt: now })
      .where(eq(controllerSettings.key, INVENTORY_HASH_KEY));
  });

  for (const runnerId of result.deactivated) await ctx.deactivated(runnerId);
  for (const runnerId of rotated) await ctx.rotated(runnerId);
  for (const warning of result.warnings) ctx.warn(warning);
  if (result.applied) {
    ctx.info(
      { created: result.created, updated: result.updated, reactivated: result.reactivated, deactivated: result.deactivated, skipped: result.skipped },
      'inventory synced into the runner registry',
    );
  }
  return result;
}

async function applyInventoryRunner(
ctx: InventorySyncContext,
tx: Db,
  runner: InventoryRunner,
  existing: RunnerRow | undefined,
  holderOfHash: Map<string, string>,
  now: Date,
): Promise<{ kind: 'created' | 'updated' | 'reactivated' | 'unchanged'; tokenChanged: boolean } | { kind: 'skipped'; warning: string }> {
  const id = runner.runnerId;
  if (existing && existing.source !== 'inventory') {
    return {
      kind: 'skipped',
      warning: `Inventory runner '${id}' skipped: a runner with that id was registered through the admin API; rename one of them.`,
    };
  }
  const tokenHash = ctx.hashToken(runner.token);
  const holder = holderOfHash.get(tokenHash);
  if (holder !== undefined && holder !== id) {
    return { kind: 'skipped', warning: `Inventory runner '${id}' skipped: its token is already used by runner '${holder}'.` };
  }
  const cols = configColumns(runner);
  const agentTokenHash = runner.agentToken ? ctx.hashToken(runner.agentToken) : null;
  if (!existing) {
    await tx.insert(runners).values({ runnerId: id, ...cols, tokenHash, agentTokenHash, source: 'inventory', isActive: true, createdAt: now, updatedAt: now });
    holderOfHash.set(tokenHash, id);
    return { kind: 'created', tokenChanged: false };
  }
  const tokenChanged = existing.tokenHash !== tokenHash || (existing.agentTokenHash ?? null) !== agentTokenHash;
  if (!tokenChanged && existing.isActive && sameColumns(existing, cols)) return { kind: 'unchanged', tokenChanged: false };
  await tx.update(runners).set({ ...cols, tokenHash, agentTokenHash, isActive: true, updatedAt: now }).where(eq(runners.id, existing.id));
  holderOfHash.delete(existing.tokenHash);
  holderOfHash.set(tokenHash, id);
  return { kind: existing.isActive ? 'updated' : 'reactivated', tokenChanged };
}
