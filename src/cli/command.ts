// Shared shape of CLI command modules.
import type { Argv } from 'yargs';

export interface CliCommand<A = any> {
  command: string;
  describe: string;
  builder?: (y: Argv) => Argv<A>;
  handler: (args: A) => Promise<void> | void;
}

/** Loads the controller config or exits 1 with one message naming every bad key. */
export async function loadConfigOrExit(overrides: Record<string, unknown> = {}) {
  const { loadConfig, ConfigError } = await import('../config.js');
  try {
    return loadConfig(process.env, overrides as any);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
