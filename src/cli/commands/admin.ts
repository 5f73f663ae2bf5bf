// `e2epool admin <verb>`: operator verbs over the controller's admin HTTP API (src/cli/admin/).
import type { Argv } from 'yargs';
import type { CliCommand } from '../command.js';
import { adminSubcommands, globalOptions } from '../admin/verbs.js';

export const adminCommand: CliCommand = {
  command: 'admin',
  describe: 'Operator verbs over the admin HTTP API: runners, checkpoints, maintenance, cleanup, webhooks, audit',
  builder: (y: Argv) => {
    let built = globalOptions(y);
    for (const sub of adminSubcommands) built = built.command(sub as any);
    return built
      .demandCommand(1, 'Name an admin verb; see e2epool admin --help.')
      .epilogue(
        'The controller URL and admin token come from --url/--token, else E2EPOOL_URL/E2EPOOL_ADMIN_TOKEN, else ~/.config/e2epool/admin.yml (url: and token:, mode 0600). ' +
          'Exit codes: 0 done, 1 refused by the controller (its message is shown), 2 usage error or controller unreachable.',
      )
      .example('$0 admin runners list', 'Runners as a table')
      .example('$0 admin checkpoints list --state needs_attention', 'What needs an operator')
      .example('$0 admin maintenance on "Upgrading, back at 14:00"', 'Refuse new creates')
      .example('E2EPOOL_URL=https://e2epool.example.com $0 admin audit --since 24h --json', 'Scripted');
  },
  handler: () => undefined,
};
