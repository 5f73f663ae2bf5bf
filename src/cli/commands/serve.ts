import type { CliCommand } from '../command.js';
import { assertProductionSecretsOrExit, explainStartFailure, loadConfigOrExit, serviceLog } from '../command.js';

export const serveCommand: CliCommand = {
  command: 'serve',
  describe: 'Run the controller: HTTP API, agent gateway, dashboard and Temporal workers',
  builder: (y) => y.option('port', { type: 'number', describe: 'HTTP port (overrides E2EPOOL_PORT)' }),
  handler: async (args: { port?: number }) => {
    const log = await serviceLog('serve');
    const config = await loadConfigOrExit(args.port !== undefined ? { PORT: args.port } : {}, log);
    await assertProductionSecretsOrExit(config, 'serve', log);
    const { startController } = await import('../../controller.js');
    const { runUntilSignal } = await import('../run-until-signal.js');
    const logger = log.logger(config.LOG_LEVEL);
    await runUntilSignal(async (fail) => {
      const controller = await startController(config, { logger, onWorkerFailure: fail }).catch((err: unknown) => {
        throw explainStartFailure(err, config);
      });
      // Tools and tests find the address in this line: written whatever the log level.
      logger.child({}, { level: 'info' }).info({ url: controller.url, instanceId: controller.instanceId }, `e2epool controller listening on ${controller.url} (instance ${controller.instanceId})`);
      return () => controller.stop();
    }, log.signalLog(logger));
  },
};
