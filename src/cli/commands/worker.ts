import type { CliCommand } from '../command.js';

export const workerCommand: CliCommand = {
  command: 'worker',
  describe: "Run Temporal workers only (checkpoint queue)",
  handler: () => {
    process.stderr.write('Error: e2epool worker is not available in this build yet\n');
    process.exit(1);
  },
};
