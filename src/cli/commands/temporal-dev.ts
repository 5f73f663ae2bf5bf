import type { CliCommand } from '../command.js';

export const temporalDevCommand: CliCommand = {
  command: 'temporal-dev',
  describe: "Run the Temporal dev server with e2epool's search attributes and Web UI",
  handler: () => {
    process.stderr.write('Error: e2epool temporal-dev is not available in this build yet\n');
    process.exit(1);
  },
};
