import type { CliCommand } from '../command.js';

export const statusCommand: CliCommand = {
  command: 'status',
  describe: "Show a checkpoint's state (through the local agent)",
  handler: () => {
    process.stderr.write('Error: e2epool status is not available in this build yet\n');
    process.exit(1);
  },
};
