// The agent RPC activity, registered on this instance's own task queue (`e2epool-gw-<instanceId>`):
// runs a command through the live session held here, on exactly the session the workflow routed to.
// A failed command is an answer; a lost or wrong route is an error the workflow re-routes on.
import { Context } from '@temporalio/activity';
import { E2epoolError } from '../src/domain/errors.js';
import type { AgentGateway } from '../src/gateway/gateway.js';
import type { Runner, RunnerRegistry } from '../src/inventory/registry.js';
import type { Logger } from '../src/logger.js';
import type { AgentActivities, AgentCommandInput, AgentCommandResult } from './types.js';

export interface AgentActivityDeps {
  gateway: Pick<AgentGateway, 'sessionOf' | 'runCommand'>;
  registry: Pick<RunnerRegistry, 'getRunner'>;
  logger: Logger;
  /** Heartbeat period while the command runs; default 5000 ms (the workflow's heartbeat timeout is 20 s). */
  heartbeatIntervalMs?: number;
}

const COMMAND_NAMES: ReadonlySet<string> = new Set(['reset', 'cleanup', 'readiness', 'pause_runner', 'unpause_runner']);

/** The inventory command a legacy agent is sent raw; pause/unpause have none. */
function legacyCommandOf(runner: Runner | null, name: AgentCommandInput['name']): string | undefined {
  if (!runner) return undefined;
  switch (name) {
    case 'reset':
      return runner.resetCmd ?? undefined;
    case 'cleanup':
      return runner.cleanupCmd ?? undefined;
    case 'readiness':
      return runner.readinessCmd ?? undefined;
    default:
      return undefined;
  }
}

function validate(input: AgentCommandInput): void {
  if (!input || typeof input.runnerId !== 'string' || input.runnerId.length === 0) throw new E2epoolError('bad_request', 'runnerId is required');
  if (!COMMAND_NAMES.has(input.name)) throw new E2epoolError('bad_request', `unknown agent command '${String(input.name).slice(0, 64)}'`);
  if (!Number.isSafeInteger(input.expectedEpoch) || input.expectedEpoch <= 0) throw new E2epoolError('bad_request', 'expectedEpoch must be a positive integer');
}

export function createAgentActivities(deps: AgentActivityDeps): AgentActivities {
  const { gateway, registry, logger } = deps;
  const heartbeatMs = deps.heartbeatIntervalMs ?? 5000;

  return {
    async runAgentCommand(input): Promise<AgentCommandResult> {
      validate(input);
      const ctx = Context.current();
      const session = gateway.sessionOf(input.runnerId);
      if (!session) throw new E2epoolError('agent_not_delivered', `Agent ${input.runnerId} not connected to this controller instance`);
      if (session.sessionEpoch !== input.expectedEpoch) {
        throw new E2epoolError('agent_stale_route', `Agent ${input.runnerId} session here is epoch ${session.sessionEpoch}, the route said ${input.expectedEpoch}`, {
          sessionEpoch: session.sessionEpoch,
          expectedEpoch: input.expectedEpoch,
        });
      }
      let legacyCmd: string | undefined;
      if (session.kind === 'legacy') {
        const runner = await registry.getRunner(input.runnerId);
        if (!runner) throw new E2epoolError('runner_not_found', `Runner '${input.runnerId}' is not registered or not active`);
        legacyCmd = legacyCommandOf(runner, input.name);
      }
      const started = Date.now();
      const beat = () => ctx.heartbeat({ commandId: input.commandId, waitingMs: Date.now() - started });
      beat();
      const timer = setInterval(beat, heartbeatMs);
      try {
        const run = gateway.runCommand(input.runnerId, {
          name: input.name,
          commandId: input.commandId,
          timeoutSeconds: input.timeoutSeconds,
          expectedEpoch: input.expectedEpoch,
          ...(legacyCmd !== undefined ? { legacyCmd } : {}),
        });
        // Cancellation (heartbeat timeout, shutdown) stops the wait; the command itself may go on.
        run.catch(() => undefined);
        const result = await Promise.race([run, ctx.cancelled]);
        return { ok: true, exitCode: 0, stdout: result.stdout, stderr: result.stderr, durationMs: result.durationMs };
      } catch (err) {
        if (err instanceof E2epoolError && err.code === 'agent_command_failed') {
          const extra = err.extra as { exitCode?: unknown; stdout?: unknown; stderr?: unknown; durationMs?: unknown };
          return {
            ok: false,
            exitCode: typeof extra.exitCode === 'number' ? extra.exitCode : -1,
            stdout: typeof extra.stdout === 'string' ? extra.stdout : '',
            stderr: typeof extra.stderr === 'string' ? extra.stderr : err.detail,
            durationMs: typeof extra.durationMs === 'number' ? extra.durationMs : Date.now() - started,
          };
        }
        logger.debug({ runnerId: input.runnerId, commandId: input.commandId, code: (err as E2epoolError).code }, 'agent command not run');
        throw err;
      } finally {
        clearInterval(timer);
      }
    },
  };
}
