import type { CliCommand } from '../command.js';

export const createCommand: CliCommand = {
  command: 'create',
  describe: "Create a checkpoint for this runner's CI job (through the local agent)",
  handler: () => {
    process.stderr.write('Error: e2epool create is not available in this build yet\n');
    process.exit(1);
  },
};
