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
    // The shipped examples (.env.example, deploy/systemd) say change-me: a copied example is public.
    else if (value !== undefined && /change-?me/i.test(value)) problems.push(`E2EPOOL_${key} is still the example value: generate one with openssl rand -hex 32`);
  }
  if (problems.length === 0) return;
  log.refuse(`e2epool ${command} refuses to start:\n${problems.map((p) => `  - ${p}`).join('\n')}\n(e2epool dev runs with generated development secrets.)`);
  process.exit(1);
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH']);
/** SQLSTATE classes that mean "could not use this database at all": connection, auth, missing database, too many connections, shutting down. */
const DATABASE_REFUSALS = /^(?:08|28|3D|53|57P)/;

/** Where the database URL points, for messages (never the password). */
export function databaseWhere(url: string): { host: string; port: string; database: string } | null {
  if (!/^postgres(?:ql)?:\/\//.test(url)) return null;
  try {
    const u = new URL(url);
    return { host: u.hostname || 'localhost', port: u.port || '5432', database: decodeURIComponent(u.pathname.replace(/^\//, '')) };
  } catch {
    return null;
  }
}

/**
 * A start that failed on the database says so and names the setting: `connect ECONNREFUSED
 * 127.0.0.1:5999` alone says neither. Other errors are returned unchanged.
 */
export function explainStartFailure(err: unknown, config: { DATABASE_URL: string }): unknown {
  const where = databaseWhere(config.DATABASE_URL);
  if (!where || !(err instanceof Error)) return err;
  const e = err as Error & { code?: unknown; port?: unknown; errors?: unknown[] };
  const first = Array.isArray(e.errors) && e.errors.length > 0 ? (e.errors[0] as Error & { code?: unknown; port?: unknown }) : e;
  const code = typeof e.code === 'string' ? e.code : typeof first.code === 'string' ? first.code : undefined;
  const target = `${where.host}:${where.port}${where.database ? `/${where.database}` : ''}`;
  if (code && NETWORK_CODES.has(code)) {
    const port = first.port ?? e.port;
    // A network error for another port is not the database's (Temporal reports its own).
    if (port !== undefined && String(port) !== where.port) return err;
    return new Error(`cannot reach the database at ${target} (E2EPOOL_DATABASE_URL): ${code}`, { cause: err });
  }
  if (code && /^[0-9A-Z]{5}$/.test(code) && DATABASE_REFUSALS.test(code)) {
    return new Error(`the database at ${target} (E2EPOOL_DATABASE_URL) refused: ${e.message}`, { cause: err });
  }
  return err;
}
