import type { CliCommand } from '../command.js';

export const agentCommand: CliCommand = {
  command: 'agent',
  describe: "Run the runner-host agent daemon",
  handler: () => {
    process.stderr.write('Error: e2epool agent is not available in this build yet\n');
    process.exit(1);
  },
};
