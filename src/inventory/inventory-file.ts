// Loads inventory.yml in the Python e2epool's format. Unknown keys are warned about and ignored,
// `${ENV_VAR}` references are expanded, and every problem in the file is reported at once.
import { createHash } from 'node:crypto';
import { MIN_TOKEN_LENGTH } from './token-hash.js';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { issueLines } from './issues.js';
import {
  RUNNER_KEYS,
  checkRunnerRules,
  inventoryRuleMessage,
  inventoryRunnerSchema,
  runnerWarnings,
  toRunnerConfig,
  type RunnerConfig,
} from './runner-config.js';

/** A validated inventory runner: its configuration and its plain bearer token (hashed on sync). */
export interface InventoryRunner extends RunnerConfig {
  token: string;
  /** The agent's own credential (`agent_token`); unset keeps the legacy scheme. */
  agentToken?: string;
}

export interface InventoryFile {
  path: string;
  runners: InventoryRunner[];
  warnings: string[];
  /** sha256 of the resolved runners: unchanged for comment or formatting edits. */
  contentHash: string;
}

export class InventoryError extends Error {
  constructor(
    readonly code: 'inventory_not_found' | 'inventory_invalid',
    readonly path: string,
    readonly problems: string[],
  ) {
    super(
      code === 'inventory_not_found'
        ? `Inventory file not found: ${path}`
        : `Invalid inventory ${path}:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'InventoryError';
  }
}

export interface LoadInventoryOptions {
  env?: NodeJS.ProcessEnv;
  /** A missing file is an empty inventory (with a warning) instead of an error. */
  missingOk?: boolean;
}

// Commands run in the runner host's shell, which expands its own variables: e2epool files may
// already contain `${HOME}` there, so the controller leaves them alone.
const NOT_EXPANDED = new Set(['reset_cmd', 'cleanup_cmd', 'readiness_cmd']);
const TOP_LEVEL_KEYS = new Set(['runners']);
const ENV_REFERENCE = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces `${NAME}` with the variable's value; `$${NAME}` stays as a literal `${NAME}`. */
export function expandEnv(text: string, env: NodeJS.ProcessEnv): { value: string; missing: string[] } {
  const missing: string[] = [];
  const value = text.replace(ENV_REFERENCE, (whole, escaped: string, name: string) => {
    if (escaped) return whole.slice(1);
    const v = env[name];
    if (v === undefined) {
      missing.push(name);
      return whole;
    }
    return v;
  });
  return { value, missing };
}

function describePath(path: string | URL): string {
  return typeof path === 'string' ? path : fileURLToPath(path);
}

export async function loadInventoryFile(path: string | URL, opts: LoadInventoryOptions = {}): Promise<InventoryFile> {
  const where = describePath(path);
  let text: string;
  try {
    text = await readFile(where, 'utf8');
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw err;
    if (!opts.missingOk) throw new InventoryError('inventory_not_found', where, [`Inventory file not found: ${where}`]);
    const empty = parseInventory('', { path: where, env: opts.env });
    empty.warnings.push(`Inventory file not found: ${where}; no inventory runners.`);
    return empty;
  }
  return parseInventory(text, { path: where, env: opts.env });
}

/** Parses inventory text; throws an InventoryError listing every problem. */
export function parseInventory(text: string, opts: { path?: string; env?: NodeJS.ProcessEnv } = {}): InventoryFile {
  const path = opts.path ?? '<inventory>';
  const env = opts.env ?? process.env;
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err: any) {
    // The first line only: yaml's excerpt of the offending line could show a token.
    const firstLine = String(err?.message ?? err).split('\n')[0];
    throw new InventoryError('inventory_invalid', path, [`YAML syntax error: ${firstLine}`]);
  }

  const problems: string[] = [];
  const warnings: string[] = [];
  let entries: unknown[] = [];
  if (doc === null || doc === undefined) {
    // An empty file is an empty inventory.
  } else if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new InventoryError('inventory_invalid', path, ["The file must be a mapping with a 'runners' list."]);
  } else {
    const top = doc as Record<string, unknown>;
    for (const key of Object.keys(top)) {
      if (!TOP_LEVEL_KEYS.has(key)) warnings.push(`Unknown top-level key '${key}' ignored.`);
    }
    if (Array.isArray(top.runners)) entries = top.runners;
    else if (top.runners !== undefined && top.runners !== null) throw new InventoryError('inventory_invalid', path, ["'runners' must be a list."]);
  }

  const runners: InventoryRunner[] = [];
  const firstIndexOfId = new Map<string, number>();
  const idOfTokenHash = new Map<string, string>();
  entries.forEach((entry, index) => {
    const position = index + 1;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(`Runner entry #${position} must be a mapping.`);
      return;
    }
    const raw = entry as Record<string, unknown>;
    const label = typeof raw.runner_id === 'string' || typeof raw.runner_id === 'number' ? `Runner '${raw.runner_id}'` : `Runner entry #${position}`;
    const known: Record<string, unknown> = {};
    let expansionFailed = false;
    for (const [key, value] of Object.entries(raw)) {
      if (!RUNNER_KEYS.has(key)) {
        warnings.push(`${label}: unknown key '${key}' ignored.`);
        continue;
      }
      const expanded = NOT_EXPANDED.has(key) ? { value, missing: [] as string[] } : expandValue(value, env);
      for (const name of expanded.missing) {
        problems.push(`${label}: environment variable '${name}' (referenced by '${key}') is not set.`);
        expansionFailed = true;
      }
      known[key] = expanded.value;
    }
    if (expansionFailed) return;

    const parsed = inventoryRunnerSchema.safeParse(known);
    if (!parsed.success) {
      for (const line of issueLines(parsed.error, known)) problems.push(`${label}: ${line}`);
      return;
    }
    const input = parsed.data;
    const violation = checkRunnerRules(input);
    if (violation) {
      problems.push(inventoryRuleMessage(input.runner_id, violation));
      return;
    }
    const previous = firstIndexOfId.get(input.runner_id);
    if (previous !== undefined) {
      problems.push(`Runner '${input.runner_id}' is defined twice (entries #${previous} and #${position}).`);
      return;
    }
    firstIndexOfId.set(input.runner_id, position);
    // Compare digests, not tokens, so nothing secret lingers in maps or messages.
    const tokenDigest = createHash('sha256').update(input.token).digest('hex');
    const sameToken = idOfTokenHash.get(tokenDigest);
    if (sameToken !== undefined) {
      problems.push(`Runners '${sameToken}' and '${input.runner_id}' have the same token; each runner needs its own.`);
      return;
    }
    idOfTokenHash.set(tokenDigest, input.runner_id);
    if (input.token.length < MIN_TOKEN_LENGTH) {
      problems.push(`Runner '${input.runner_id}' has a token shorter than ${MIN_TOKEN_LENGTH} characters; generate one with: openssl rand -hex 24`);
      return;
    }
    if (input.agent_token != null && input.agent_token.length < MIN_TOKEN_LENGTH) {
      problems.push(`Runner '${input.runner_id}' has an agent_token shorter than ${MIN_TOKEN_LENGTH} characters; generate one with: openssl rand -hex 24`);
      return;
    }
    if (input.agent_token != null && input.agent_token === input.token) {
      problems.push(`Runner '${input.runner_id}' has the same agent_token as token: the agent's credential must be one CI jobs never see.`);
      return;
    }
    warnings.push(...runnerWarnings(input));
    runners.push({ ...toRunnerConfig(input), token: input.token, ...(input.agent_token ? { agentToken: input.agent_token } : {}) });
  });

  if (problems.length > 0) throw new InventoryError('inventory_invalid', path, problems);
  return { path, runners, warnings, contentHash: inventoryContentHash(runners) };
}

function expandValue(value: unknown, env: NodeJS.ProcessEnv): { value: unknown; missing: string[] } {
  if (typeof value === 'string') return expandEnv(value, env);
  if (Array.isArray(value)) {
    const missing: string[] = [];
    const out = value.map((item) => {
      if (typeof item !== 'string') return item;
      const r = expandEnv(item, env);
      missing.push(...r.missing);
      return r.value;
    });
    return { value: out, missing };
  }
  return { value, missing: [] };
}

/** Hash of what a sync would write; runner order does not matter. */
export function inventoryContentHash(runners: readonly InventoryRunner[]): string {
  const sorted = [...runners].sort((a, b) => (a.runnerId < b.runnerId ? -1 : a.runnerId > b.runnerId ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}
