// Who may open an agent session: the gateway's authenticate() over the registry. A runner with an
// agent credential accepts only it; the runner token (the one CI jobs hold) is refused and logged.
import type { Logger } from '../logger.js';
import type { RunnerRegistry } from './registry.js';

export function agentAuthenticator(registry: Pick<RunnerRegistry, 'authenticateAgent'>, logger?: Logger) {
  return async (runnerId: string | undefined, token: string): Promise<{ runnerId: string } | null> => {
    const result = await registry.authenticateAgent(token);
    if (!result) return null;
    if ('refused' in result) {
      logger?.warn({ runnerId: result.refused }, 'agent session refused: this runner has an agent credential, and its runner token (the one CI jobs use) cannot open agent sessions');
      return null;
    }
    if (runnerId !== undefined && runnerId !== result.runner.runnerId) return null;
    return { runnerId: result.runner.runnerId };
  };
}
