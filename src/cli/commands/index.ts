// Every CLI command, one module each.
import { serveCommand } from './serve.js';
import { workerCommand } from './worker.js';
import { devCommand } from './dev.js';
import { migrateCommand } from './migrate.js';
import { temporalDevCommand } from './temporal-dev.js';
import { simCommand } from './sim.js';
import { agentCommand } from './agent.js';
import { createCommand } from './create.js';
import { finalizeCommand } from './finalize.js';
import { statusCommand } from './status.js';
import { adminCommand } from './admin.js';

export const commands = [
  serveCommand,
  workerCommand,
  devCommand,
  migrateCommand,
  temporalDevCommand,
  simCommand,
  agentCommand,
  createCommand,
  finalizeCommand,
  statusCommand,
  adminCommand,
];
