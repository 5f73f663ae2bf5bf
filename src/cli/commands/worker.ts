import type { CliCommand } from '../command.js';
import { assertProductionSecretsOrExit, loadConfigOrExit } from '../command.js';

export const workerCommand: CliCommand = {
  command: 'worker',
  describe: 'Run a Temporal worker for the checkpoint queue only (no HTTP, no agent sockets)',
  handler: async () => {
    const config = await loadConfigOrExit();
    await assertProductionSecretsOrExit(config, 'worker');
    const { startCheckpointWorker } = await import('../../checkpoint-worker.js');
    const { runUntilSignal } = await import('../run-until-signal.js');
    await runUntilSignal(async () => {
      const worker = await startCheckpointWorker(config);
      process.stdout.write(`e2epool worker polling ${config.TASK_QUEUE} on ${config.TEMPORAL_ADDRESS}\n`);
      return () => worker.stop();
    });
  },
};
