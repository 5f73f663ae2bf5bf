// The e2epool command line: controller verbs (serve, worker, dev, migrate, temporal-dev, sim) and the
// runner-host verbs (agent, create, finalize, status) and the operator's admin verbs. Unknown flags
// are errors; --version prints the version.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.js';
import { usageExitCode } from './exit-codes.js';
import { AGENT_VERSION } from '../../agent/version.js';

const cli = yargs(hideBin(process.argv))
  .scriptName('e2epool')
  .usage('$0 <command> [options]')
  .strict()
  .demandCommand(1, 'Name a command; see --help.')
  .recommendCommands()
  .help()
  .alias('help', 'h')
  .version(AGENT_VERSION)
  .wrap(Math.min(110, process.stdout.columns || 100))
  .fail((msg, err) => {
    if (err instanceof Error) {
      process.stderr.write(`Error: ${err.message}\n`);
      process.exit(1);
    }
    const text = msg || (typeof err === 'string' ? err : 'invalid usage');
    process.stderr.write(`Error: ${text}\nRun 'e2epool --help' for usage.\n`);
    process.exit(usageExitCode);
  });

for (const command of commands) cli.command(command as any);

await cli.parseAsync();
