// `e2epool status`: the runner-host verb defined in agent/ (which also ships alone to runner hosts).
import type { CliCommand } from '../command.js';
import { statusVerb } from '../../../agent/cli-commands.js';

export const statusCommand: CliCommand = statusVerb;
