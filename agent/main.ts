// Standalone entry for runner hosts: only the agent and the CLI verbs CI jobs call, no controller
// code. Same flags, outputs and exit codes as `e2epool` (usage errors exit 2, as Click did).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runnerHostVerbs } from './cli-commands.js';
import { AGENT_VERSION } from './version.js';

const cli = yargs(hideBin(process.argv))
  .scriptName('e2epool')
  .usage('$0 <command> [options]')
  .strict()
  .demandCommand(1, 'Name a command; see --help.')
  .help()
  .alias('help', 'h')
  .version(AGENT_VERSION)
  .fail((msg, err) => {
    process.stderr.write(err ? `Error: ${err.message}\n` : `Error: ${msg}\nRun 'e2epool --help' for usage.\n`);
    process.exit(err ? 1 : 2);
  });

for (const verb of runnerHostVerbs) cli.command(verb as any);

await cli.parseAsync();
