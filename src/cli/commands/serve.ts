import type { CliCommand } from '../command.js';

export const serveCommand: CliCommand = {
  command: 'serve',
  describe: "Run the controller: HTTP API, agent gateway, dashboard and Temporal workers",
  handler: () => {
    process.stderr.write('Error: e2epool serve is not available in this build yet\n');
    process.exit(1);
  },
};
