import type { CliCommand } from '../command.js';
import { assertProductionSecretsOrExit, explainStartFailure, loadConfigOrExit, serviceLog } from '../command.js';

export const workerCommand: CliCommand = {
  command: 'worker',
  describe: 'Run a Temporal worker for the checkpoint queue only (no HTTP, no agent sockets)',
  handler: async () => {
    const log = await serviceLog('worker');
    const config = await loadConfigOrExit({}, log);
    await assertProductionSecretsOrExit(config, 'worker', log);
    const { startCheckpointWorker } = await import('../../checkpoint-worker.js');
    const { runUntilSignal } = await import('../run-until-signal.js');
    const logger = log.logger(config.LOG_LEVEL);
    await runUntilSignal(async (fail) => {
      const worker = await startCheckpointWorker(config, { logger, onWorkerFailure: fail }).catch((err: unknown) => {
        throw explainStartFailure(err, config);
      });
      logger.child({}, { level: 'info' }).info({ taskQueue: config.TASK_QUEUE, temporal: config.TEMPORAL_ADDRESS }, `e2epool worker polling ${config.TASK_QUEUE} on ${config.TEMPORAL_ADDRESS}`);
      return () => worker.stop();
    }, log.signalLog(logger));
  },
};
