// The runner registry: the `runners` table is the source of truth for every instance. Tokens are kept
// only as HMAC hashes; inventory.yml is synced in when its content changed; API runners are never
// touched by a sync.
import { and, asc, eq } from 'drizzle-orm';
import { controllerSettings, runners } from '../../db/schema.js';
import { E2epoolError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { Db } from '../store/database.js';
import type { InventoryFile, InventoryRunner } from './inventory-file.js';
import { issueLines } from './issues.js';
import {
  apiRuleMessage,
  checkRunnerRules,
  parseRunnerOptions,
  runnerInputSchema,
  toRunnerConfig,
  type Backend,
  type RunnerConfig,
} from './runner-config.js';
import { DEVELOPMENT_TOKEN_PEPPER, generateRunnerToken, hashToken, pepperFingerprint, tokenHashesEqual } from './token-hash.js';

export type RunnerRow = typeof runners.$inferSelect;
export type RunnerSource = 'inventory' | 'api';

/** A registered runner with its options resolved. Carries no token and no token hash. */
export interface Runner extends RunnerConfig {
  source: RunnerSource;
  /** The agent has its own credential; false = legacy scheme (the runner token opens agent sessions). */
  hasAgentCredential: boolean;
  isActive: boolean;
  drained: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** `RunnerResponse` of the admin API: e2epool's fields, then ours. Never any secret. */
export interface RunnerResponse {
  runner_id: string;
  backend: string;
  proxmox_host: string | null;
  proxmox_user: string | null;
  proxmox_token_name: string | null;
  proxmox_node: string | null;
  proxmox_vmid: number | null;
  reset_cmd: string | null;
  cleanup_cmd: string | null;
  readiness_cmd: string | null;
  gitlab_runner_id: number | null;
  tags: string[];
  is_active: boolean;
  created_at: string;
  updated_at: string;
  source: RunnerSource;
  drained: boolean;
  reset_mode: string;
  success_action: string;
  gitlab_url: string | null;
  proxmox_verify_tls: boolean;
  proxmox_ca_file: string | null;
  proxmox_fingerprint: string | null;
  proxmox_required_tag: string | null;
  proxmox_pool: string | null;
  snapshot_vmstate: boolean;
  allow_insecure_transport: boolean;
  /** `agent_token`: the agent has its own credential; `runner_token`: legacy, CI's token opens agent sessions. */
  agent_credential: 'agent_token' | 'runner_token';
  /** Only in the answers that issue a token (create, rotate): shown once. */
  token?: string;
}

export interface RunnerEvent {
  runnerId: string;
  /** What caused it: an admin API call or an inventory sync. */
  cause: 'api' | 'inventory';
}
export type RunnerListener = (event: RunnerEvent) => void | Promise<void>;

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

export const INVENTORY_HASH_KEY = 'inventory_hash';

/** API timestamps as e2epool wrote them: ISO-8601 in UTC without an offset. */
function naiveUtc(d: Date): string {
  return d.toISOString().replace(/Z$/, '');
}

export function rowToRunner(row: RunnerRow): Runner {
  return {
    runnerId: row.runnerId,
    backend: row.backend as Backend,
    proxmoxHost: row.proxmoxHost,
    proxmoxUser: row.proxmoxUser,
    proxmoxTokenName: row.proxmoxTokenName,
    proxmoxTokenValue: row.proxmoxTokenValue,
    proxmoxNode: row.proxmoxNode,
    proxmoxVmid: row.proxmoxVmid,
    resetCmd: row.resetCmd,
    cleanupCmd: row.cleanupCmd,
    readinessCmd: row.readinessCmd,
    gitlabRunnerId: row.gitlabRunnerId,
    tags: Array.isArray(row.tags) ? row.tags : [],
    options: parseRunnerOptions(row.options ?? {}, row.backend, row.cleanupCmd),
    source: row.source === 'inventory' ? 'inventory' : 'api',
    hasAgentCredential: row.agentTokenHash !== null && row.agentTokenHash !== undefined,
    isActive: row.isActive,
    drained: row.drained,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** The admin API's view of a runner. Built field by field so no secret can slip in. */
export function runnerView(runner: Runner | RunnerRow, token?: string): RunnerResponse {
  const r = 'tokenHash' in runner ? rowToRunner(runner) : runner;
  const view: RunnerResponse = {
    runner_id: r.runnerId,
    backend: r.backend,
    proxmox_host: r.proxmoxHost,
    proxmox_user: r.proxmoxUser,
    proxmox_token_name: r.proxmoxTokenName,
    proxmox_node: r.proxmoxNode,
    proxmox_vmid: r.proxmoxVmid,
    reset_cmd: r.resetCmd,
    cleanup_cmd: r.cleanupCmd,
    readiness_cmd: r.readinessCmd,
    gitlab_runner_id: r.gitlabRunnerId,
    tags: [...r.tags],
    is_active: r.isActive,
    created_at: naiveUtc(r.createdAt),
    updated_at: naiveUtc(r.updatedAt),
    source: r.source,
    drained: r.drained,
    reset_mode: r.options.resetMode,
    success_action: r.options.successAction,
    gitlab_url: r.options.gitlabUrl,
    proxmox_verify_tls: r.options.proxmoxVerifyTls,
    proxmox_ca_file: r.options.proxmoxCaFile,
    proxmox_fingerprint: r.options.proxmoxFingerprint,
    proxmox_required_tag: r.options.proxmoxRequiredTag,
    proxmox_pool: r.options.proxmoxPool,
    snapshot_vmstate: r.options.snapshotVmstate,
    allow_insecure_transport: r.options.allowInsecureTransport,
    agent_credential: r.hasAgentCredential ? 'agent_token' : 'runner_token',
  };
  if (token !== undefined) view.token = token;
  return view;
}

/** Columns written from a configuration (everything but identity, token, source and flags). */
function configColumns(c: RunnerConfig) {
  return {
    backend: c.backend,
    proxmoxHost: c.proxmoxHost,
    proxmoxUser: c.proxmoxUser,
    proxmoxTokenName: c.proxmoxTokenName,
    proxmoxTokenValue: c.proxmoxTokenValue,
    proxmoxNode: c.proxmoxNode,
    proxmoxVmid: c.proxmoxVmid,
    resetCmd: c.resetCmd,
    cleanupCmd: c.cleanupCmd,
    readinessCmd: c.readinessCmd,
    gitlabRunnerId: c.gitlabRunnerId,
    tags: c.tags,
    options: { ...c.options } as Record<string, unknown>,
  };
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

  /**
   * Applies an inventory file in one transaction, unless the content hash stored in
   * `controller_settings` already matches (another instance synced the same file): instances
   * never flap. Inventory runners missing from the file are deactivated; API runners are never
   * touched, and an inventory runner whose id belongs to one is skipped with a warning.
   */
  async syncInventory(file: Pick<InventoryFile, 'runners' | 'contentHash'>): Promise<InventorySyncResult> {
    const result: InventorySyncResult = { applied: false, created: [], updated: [], reactivated: [], unchanged: [], deactivated: [], skipped: [], warnings: [] };
    const rotated: string[] = [];
    const stamp = { contentHash: file.contentHash, pepper: pepperFingerprint(this.pepper) };

    await this.db.transaction(async (tx) => {
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
        const outcome = await this.applyInventoryRunner(tx as unknown as Db, runner, byId.get(runner.runnerId), holderOfHash, now);
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

    for (const runnerId of result.deactivated) await this.emit(this.deactivatedListeners, { runnerId, cause: 'inventory' });
    for (const runnerId of rotated) await this.emit(this.rotatedListeners, { runnerId, cause: 'inventory' });
    for (const warning of result.warnings) this.logger?.warn({ inventory: true }, warning);
    if (result.applied) {
      this.logger?.info(
        { created: result.created, updated: result.updated, reactivated: result.reactivated, deactivated: result.deactivated, skipped: result.skipped },
        'inventory synced into the runner registry',
      );
    }
    return result;
  }

  private async applyInventoryRunner(
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
    const tokenHash = this.hashToken(runner.token);
    const holder = holderOfHash.get(tokenHash);
    if (holder !== undefined && holder !== id) {
      return { kind: 'skipped', warning: `Inventory runner '${id}' skipped: its token is already used by runner '${holder}'.` };
    }
    const cols = configColumns(runner);
    const agentTokenHash = runner.agentToken ? this.hashToken(runner.agentToken) : null;
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
