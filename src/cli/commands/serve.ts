import type { CliCommand } from '../command.js';
import { assertProductionSecretsOrExit, loadConfigOrExit } from '../command.js';

export const serveCommand: CliCommand = {
  command: 'serve',
  describe: 'Run the controller: HTTP API, agent gateway, dashboard and Temporal workers',
  builder: (y) => y.option('port', { type: 'number', describe: 'HTTP port (overrides E2EPOOL_PORT)' }),
  handler: async (args: { port?: number }) => {
    const config = await loadConfigOrExit(args.port !== undefined ? { PORT: args.port } : {});
    await assertProductionSecretsOrExit(config, 'serve');
    const { startController } = await import('../../controller.js');
    const { runUntilSignal } = await import('../run-until-signal.js');
    await runUntilSignal(async () => {
      const controller = await startController(config);
      process.stdout.write(`e2epool controller listening on ${controller.url} (instance ${controller.instanceId})\n`);
      return () => controller.stop();
    });
  },
};
