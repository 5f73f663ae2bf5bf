// The runner registry: the `runners` table is the source of truth for every instance. Tokens are kept
// only as HMAC hashes; inventory.yml is synced in when its content changed (inventory-sync.ts); API
// runners are never touched by a sync. The admin API's view of a runner is src/api/runner-view.ts.
import { and, asc, eq } from 'drizzle-orm';
import { runners } from '../../db/schema.js';
import { E2epoolError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { Db } from '../store/database.js';
import type { InventoryFile } from './inventory-file.js';
import { syncInventory, type InventorySyncResult } from './inventory-sync.js';
import { issueLines } from './issues.js';
import { apiRuleMessage, checkRunnerRules, runnerInputSchema, toRunnerConfig } from './runner-config.js';
import { configColumns, rowToRunner, type Runner } from './runner-rows.js';
import { DEVELOPMENT_TOKEN_PEPPER, generateRunnerToken, hashToken, tokenHashesEqual } from './token-hash.js';

export type { InventorySyncResult } from './inventory-sync.js';
export { rowToRunner, type Runner, type RunnerRow } from './runner-rows.js';

export interface RunnerEvent {
  runnerId: string;
  /** What caused it: an admin API call or an inventory sync. */
  cause: 'api' | 'inventory';
}
export type RunnerListener = (event: RunnerEvent) => void | Promise<void>;

export interface RunnerRegistryOptions {
  db: Db;
  /** E2EPOOL_TOKEN_PEPPER; unset uses a fixed development pepper and warns. */
  pepper?: string;
  logger?: Logger;
}

export class RunnerRegistry {
  private readonly db: Db;
  private readonly pepper: string;
  private readonly logger?: Logger;
  private readonly deactivatedListeners = new Set<RunnerListener>();
  private readonly rotatedListeners = new Set<RunnerListener>();

  constructor(opts: RunnerRegistryOptions) {
    this.db = opts.db;
    this.logger = opts.logger;
    if (opts.pepper) {
      this.pepper = opts.pepper;
    } else {
      this.pepper = DEVELOPMENT_TOKEN_PEPPER;
      this.logger?.warn('E2EPOOL_TOKEN_PEPPER is not set: runner tokens are hashed with the development pepper; set it in production');
    }
  }

  hashToken(token: string): string {
    return hashToken(this.pepper, token);
  }

  /** Called after a runner stops being active (so the gateway can close its sessions). */
  onRunnerDeactivated(listener: RunnerListener): () => void {
    this.deactivatedListeners.add(listener);
    return () => this.deactivatedListeners.delete(listener);
  }

  /** Called after a runner's token changed (so sessions opened with the old token are closed). */
  onTokenRotated(listener: RunnerListener): () => void {
    this.rotatedListeners.add(listener);
    return () => this.rotatedListeners.delete(listener);
  }

  /** The active runner owning this bearer token: looked up by hash, then compared in constant time. */
  async authenticateRunnerToken(token: string): Promise<Runner | null> {
    if (typeof token !== 'string') return null;
    const hash = this.hashToken(token);
    const [row] = await this.db
      .select()
      .from(runners)
      .where(and(eq(runners.tokenHash, hash), eq(runners.isActive, true)))
      .limit(1);
    if (!row || !tokenHashesEqual(row.tokenHash, hash) || token.length === 0) return null;
    return rowToRunner(row);
  }

  /**
   * Who may open an agent session: the runner's agent credential when it has one; otherwise (the
   * legacy scheme) its runner token. A runner token is refused once an agent credential exists.
   */
  async authenticateAgent(token: string): Promise<{ runner: Runner; scheme: 'agent_token' | 'runner_token' } | { refused: string } | null> {
    if (typeof token !== 'string' || token.length === 0) return null;
    const hash = this.hashToken(token);
    const [agentRow] = await this.db
      .select()
      .from(runners)
      .where(and(eq(runners.agentTokenHash, hash), eq(runners.isActive, true)))
      .limit(1);
    if (agentRow && tokenHashesEqual(agentRow.agentTokenHash!, hash)) return { runner: rowToRunner(agentRow), scheme: 'agent_token' };
    const runner = await this.authenticateRunnerToken(token);
    if (!runner) return null;
    if (runner.hasAgentCredential) return { refused: runner.runnerId };
    return { runner, scheme: 'runner_token' };
  }

  /** Issues the agent's own credential for an active API runner; from then on only it opens sessions. */
  async rotateAgentToken(runnerId: string): Promise<{ runner: Runner; agentToken: string } | null> {
    const agentToken = generateRunnerToken();
    const agentTokenHash = this.hashToken(agentToken);
    const result = await this.db.transaction(async (tx) => {
      const [existing] = await tx.select().from(runners).where(eq(runners.runnerId, runnerId)).for('update');
      if (!existing || !existing.isActive) return null;
      if (existing.source === 'inventory') {
        throw new E2epoolError('invalid_state', `Runner '${runnerId}' comes from the inventory file: set its agent_token there`);
      }
      const [row] = await tx.update(runners).set({ agentTokenHash, updatedAt: new Date() }).where(eq(runners.id, existing.id)).returning();
      return { runner: rowToRunner(row!), agentToken };
    });
    if (result) await this.emit(this.rotatedListeners, { runnerId, cause: 'api' });
    return result;
  }

  /** Active runners only, unless asked otherwise. */
  async getRunner(runnerId: string, opts: { includeInactive?: boolean } = {}): Promise<Runner | null> {
    const [row] = await this.db.select().from(runners).where(eq(runners.runnerId, runnerId)).limit(1);
    if (!row || (!row.isActive && !opts.includeInactive)) return null;
    return rowToRunner(row);
  }

  async listRunners(opts: { includeInactive?: boolean } = {}): Promise<Runner[]> {
    const query = this.db.select().from(runners);
    const rows = await (opts.includeInactive ? query : query.where(eq(runners.isActive, true))).orderBy(asc(runners.runnerId));
    return rows.map(rowToRunner);
  }

  /**
   * Registers a runner through the admin API and returns its plain token (shown once). An inactive
   * row with the same id is reactivated with the request's fields; an active one is a conflict.
   */
  async createRunner(input: unknown): Promise<{ runner: Runner; token: string; reactivated: boolean }> {
    const parsed = runnerInputSchema.safeParse(input);
    if (!parsed.success) throw new E2epoolError('validation', issueLines(parsed.error, input).join('; '));
    const violation = checkRunnerRules(parsed.data);
    if (violation) throw new E2epoolError('validation', apiRuleMessage(violation));
    const config = toRunnerConfig(parsed.data);
    const token = generateRunnerToken();
    const tokenHash = this.hashToken(token);
    const conflict = () => new E2epoolError('conflict', `Runner '${config.runnerId}' already exists`);

    return this.db.transaction(async (tx) => {
      const [existing] = await tx.select().from(runners).where(eq(runners.runnerId, config.runnerId)).for('update');
      if (existing?.isActive) throw conflict();
      // An inventory id stays the inventory's: re-creating it here would hand its identity to the API.
      if (existing?.source === 'inventory') throw new E2epoolError('conflict', `Runner id '${config.runnerId}' belongs to the inventory file; choose another id`);
      if (existing) {
        const [row] = await tx
          .update(runners)
          .set({ ...configColumns(config), tokenHash, source: 'api', isActive: true, drained: false, updatedAt: new Date() })
          .where(eq(runners.id, existing.id))
          .returning();
        return { runner: rowToRunner(row!), token, reactivated: true };
      }
      // A concurrent create of the same id waits on the unique index, then inserts nothing.
      const [row] = await tx
        .insert(runners)
        .values({ runnerId: config.runnerId, ...configColumns(config), tokenHash, source: 'api', isActive: true })
        .onConflictDoNothing()
        .returning();
      if (!row) throw conflict();
      return { runner: rowToRunner(row), token, reactivated: false };
    });
  }

  /** Soft delete. null when the runner is unknown or already inactive. */
  async deactivateRunner(runnerId: string): Promise<Runner | null> {
    const [current] = await this.db.select({ source: runners.source }).from(runners).where(and(eq(runners.runnerId, runnerId), eq(runners.isActive, true)));
    if (current?.source === 'inventory') throw new E2epoolError('invalid_state', `Runner '${runnerId}' comes from the inventory file: remove it there`);
    const [row] = await this.db
      .update(runners)
      .set({ isActive: false, updatedAt: new Date() })
      .where(and(eq(runners.runnerId, runnerId), eq(runners.isActive, true)))
      .returning();
    if (!row) return null;
    await this.emit(this.deactivatedListeners, { runnerId, cause: 'api' });
    return rowToRunner(row);
  }

  /** Issues a new token for an active API runner; the old one stops working at once. */
  async rotateToken(runnerId: string): Promise<{ runner: Runner; token: string } | null> {
    const token = generateRunnerToken();
    const tokenHash = this.hashToken(token);
    const result = await this.db.transaction(async (tx) => {
      const [existing] = await tx.select().from(runners).where(eq(runners.runnerId, runnerId)).for('update');
      if (!existing || !existing.isActive) return null;
      if (existing.source === 'inventory') {
        throw new E2epoolError('invalid_state', `Runner '${runnerId}' comes from the inventory file: change its token there`);
      }
      const [row] = await tx.update(runners).set({ tokenHash, updatedAt: new Date() }).where(eq(runners.id, existing.id)).returning();
      return { runner: rowToRunner(row!), token };
    });
    if (result) await this.emit(this.rotatedListeners, { runnerId, cause: 'api' });
    return result;
  }

  /** Drained runners finish their current checkpoint and then refuse new ones. */
  async setDrained(runnerId: string, drained: boolean): Promise<Runner | null> {
    const [row] = await this.db
      .update(runners)
      .set({ drained, updatedAt: new Date() })
      .where(and(eq(runners.runnerId, runnerId), eq(runners.isActive, true)))
      .returning();
    return row ? rowToRunner(row) : null;
  }

  /** Syncs an inventory file in (inventory-sync.ts); listeners hear of deactivated and rotated runners. */
  syncInventory(file: Pick<InventoryFile, 'runners' | 'contentHash'>): Promise<InventorySyncResult> {
    return syncInventory(
      {
        db: this.db,
        pepper: this.pepper,
        hashToken: (token) => this.hashToken(token),
        deactivated: (runnerId) => this.emit(this.deactivatedListeners, { runnerId, cause: 'inventory' }),
        rotated: (runnerId) => this.emit(this.rotatedListeners, { runnerId, cause: 'inventory' }),
        warn: (message) => this.logger?.warn({ inventory: true }, message),
        info: (fields, message) => this.logger?.info(fields, message),
      },
      file,
    );
  }

  private async emit(listeners: Set<RunnerListener>, event: RunnerEvent): Promise<void> {
    for (const listener of listeners) {
      try {
        await listener(event);
      } catch (err) {
        this.logger?.error({ err, runnerId: event.runnerId }, 'runner registry listener failed');
      }
    }
  }
}
