// `e2epool agent`: the runner-host verb defined in agent/ (which also ships alone to runner hosts).
import type { CliCommand } from '../command.js';
import { agentVerb } from '../../../agent/cli-commands.js';

export const agentCommand: CliCommand = agentVerb;
