import type { CliCommand } from '../command.js';
import { explainStartFailure, loadConfigOrExit } from '../command.js';

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
    } catch (err) {
      const explained = explainStartFailure(err, config);
      if (explained === err) throw err;
      process.stderr.write(`Error: ${(explained as Error).message}\n`);
      process.exitCode = 1;
    } finally {
      await database.close();
    }
  },
};
