import type { CliCommand } from '../command.js';

export const simCommand: CliCommand = {
  command: 'sim <service>',
  describe: "Run a simulator (proxmox or gitlab)",
  handler: () => {
    process.stderr.write('Error: e2epool sim is not available in this build yet\n');
    process.exit(1);
  },
};
