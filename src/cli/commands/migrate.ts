import type { CliCommand } from '../command.js';
import { loadConfigOrExit } from '../command.js';

export const migrateCommand: CliCommand = {
  command: 'migrate',
  describe: 'Apply database migrations (idempotent; safe with several instances starting at once)',
  handler: async () => {
    const config = await loadConfigOrExit();
    const { openDatabase, migrate } = await import('../../store/database.js');
    const database = await openDatabase(config.DATABASE_URL, { poolSize: 2 });
    try {
      await migrate(database);
      process.stdout.write(`migrations applied to ${database.where}\n`);
    } finally {
      await database.close();
    }
  },
};
