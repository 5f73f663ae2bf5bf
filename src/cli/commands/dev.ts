// `e2epool dev`: the whole system on one machine with no configuration: Temporal dev server, PGlite,
// simulated Proxmox and GitLab, the controller, demo runner hosts with agents and demo CI jobs.
// Ctrl-C or SIGTERM stops every child and exits 0; a failure at start prints one line and exits 1.
import type { Argv } from 'yargs';
import type { CliCommand } from '../command.js';
import { exitError, exitOk } from '../exit-codes.js';

interface DevArgs {
  'keep-state': boolean;
  port: number;
  'temporal-port': number;
  'ui-port': number;
  runners: number;
  'demo-jobs': boolean;
  profile: 'fast' | 'realistic';
  'data-dir': string;
  'log-format': 'pretty' | 'json';
}

const isPort = (value: number) => Number.isInteger(value) && value >= 0 && value <= 65535;

export const devCommand: CliCommand<DevArgs> = {
  command: 'dev',
  describe: 'Run everything embedded: Temporal dev server, PGlite, simulators, demo runners and the controller',
  builder: (y: Argv) =>
    y
      .option('keep-state', { type: 'boolean', default: false, describe: 'Keep the Temporal and PGlite data of the previous run (default: start fresh)' })
      .option('port', { type: 'number', default: 8080, describe: 'HTTP port of the API and agent gateway (0 picks a free one)' })
      .option('temporal-port', { type: 'number', default: 7233, describe: 'Temporal frontend port (0 picks a free one)' })
      .option('ui-port', { type: 'number', default: 8233, describe: 'Temporal Web UI port (0 picks a free one)' })
      .option('runners', { type: 'number', default: 3, describe: 'Demo runners: every third is bare metal, the others Proxmox VMs' })
      .option('demo-jobs', { type: 'boolean', default: true, describe: 'Run demo CI jobs on the runners (--no-demo-jobs: runners only)' })
      .option('profile', { choices: ['fast', 'realistic'] as const, default: 'fast' as const, describe: 'Simulated Proxmox task durations and demo job lengths' })
      .option('data-dir', { type: 'string', default: '.data', describe: 'Directory of the dev state (<dir>/dev/)' })
      .option('log-format', { choices: ['pretty', 'json'] as const, default: 'pretty' as const, describe: 'Log lines on stdout: compact text or pino JSON' })
      .check((args) => {
        for (const key of ['port', 'temporal-port', 'ui-port'] as const) {
          if (!isPort(args[key])) throw new Error(`--${key} must be an integer from 0 to 65535, got ${String(args[key])}`);
        }
        if (!Number.isInteger(args.runners) || args.runners < 1 || args.runners > 50) throw new Error(`--runners must be an integer from 1 to 50, got ${String(args.runners)}`);
        if (!args['data-dir']) throw new Error('--data-dir must not be empty');
        return true;
      }) as unknown as Argv<DevArgs>,
  handler: async (args) => {
    const { createLogger } = await import('../../logger.js');
    const { lineLogDestination } = await import('../../dev/log-lines.js');
    const { startDevEnvironment, DevStartAborted, DevStartError } = await import('../../dev/dev-environment.js');
    const level = process.env.E2EPOOL_LOG_LEVEL || 'info';
    const logger = createLogger({ level, name: 'e2epool-dev', ...(args['log-format'] === 'pretty' ? { destination: lineLogDestination() } : {}) });

    const abort = new AbortController();
    let environment: Awaited<ReturnType<typeof startDevEnvironment>> | undefined;
    let stopping = false;
    let failedWhileStopping = false;
    // A Temporal client call still retrying when the controller closes its connection during the
    // stop throws from a gRPC timer. That one is expected; anything else during the stop is
    // reported and exits 1.
    const onLateError = (err: Error) => {
      if (/Channel has been shut down/.test(err.message)) {
        logger.warn({ error: err.message }, 'a Temporal call was still retrying when its connection closed; ignored while stopping');
        return;
      }
      failedWhileStopping = true;
      logger.error({ err }, 'uncaught error while stopping');
    };
    const stopAndExit = () => {
      process.on('uncaughtException', onLateError);
      environment!.stop().then(
        () => {
          process.stdout.write('e2epool dev stopped.\n');
          process.exit(failedWhileStopping ? exitError : exitOk);
        },
        (err: unknown) => {
          process.stderr.write(`Error while stopping: ${err instanceof Error ? err.message : String(err)}\n`);
          process.exit(exitError);
        },
      );
    };
    // Registered before any child starts, so it runs before the process-group hook signals them:
    // agents must know they are being stopped, not crashing.
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`Received ${signal} again, exiting now.\n`);
        process.exit(exitError); // the exit hook still signals every child group
      }
      stopping = true;
      abort.abort();
      process.stdout.write(`Received ${signal}, stopping e2epool dev...\n`);
      if (!environment) return; // still starting: the start gives up and the code below exits
      environment.beginStop();
      stopAndExit();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    try {
      environment = await startDevEnvironment({
        dataDir: args['data-dir'],
        port: args.port,
        temporalPort: args['temporal-port'],
        uiPort: args['ui-port'],
        runners: args.runners,
        demoJobs: args['demo-jobs'],
        profile: args.profile,
        keepState: args['keep-state'],
        logger,
        signal: abort.signal,
      });
    } catch (err) {
      if (err instanceof DevStartAborted || stopping) {
        process.stdout.write('e2epool dev stopped.\n');
        process.exit(exitOk);
      }
      const message = err instanceof DevStartError ? err.message : err instanceof Error ? err.message : String(err);
      process.stderr.write(`Error: ${message.split('\n')[0]}\n`);
      if (!(err instanceof DevStartError) && err instanceof Error && message.includes('\n')) process.stderr.write(`${message.split('\n').slice(1).join('\n')}\n`);
      process.exit(exitError);
    }
    if (stopping) {
      stopAndExit();
      return;
    }

    const env = environment;
    const runnerLines = env.runners.map(
      (r) => `    ${r.runnerId.padEnd(14)} ${r.backend === 'proxmox' ? `Proxmox VM ${r.vmid}` : 'bare metal'}, GitLab runner ${r.gitlabRunnerId}, agent log ${r.logFile}`,
    );
    process.stdout.write(
      [
        '',
        'e2epool dev is running.',
        `  API:             ${env.apiUrl}`,
        `  Temporal Web UI: ${env.temporalUiUrl}`,
        `  Temporal:        ${env.temporalAddress} (namespace ${env.namespace})`,
        `  Admin token:     ${env.adminToken}${env.adminTokenFromEnv ? ' (from E2EPOOL_ADMIN_TOKEN)' : ''}`,
        `  Proxmox sim:     ${env.proxmoxUrl} (admin API ${env.proxmoxUrl}/_sim/vms)`,
        `  GitLab sim:      ${env.gitlabUrl} (admin API ${env.gitlabUrl}/_sim/state)`,
        `  Inventory:       ${env.inventoryPath}`,
        `  Demo runners:${env.demoJobs ? ' (demo jobs succeed and fail at random)' : ' (no demo jobs)'}`,
        ...runnerLines,
        `  Try: curl -H 'Authorization: Bearer ${env.adminToken}' ${env.apiUrl}/api/checkpoints`,
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
  },
};
