// `e2epool temporal-dev`: the Temporal dev server (CLI from .tools/venv) with a persistent SQLite
// file, the Web UI and our search attributes registered. Ctrl-C or SIGTERM stops its whole process
// group before we exit.
import path from 'node:path';
import type { Argv } from 'yargs';
import type { CliCommand } from '../command.js';
import { loadConfigOrExit } from '../command.js';
import { exitError, exitOk } from '../exit-codes.js';

interface TemporalDevArgs {
  'db-file': string;
  port: number;
  'ui-port': number;
  ip: string;
  fresh: boolean;
}

const isPort = (value: number) => Number.isInteger(value) && value >= 0 && value <= 65535;

export const temporalDevCommand: CliCommand<TemporalDevArgs> = {
  command: 'temporal-dev',
  describe: "Run the Temporal dev server with e2epool's search attributes and Web UI",
  builder: (y: Argv) =>
    y
      .option('db-file', { type: 'string', default: '.data/temporal.sqlite', describe: 'SQLite file that keeps Temporal state across runs' })
      .option('port', { type: 'number', default: 7233, describe: 'Frontend gRPC port (0 picks a free one)' })
      .option('ui-port', { type: 'number', default: 8233, describe: 'Web UI port (0 picks a free one)' })
      .option('ip', { type: 'string', default: '127.0.0.1', describe: 'Address the frontend and the Web UI bind' })
      .option('fresh', { type: 'boolean', default: false, describe: 'Delete the SQLite file first (start from an empty Temporal database)' })
      .check((args) => {
        for (const key of ['port', 'ui-port'] as const) {
          if (!isPort(args[key])) throw new Error(`--${key} must be an integer from 0 to 65535, got ${String(args[key])}`);
        }
        if (!args['db-file']) throw new Error('--db-file must not be empty');
        return true;
      }) as unknown as Argv<TemporalDevArgs>,
  handler: async (args) => {
    const config = await loadConfigOrExit();
    const { createLogger } = await import('../../logger.js');
    const { startTemporalDevServer, deleteTemporalDatabase } = await import('../../../temporal/dev-server.js');
    // Logs go to stderr; stdout carries the addresses for people and scripts.
    const logger = createLogger({ level: config.LOG_LEVEL, name: 'temporal-dev', destination: process.stderr });
    const dbFile = path.resolve(args['db-file']);
    const namespace = config.TEMPORAL_NAMESPACE;

    let stopping = false;
    let server: Awaited<ReturnType<typeof startTemporalDevServer>> | undefined;
    const shutdown = async (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      // The launcher's own signal hook has already sent SIGTERM to the server's process group.
      if (!server) return; // still starting: the start fails and the handler below exits
      process.stdout.write(`Received ${signal}, stopping the Temporal dev server...\n`);
      await server.stop();
      process.stdout.write('Temporal dev server stopped.\n');
      process.exit(exitOk);
    };
    // `on`, not `once`: the launcher's hook only exits the process when it is the sole listener.
    process.on('SIGINT', (s) => void shutdown(s));
    process.on('SIGTERM', (s) => void shutdown(s));

    if (args.fresh) deleteTemporalDatabase(dbFile);
    try {
      server = await startTemporalDevServer({
        logger,
        dbFile,
        port: args.port || undefined,
        uiPort: args['ui-port'] || undefined,
        ip: args.ip,
        namespace,
        startTimeoutMs: 60_000,
      });
    } catch (err) {
      if (stopping) process.exit(exitOk);
      process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(exitError);
    }
    if (stopping) {
      await server.stop();
      process.exit(exitOk);
    }

    const added = server.registeredSearchAttributes;
    process.stdout.write(
      [
        'Temporal dev server is running.',
        `  Frontend:  ${server.address}`,
        `  Web UI:    ${server.uiUrl ?? '(disabled)'}`,
        `  Namespace: ${namespace}`,
        `  Database:  ${dbFile}${args.fresh ? ' (fresh)' : ''}`,
        `  Search attributes: ${added.length ? `registered ${added.join(', ')}` : 'all present'}`,
        `Point the controller at it with E2EPOOL_TEMPORAL_ADDRESS=${server.address}`,
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );

    const { code, signal } = await server.exited;
    if (!stopping) {
      process.stderr.write(`Error: the Temporal dev server exited unexpectedly (code ${code}, signal ${signal}).\n`);
      process.exit(exitError);
    }
  },
};
