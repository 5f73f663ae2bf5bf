import type { CliCommand } from '../command.js';

export const finalizeCommand: CliCommand = {
  command: 'finalize',
  describe: "Finalize a checkpoint (through the local agent)",
  handler: () => {
    process.stderr.write('Error: e2epool finalize is not available in this build yet\n');
    process.exit(1);
  },
};
