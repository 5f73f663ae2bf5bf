// Agent commands from the workflow: find the instance holding the runner's session, send the
// command there, and tell "never delivered" (re-route, always safe) from "sent, then lost" (the
// host may have run it). A legacy agent cannot de-duplicate, so a lost command is never sent to it
// again; a current agent gets the same command id again and attaches to the run or replays it.
import { log, sleep } from '@temporalio/workflow';
import type { AgentCommandInput, AgentCommandResult, AgentRoute } from '../../activities/types.js';
import { backoffSeconds, boundedPollSeconds, isSessionFresh } from '../../src/domain/decisions.js';
import type { CheckpointTimings } from '../messages.js';
import type { CheckpointActivityProxies } from './activities.js';
import { answerOfFailure, failureMessage, failureType, wasClosedByHost, wasNotDelivered } from './failures.js';
import type { CheckpointRun } from './state.js';

export type CommandName = AgentCommandInput['name'];
export type RoutedRoute = AgentRoute & { taskQueue: string };

export type CommandOutcome =
  | { kind: 'result'; result: AgentCommandResult }
  | { kind: 'not_declared'; detail: string }
  /** Never delivered within the route attempts. */
  | { kind: 'unreachable'; detail: string }
  /** Sent, and the answer was lost: the host may or may not have run it. */
  | { kind: 'lost'; legacy: boolean; closedByHost: boolean; detail: string }
  /** A current agent's session was lost during the command and came back with another boot id. */
  | { kind: 'rebooted'; detail: string };

export class AgentCommands {
  constructor(
    private readonly runnerId: string,
    private readonly checkpoint: string,
    private readonly t: CheckpointTimings,
    private readonly acts: CheckpointActivityProxies,
    private readonly run: CheckpointRun,
  ) {}

  /** The route to the runner's agent, or null; a failing lookup counts as no route, never a failure. */
  async findRoute(): Promise<RoutedRoute | null> {
    try {
      const route = await this.acts.routes.resolveAgentRoute({ runnerId: this.runnerId });
      return route && route.taskQueue ? (route as RoutedRoute) : null;
    } catch (err) {
      log.warn('agent route lookup failed', { checkpoint: this.checkpoint, error: failureMessage(err) });
      return null;
    }
  }

  /** One delivery on a known route; pending transitions are written first. */
  async send(route: RoutedRoute, name: CommandName, commandId: string): Promise<AgentCommandResult> {
    await this.run.commit();
    return this.acts.gateway(route).runAgentCommand({ runnerId: this.runnerId, name, commandId, timeoutSeconds: this.t.commandTimeoutSeconds, expectedEpoch: route.sessionEpoch });
  }

  /** One attempt on a known route, every failure folded into an outcome (readiness probes loop themselves). */
  async sendOnce(route: RoutedRoute, name: CommandName, commandId: string): Promise<CommandOutcome> {
    try {
      return { kind: 'result', result: await this.send(route, name, commandId) };
    } catch (err) {
      return answerOfFailure(err) ?? { kind: 'unreachable', detail: failureMessage(err) };
    }
  }

  /**
   * Runs a command wherever the session is, re-routing what was not delivered. `minEpoch` refuses
   * sessions that began before it (readiness after a reboot).
   */
  async execute(name: CommandName, commandId: string, opts: { minEpoch?: number } = {}): Promise<CommandOutcome> {
    let lastDetail = 'agent not connected';
    let lostOnce = false;
    for (let attempt = 1; attempt <= this.t.agentRouteAttempts; attempt++) {
      if (attempt > 1) await this.run.commitThen(() => sleep(`${backoffSeconds(attempt - 1, 2, 30)} seconds`));
      const route = await this.findRoute();
      if (!route || (opts.minEpoch !== undefined && !isSessionFresh(route.sessionEpoch, opts.minEpoch))) {
        lastDetail = route ? 'agent session is older than the reset' : 'agent not connected';
        continue;
      }
      try {
        return { kind: 'result', result: await this.send(route, name, commandId) };
      } catch (err) {
        lastDetail = failureMessage(err);
        const answer = answerOfFailure(err);
        if (answer) return answer;
        const notDelivered = wasNotDelivered(err);
        if (!notDelivered && name !== 'readiness') {
          if (route.legacy) return { kind: 'lost', legacy: true, closedByHost: wasClosedByHost(err), detail: lastDetail };
          if (name === 'reset') return this.awaitAgentAfterLostReset(route, commandId, lastDetail);
          lostOnce = true;
        }
        log.warn(notDelivered ? 'agent command not delivered, re-routing' : 'agent command lost, sending it again', { checkpoint: this.checkpoint, command: name, commandId, attempt, type: failureType(err) });
      }
    }
    if (lostOnce) return { kind: 'lost', legacy: false, closedByHost: false, detail: lastDetail };
    return { kind: 'unreachable', detail: lastDetail };
  }

  /**
   * A current agent's session dropped while it ran the reset. Within the readiness budget, wait for
   * it to come back: with another boot id the host rebooted (what a reset does); with the same one
   * the same command id goes again and the agent attaches to the run or replays its result.
   */
  private async awaitAgentAfterLostReset(lostOn: RoutedRoute, commandId: string, detail: string): Promise<CommandOutcome> {
    const deadline = Date.now() + this.t.readinessTimeoutSeconds * 1000;
    let last = lostOn;
    while (Date.now() < deadline) {
      await this.run.commitThen(() => sleep(`${boundedPollSeconds(this.t.readinessPollIntervalSeconds, this.t.readinessTimeoutSeconds)} seconds`));
      const route = await this.findRoute();
      if (!route || route.sessionEpoch === last.sessionEpoch) continue;
      // A new session whose hello is not recorded yet says nothing about its boot: ask again.
      if (lostOn.bootId && !route.bootId) continue;
      if (lostOn.bootId && route.bootId !== lostOn.bootId) {
        return { kind: 'rebooted', detail: `the session was lost during the reset and came back with boot id ${route.bootId} (was ${lostOn.bootId})` };
      }
      try {
        return { kind: 'result', result: await this.send(route, 'reset', commandId) };
      } catch (err) {
        detail = failureMessage(err);
        const answer = answerOfFailure(err);
        if (answer) return answer;
        if (!wasNotDelivered(err)) last = route;
        log.warn('reset sent again after a lost session failed; waiting for the agent', { checkpoint: this.checkpoint, commandId, type: failureType(err) });
      }
    }
    return { kind: 'lost', legacy: false, closedByHost: false, detail: `${detail}; the agent did not come back within ${this.t.readinessTimeoutSeconds}s` };
  }
}
