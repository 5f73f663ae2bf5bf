// Rows of the `runners` table and the Runner they stand for: reading a row (options resolved, no
// token), and the columns a runner configuration writes.
import { runners } from '../../db/schema.js';
import { parseRunnerOptions, type Backend, type RunnerConfig } from './runner-config.js';

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

/** Columns written from a configuration (everything but identity, token, source and flags). */
export function configColumns(c: RunnerConfig) {
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
