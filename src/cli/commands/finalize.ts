// `e2epool finalize`: the runner-host verb defined in agent/ (which also ships alone to runner hosts).
import type { CliCommand } from '../command.js';
import { finalizeVerb } from '../../../agent/cli-commands.js';

export const finalizeCommand: CliCommand = finalizeVerb;
