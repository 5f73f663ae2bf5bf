// `e2epool create`: the runner-host verb defined in agent/ (which also ships alone to runner hosts).
import type { CliCommand } from '../command.js';
import { createVerb } from '../../../agent/cli-commands.js';

export const createCommand: CliCommand = createVerb;
