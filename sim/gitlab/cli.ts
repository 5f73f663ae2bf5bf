// `e2epool sim gitlab`: runs the GitLab simulator in the foreground until SIGINT/SIGTERM.
// Flags: --port (default 8929), --host (127.0.0.1), --token (repeatable), --webhook-url
// (repeatable), --webhook-secret (sent as X-Gitlab-Token to every webhook URL).
import { parseArgs } from 'node:util';
import { E2epoolError } from '../../src/domain/errors.js';
import { usageExitCode } from '../../src/cli/exit-codes.js';
import { DEFAULT_SIM_TOKEN, startGitlabSimulator, type GitlabSimulator } from './simulator.js';

export const DEFAULT_SIM_PORT = 8929;

export interface GitlabSimulatorCliOptions {
  /** Where to print the banner; default process.stdout. */
  out?: NodeJS.WritableStream;
  /** Called once the simulator listens (tests use it to talk to it and stop it). */
  onStarted?: (sim: GitlabSimulator) => void;
  /** Stops the simulator when aborted, like a signal. */
  signal?: AbortSignal;
}

/**
 * Parses the flags, starts the simulator, prints its URL and resolves after it has stopped. Bad
 * flags print `Error: ...` and exit with the CLI's usage code (2), as the other simulator does.
 */
export async function runGitlabSimulatorCli(args: string[], cliOpts: GitlabSimulatorCliOptions = {}): Promise<void> {
  let flags: GitlabSimulatorFlags;
  try {
    flags = parseGitlabSimulatorArgs(args);
  } catch (err) {
    if (err instanceof E2epoolError && err.code === 'validation') {
      process.stderr.write(`Error: ${err.message}\n`);
      process.exit(usageExitCode);
    }
    throw err;
  }
  const out = cliOpts.out ?? process.stdout;
  const sim = await startGitlabSimulator({
    port: flags.port,
    host: flags.host,
    tokens: flags.tokens.length > 0 ? flags.tokens : undefined,
    webhooks: flags.webhookUrls.map((url) => ({ url, token: flags.webhookSecret })),
  });
  out.write(`GitLab simulator listening on ${sim.url} (API ${sim.url}/api/v4, admin ${sim.url}/_sim)\n`);
  if (flags.tokens.length === 0) out.write(`No --token given: accepting the simulator's default token ${DEFAULT_SIM_TOKEN}\n`);
  for (const url of flags.webhookUrls) out.write(`Job Hook webhooks go to ${url}${flags.webhookSecret ? ' with X-Gitlab-Token' : ''}\n`);
  cliOpts.onStarted?.(sim);

  await new Promise<void>((resolve) => {
    const finish = () => {
      process.off('SIGINT', finish);
      process.off('SIGTERM', finish);
      cliOpts.signal?.removeEventListener('abort', finish);
      resolve();
    };
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    if (cliOpts.signal?.aborted) finish();
    cliOpts.signal?.addEventListener('abort', finish, { once: true });
  });
  await sim.stop();
  out.write('GitLab simulator stopped\n');
}

export interface GitlabSimulatorFlags {
  port: number;
  host: string;
  tokens: string[];
  webhookUrls: string[];
  webhookSecret: string | undefined;
}

/** Parses `e2epool sim gitlab` flags; throws E2epoolError('validation') naming the bad one. */
export function parseGitlabSimulatorArgs(args: string[]): GitlabSimulatorFlags {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      allowPositionals: false,
      strict: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        token: { type: 'string', multiple: true },
        'webhook-url': { type: 'string', multiple: true },
        'webhook-secret': { type: 'string' },
      },
    }));
  } catch (err) {
    throw new E2epoolError('validation', `gitlab simulator: ${(err as Error).message}`);
  }
  const port = values.port === undefined ? DEFAULT_SIM_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new E2epoolError('validation', `--port must be 0-65535, got ${values.port}`);
  const tokens = values.token ?? [];
  if (tokens.some((t) => t === '')) throw new E2epoolError('validation', '--token must not be empty');
  const webhookUrls = values['webhook-url'] ?? [];
  for (const url of webhookUrls) {
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new E2epoolError('validation', `--webhook-url must be an http(s) URL, got ${url}`);
  }
  const webhookSecret = values['webhook-secret'];
  if (webhookSecret !== undefined && webhookUrls.length === 0) throw new E2epoolError('validation', '--webhook-secret needs at least one --webhook-url');
  return { port, host: values.host ?? '127.0.0.1', tokens, webhookUrls, webhookSecret: webhookSecret || undefined };
}
