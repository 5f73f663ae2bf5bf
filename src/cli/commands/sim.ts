// `e2epool sim <service> [options]`: runs a simulator in the foreground. Each simulator parses its own
// options, so everything after the service name is handed over unparsed.
import { hideBin } from 'yargs/helpers';
import type { CliCommand } from '../command.js';
import { usageExitCode } from '../exit-codes.js';

const simulators: Record<string, () => Promise<(args: string[]) => Promise<void>>> = {
  proxmox: async () => (await import('../../../sim/proxmox/cli.js')).runProxmoxSimulatorCli,
  gitlab: async () => (await import('../../../sim/gitlab/cli.js')).runGitlabSimulatorCli,
};

/** The arguments after `sim <service>` exactly as typed. */
function argsAfterService(): string[] {
  const raw = hideBin(process.argv);
  const at = raw.indexOf('sim');
  return at < 0 ? [] : raw.slice(at + 2);
}

export const simCommand: CliCommand<{ service: string }> = {
  command: 'sim <service>',
  describe: 'Run a simulator (proxmox or gitlab) in the foreground (options after the service name belong to that simulator)',
  builder: (y) => y
    .positional('service', { type: 'string', choices: Object.keys(simulators), describe: 'Which simulator' })
    .strict(false)
    .parserConfiguration({ 'unknown-options-as-args': true }) as any,
  handler: async (args) => {
    const load = simulators[args.service];
    if (!load) {
      process.stderr.write(`Error: unknown simulator ${JSON.stringify(args.service)}; choose ${Object.keys(simulators).join(' or ')}\n`);
      process.exit(usageExitCode);
    }
    const run = await load();
    await run(argsAfterService());
  },
};
