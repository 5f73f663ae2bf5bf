// Shared shape of CLI command modules.
import type { Argv } from 'yargs';

export interface CliCommand<A = any> {
  command: string;
  describe: string;
  builder?: (y: Argv) => Argv<A>;
  handler: (args: A) => Promise<void> | void;
}

/** How a command reports a refusal to start: plain stderr, or one JSON record (serve, worker). */
export interface StartupLog {
  refuse(message: string): void;
}

const plainStartupLog: StartupLog = { refuse: (message) => void process.stderr.write(`${message}\n`) };

/**
 * The logging of the long-running services: every line they write is one JSON object, from the
 * refusal to start (before the configured level is known) to the stop.
 */
export async function serviceLog(command: 'serve' | 'worker') {
  const { createLogger } = await import('../logger.js');
  const { pino } = await import('pino');
  // A refusal goes to stderr, as every command's does; the running service logs to stdout.
  const early = createLogger({ level: 'info', destination: pino.destination({ fd: 2, sync: true }) }).child({ command });
  return {
    refuse: (message: string) => early.fatal(message),
    logger: (level: string) => createLogger({ level }).child({ command }),
    signalLog: (logger: { info(msg: string): void; error(msg: string): void }) => ({
      info: (message: string) => logger.info(message),
      error: (message: string) => logger.error(message),
    }),
  };
}

/** Loads the controller config or exits 1 with one message naming every bad key. */
export async function loadConfigOrExit(overrides: Record<string, unknown> = {}, log: StartupLog = plainStartupLog) {
  const { loadConfig, ConfigError } = await import('../config.js');
  try {
    return loadConfig(process.env, overrides as any);
  } catch (err) {
    if (err instanceof ConfigError) {
      log.refuse(err.message);
      process.exit(1);
    }
    throw err;
  }
}

/**
 * `serve` and `worker` hold production credentials: they refuse to start without a pepper for the
 * runner tokens, or with secrets short enough to guess. Only `dev` uses generated development ones.
 */
export async function assertProductionSecretsOrExit(
  config: { TOKEN_PEPPER?: string | undefined; ADMIN_TOKEN?: string | undefined; METRICS_TOKEN?: string | undefined },
  command: string,
  log: StartupLog = plainStartupLog,
): Promise<void> {
  const { MIN_TOKEN_LENGTH } = await import('../inventory/token-hash.js');
  const problems: string[] = [];
  if (!config.TOKEN_PEPPER) problems.push(`E2EPOOL_TOKEN_PEPPER is not set: runner tokens need a secret pepper (generate one with: openssl rand -hex 32)`);
  for (const key of ['TOKEN_PEPPER', 'ADMIN_TOKEN', 'METRICS_TOKEN'] as const) {
    const value = config[key];
    if (value !== undefined && value.length < MIN_TOKEN_LENGTH) problems.push(`E2EPOOL_${key} is shorter than ${MIN_TOKEN_LENGTH} characters`);
  }
  if (problems.length === 0) return;
  log.refuse(`e2epool ${command} refuses to start:\n${problems.map((p) => `  - ${p}`).join('\n')}\n(e2epool dev runs with generated development secrets.)`);
  process.exit(1);
}
