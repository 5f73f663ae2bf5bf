import type { CliCommand } from '../command.js';

export const devCommand: CliCommand = {
  command: 'dev',
  describe: "Run everything embedded: Temporal dev server, PGlite, simulators, demo runners and the controller",
  handler: () => {
    process.stderr.write('Error: e2epool dev is not available in this build yet\n');
    process.exit(1);
  },
};
