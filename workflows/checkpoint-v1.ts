// The first release of the checkpoint workflow (type checkpointWorkflow), frozen: new checkpoints start
// as checkpointV2Workflow (workflows/checkpoint/). It stays registered until no run of it is open.
// The checkpoint workflow: claim, snapshot, await the outcome, then clean up or roll back, prove
// readiness and unpause. A thin interpreter of src/domain: the transition table decides what may
// follow what; this file sequences activities and projects every transition.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type {
  AgentActivities,
  AgentCommandInput,
  AgentCommandResult,
  AgentRoute,
  BackendActivities,
  CiActivities,
  ClaimResult,
  ProjectionInput,
  RouteActivities,
  RunnerPlan,
  StoreActivities,
} from '../activities/types.js';
import type { CheckpointState, NeedsAttentionReason, WorkflowEnd } from '../src/domain/checkpoint-states.js';
import {
  backoffSeconds,
  decideAtTtl,
  decideIdle,
  initialIdleProgress,
  isSessionFresh,
  pathAfterFinalize,
  resetNeedsFreshSession,
  type JobObservation,
} from '../src/domain/decisions.js';
import { parseFinalizeStatus, type FinalizeIntent } from '../src/domain/finalize.js';
import { applyEvent, initialSnapshot, InvalidTransitionError, type CheckpointEvent, type CheckpointSnapshot, type TransitionResult } from '../src/domain/transitions.js';
import {
  checkpointQuery,
  createUpdate,
  finalizeSignal,
  releaseSignal,
  retryResetSignal,
  type CheckpointWorkflowInput,
  type CreateResult,
  type ReleaseSignal,
  type RetryResetSignal,
} from './messages.js';
import { CheckpointStateSearchAttribute, NeedsAttentionSearchAttribute } from '../temporal/search-attributes.js';


type CreateOutcome = { ok: true } | { ok: false; code: string; detail: string };
type OperatorRequest = { kind: 'retry_reset'; signal: RetryResetSignal } | { kind: 'release'; signal: ReleaseSignal };
type RouteOutcome =
  | { kind: 'result'; result: AgentCommandResult }
  | { kind: 'lost'; legacy: boolean; detail: string; byDrain?: boolean }
  /** A current agent's session was lost during the command and came back with another boot id. */
  | { kind: 'rebooted'; detail: string }
  | { kind: 'not_declared'; detail: string }
  | { kind: 'unreachable'; detail: string };

/**
 * Workflows started before this marker keep the first release's behaviour on replay; new ones get:
 * delivery-aware agent re-routing (a reset never delivered is never taken for a reboot), operator
 * signals that count only in the needs-attention episode they answer, a create deadline that cannot
 * answer 504 once the checkpoint is committed, command ids unique per attempt, and the pause_failed
 * alert resolved when the checkpoint leaves needs attention; database work and route lookups as local
 * activities.
 */
export const CHECKPOINT_FIXES_PATCH = 'checkpoint-fixes-2026-12';

/** The operator's name from a signal; null when the payload has none (the signal is then invalid). */
function actorOf(sig: unknown): string | null {
  const actor = sig && typeof sig === 'object' ? (sig as { actor?: unknown }).actor : undefined;
  return typeof actor === 'string' && actor.length > 0 ? actor.slice(0, 100) : null;
}

function episodeOf(sig: unknown): number | undefined {
  const episode = sig && typeof sig === 'object' ? (sig as { episode?: unknown }).episode : undefined;
  return typeof episode === 'number' && Number.isInteger(episode) ? episode : undefined;
}

/** Failure types that prove a command never reached the host (anything else may have run it). */
const NOT_DELIVERED_TYPES: ReadonlySet<string> = new Set(['agent_not_delivered', 'agent_stale_route', 'timeout:SCHEDULE_TO_START']);

/** Failures that are the command's answer rather than a delivery problem. */
function answerOfFailure(type: string | undefined, detail: string): RouteOutcome | null {
  if (type === 'command_not_declared') return { kind: 'not_declared', detail };
  // The gateway's reply deadline passed: the command ran and failed as far as we can know.
  if (type === 'agent_command_timeout') return { kind: 'result', result: { ok: false, exitCode: -1, stdout: '', stderr: detail, durationMs: 0 } };
  return null;
}

/** Thrown inside a step to leave it for needs_attention. */
class NeedsAttention extends Error {
  constructor(
    readonly reason: NeedsAttentionReason,
    readonly detail: string,
  ) {
    super(detail);
  }
}

export async function checkpointWorkflow(input: CheckpointWorkflowInput): Promise<WorkflowEnd> {
  const t = input.timings;
  const ref = { name: input.name, runnerId: input.runnerId };
  // Decided once, before anything else, so a run keeps one behaviour for its whole life.
  const fixes = patched(CHECKPOINT_FIXES_PATCH);

  // --- activities -------------------------------------------------------------------------------
  // Short database work (claims, projections, plans, epochs, alerts, route lookups) runs as local
  // activities in new runs: one marker each in the history instead of a server round trip.
  const storeOptions = {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
  } as const;
  const store = fixes ? proxyLocalActivities<StoreActivities>(storeOptions) : proxyActivities<StoreActivities>(storeOptions);
  const claimOptions = {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 5 },
  } as const;
  const claimOnce = fixes ? proxyLocalActivities<Pick<StoreActivities, 'claimRunner'>>(claimOptions) : proxyActivities<Pick<StoreActivities, 'claimRunner'>>(claimOptions);
  const backend = proxyActivities<BackendActivities>({
    startToCloseTimeout: `${t.backendStepTimeoutSeconds} seconds`,
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
  });
  const ci = proxyActivities<Omit<CiActivities, 'watchJob' | 'pauseRunner' | 'unpauseRunner'>>({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '20 seconds', maximumAttempts: 5 },
  });
  const pausing = proxyActivities<Pick<CiActivities, 'pauseRunner'>>({
    startToCloseTimeout: '1 minute',
    scheduleToCloseTimeout: `${t.pauseBudgetSeconds} seconds`,
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  });
  const unpausing = proxyActivities<Pick<CiActivities, 'unpauseRunner'>>({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
  });
  const watcher = proxyActivities<Pick<CiActivities, 'watchJob'>>({
    startToCloseTimeout: `${t.maxTtlSeconds + t.pollerIntervalSeconds} seconds`,
    heartbeatTimeout: `${t.pollerIntervalSeconds * 3 + 30} seconds`,
    retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });
  const routeOptions = {
    startToCloseTimeout: '15 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
  } as const;
  const routes = fixes ? proxyLocalActivities<RouteActivities>(routeOptions) : proxyActivities<RouteActivities>(routeOptions);

  // --- state ------------------------------------------------------------------------------------
  let cp: CheckpointSnapshot = initialSnapshot();
  let seq = 0;
  let step: string | null = null;
  let createRequested = false;
  let createOutcome: CreateOutcome | undefined;
  let createTimedOut = false;
  let cancelRequested = false;
  /** Set just before the snapshot_taken projection: past it, the create succeeds even if late. */
  let createCommitted = false;
  const finalizeQueue: FinalizeIntent[] = [];
  const operatorQueue: OperatorRequest[] = [];
  /** Seq of the step_failed projection that opened the current needs-attention episode. */
  let needsAttentionSeq: number | null = null;
  /** The episode an operator request was already taken for: later signals for it are ignored. */
  let answeredEpisode: number | null = null;
  let ignoredOperatorSignals = 0;

  // --- handlers: registered before the first await ----------------------------------------------
  setHandler(
    createUpdate,
    async (req): Promise<CreateResult> => {
      createRequested = true;
      let won: boolean;
      try {
        won = await condition(() => createOutcome !== undefined, Math.max(1, req.deadlineMs - Date.now()));
        // Committed means the snapshot exists and is being projected: the answer is success, late.
        if (!won && fixes && createCommitted) won = await condition(() => createOutcome !== undefined).then(() => true);
      } catch (err) {
        // Cancelled while creating: the main body compensates; the caller gets a domain answer.
        if (isCancellation(err)) throw ApplicationFailure.create({ type: 'backend', nonRetryable: true, message: 'Checkpoint creation was canceled' });
        throw err;
      }
      if (!won) {
        createTimedOut = true;
        throw ApplicationFailure.create({ type: 'create_timeout', nonRetryable: true, message: 'Checkpoint creation did not finish before its deadline' });
      }
      if (createOutcome!.ok) return { name: input.name, state: cp.state === 'new' ? 'creating' : cp.state };
      throw ApplicationFailure.create({ type: createOutcome!.code, nonRetryable: true, message: createOutcome!.detail });
    },
    {
      validator: (req) => {
        if (typeof req?.deadlineMs !== 'number' || req.deadlineMs <= Date.now()) {
          throw ApplicationFailure.create({ type: 'create_timeout', nonRetryable: true, message: 'Create deadline already passed' });
        }
      },
    },
  );
  // Signal handlers validate everything and never throw: a throw would fail every workflow task.
  setHandler(finalizeSignal, (sig) => {
    try {
      const status = parseFinalizeStatus(sig?.status);
      if (!status || typeof sig.source !== 'string') {
        log.warn('ignoring malformed finalize signal', { checkpoint: input.name });
        return;
      }
      finalizeQueue.push({ status, source: sig.source.slice(0, 50), at: Date.now() });
    } catch {
      log.warn('ignoring malformed finalize signal', { checkpoint: input.name });
    }
  });
  /** Old runs queue every operator signal; new ones take one per episode, only in that episode. */
  function acceptOperator(request: OperatorRequest, episode: number | undefined) {
    if (fixes) {
      const stale =
        cp.state !== 'needs_attention' || operatorQueue.length > 0 || answeredEpisode === needsAttentionSeq || (episode !== undefined && episode !== needsAttentionSeq);
      if (stale) {
        ignoredOperatorSignals += 1;
        log.warn('ignoring operator signal outside its needs-attention episode', { checkpoint: input.name, kind: request.kind, state: cp.state, episode, current: needsAttentionSeq });
        return;
      }
    }
    operatorQueue.push(request);
  }
  // An operator signal must name its actor (the API always does; a break-glass signal from the
  // Temporal UI must too): a malformed one is never taken for an operator's decision.
  setHandler(retryResetSignal, (sig) => {
    try {
      const actor = actorOf(sig);
      if (actor === null) {
        ignoredOperatorSignals += 1;
        log.warn('ignoring retryReset signal without an actor', { checkpoint: input.name });
        return;
      }
      acceptOperator({ kind: 'retry_reset', signal: { actor } }, episodeOf(sig));
    } catch {
      log.warn('ignoring malformed retryReset signal', { checkpoint: input.name });
    }
  });
  setHandler(releaseSignal, (sig) => {
    try {
      const actor = actorOf(sig);
      const flag = sig && typeof sig === 'object' ? (sig as { deleteSnapshot?: unknown }).deleteSnapshot : undefined;
      if (actor === null || (flag !== undefined && typeof flag !== 'boolean')) {
        ignoredOperatorSignals += 1;
        log.warn('ignoring malformed release signal', { checkpoint: input.name });
        return;
      }
      acceptOperator({ kind: 'release', signal: { actor, deleteSnapshot: flag === true } }, episodeOf(sig));
    } catch {
      log.warn('ignoring malformed release signal', { checkpoint: input.name });
    }
  });
  setHandler(checkpointQuery, () => ({
    name: input.name,
    runnerId: input.runnerId,
    state: cp.state,
    finalize: cp.finalize,
    ignoredFinalizes: cp.ignoredFinalizes,
    needsAttention: cp.needsAttention,
    ttlExtensions: cp.ttlExtensions,
    step,
    needsAttentionEpisode: cp.state === 'needs_attention' ? needsAttentionSeq : null,
    ignoredOperatorSignals,
  }));

  // Cancellation is handled, not obeyed blindly: while created it means "canceled"; during create it
  // compensates; on the reset path the work continues. Every step below runs non-cancellable.
  CancellationScope.current().cancelRequested.catch(() => {
    cancelRequested = true;
  });

  // --- helpers ----------------------------------------------------------------------------------
  function publishState() {
    upsertSearchAttributes([
      { key: CheckpointStateSearchAttribute, value: cp.state },
      { key: NeedsAttentionSearchAttribute, value: cp.state === 'needs_attention' },
    ]);
  }

  async function transition(event: CheckpointEvent, detail?: string, fields: ProjectionInput['fields'] = {}, via: 'project' | 'release' = 'project') {
    const from = cp.state === 'new' ? null : cp.state;
    let result: TransitionResult;
    try {
      result = applyEvent(cp, event);
    } catch (err) {
      // A transition the table refuses is a bug: say so loudly, but never wedge the workflow.
      if (!(err instanceof InvalidTransitionError)) throw err;
      log.error('refused transition skipped', { checkpoint: input.name, from: cp.state, event: event.type });
      await store.raiseAlert({ key: `workflow_bug:${input.name}`, severity: 'critical', message: `Checkpoint ${input.name} skipped a refused transition: ${err.message}`, runnerId: input.runnerId, checkpointName: input.name });
      return { snapshot: cp, ignored: true };
    }
    cp = result.snapshot;
    seq += 1;
    const projection: ProjectionInput = {
      ...ref,
      seq,
      from,
      to: cp.state as CheckpointState,
      event: result.ignored ? `${event.type}_ignored` : event.type,
      detail,
      fields,
    };
    if (via === 'release') await store.releaseClaim(projection);
    else await store.projectTransition(projection);
    if (!result.ignored) {
      publishState();
    }
    return result;
  }

  function failureType(err: unknown): string | undefined {
    if (err instanceof ActivityFailure) {
      if (err.cause instanceof ApplicationFailure) return err.cause.type ?? undefined;
      if (err.cause instanceof TimeoutFailure) return `timeout:${err.cause.timeoutType}`;
    }
    if (err instanceof ApplicationFailure) return err.type ?? undefined;
    return undefined;
  }

  /** The gateway says it closed the session itself (an instance draining), not the host. */
  function lostByDrain(err: unknown): boolean {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    const details = cause instanceof ApplicationFailure ? cause.details : undefined;
    const first = Array.isArray(details) ? details[0] : undefined;
    return typeof first === 'object' && first !== null && (first as { draining?: unknown }).draining === true;
  }

  function failureMessage(err: unknown): string {
    if (err instanceof ActivityFailure && err.cause) return err.cause.message;
    return err instanceof Error ? err.message : String(err);
  }

  /** The route to the runner's agent, or null; a failing lookup counts as no route, never a failure. */
  async function findRoute(): Promise<AgentRoute | null> {
    try {
      return await routes.resolveAgentRoute({ runnerId: input.runnerId });
    } catch (err) {
      log.warn('agent route lookup failed', { checkpoint: input.name, error: failureMessage(err) });
      return null;
    }
  }

  /** One delivery on the task queue of the instance holding the session; the caller re-routes. */
  function sendCommand(route: AgentRoute, name: AgentCommandInput['name'], commandId: string): Promise<AgentCommandResult> {
    const gateway = proxyActivities<AgentActivities>({
      taskQueue: `e2epool-gw-${route.instanceId}`,
      scheduleToStartTimeout: '15 seconds',
      // Longer than the gateway's own reply deadline (command timeout + 30 s grace), so that deadline
      // always answers first and a server-side timeout never races it.
      startToCloseTimeout: `${t.commandTimeoutSeconds + (fixes ? 60 : 30)} seconds`,
      heartbeatTimeout: '20 seconds',
      retry: { maximumAttempts: 1 },
    });
    return gateway.runAgentCommand({ runnerId: input.runnerId, name, commandId, timeoutSeconds: t.commandTimeoutSeconds, expectedEpoch: route.sessionEpoch });
  }

  /**
   * Runs a declared agent command on whichever instance holds the runner's session, re-routing on
   * stale routes, lost sessions and dead instances (server retries cannot: schedule-to-start).
   */
  async function routeAndRun(name: AgentCommandInput['name'], commandId: string, opts: { minEpoch?: number } = {}): Promise<RouteOutcome> {
    return fixes ? routeAndRunDeliveryAware(name, commandId, opts) : routeAndRunFirstRelease(name, commandId, opts);
  }

  /**
   * Not delivered (no session, wrong instance, draining, never sent) is always re-routed. Sent but
   * unanswered is a lost command: readiness is simply re-sent; a legacy agent cannot de-duplicate,
   * so the caller decides; a current agent gets the same command id again (it attaches to the run
   * or replays its result), unless it came back with another boot id after a reset: then the host
   * rebooted, which is what the reset does.
   */
  async function routeAndRunDeliveryAware(name: AgentCommandInput['name'], commandId: string, opts: { minEpoch?: number }): Promise<RouteOutcome> {
    let lastDetail = 'no agent session';
    let lostOn: AgentRoute | null = null;
    for (let attempt = 1; attempt <= t.agentRouteAttempts; attempt++) {
      if (attempt > 1) await sleep(`${backoffSeconds(attempt - 1, 2, 30)} seconds`);
      const route = await findRoute();
      if (!route || (opts.minEpoch !== undefined && !isSessionFresh(route.sessionEpoch, opts.minEpoch))) {
        lastDetail = route ? 'agent session is older than the reset' : 'agent not connected';
        continue;
      }
      try {
        return { kind: 'result', result: await sendCommand(route, name, commandId) };
      } catch (err) {
        const type = failureType(err);
        lastDetail = failureMessage(err);
        const answer = answerOfFailure(type, lastDetail);
        if (answer) return answer;
        const notDelivered = type !== undefined && NOT_DELIVERED_TYPES.has(type);
        if (!notDelivered && name !== 'readiness') {
          if (route.legacy) return { kind: 'lost', legacy: true, detail: lastDetail, byDrain: lostByDrain(err) };
          if (name === 'reset') return awaitAgentAfterLostReset(route, commandId, lastDetail);
          lostOn ??= route;
        }
        log.warn(notDelivered ? 'agent command not delivered, re-routing' : 'agent command lost, sending it again', { checkpoint: input.name, command: name, commandId, attempt, type });
      }
    }
    if (lostOn) return { kind: 'lost', legacy: false, detail: lastDetail };
    return { kind: 'unreachable', detail: lastDetail };
  }

  /**
   * A current agent's session dropped while it ran the reset. Within the readiness budget, wait for
   * it to come back: with another boot id the host rebooted (what a reset does); with the same one
   * the same command id goes again and the agent attaches to the run or replays its result.
   */
  async function awaitAgentAfterLostReset(lostOn: AgentRoute, commandId: string, detail: string): Promise<RouteOutcome> {
    const deadline = Date.now() + t.readinessTimeoutSeconds * 1000;
    let last = lostOn;
    while (Date.now() < deadline) {
      await sleep(`${t.readinessPollIntervalSeconds} seconds`);
      const route = await findRoute();
      if (!route || route.sessionEpoch === last.sessionEpoch) continue;
      if (lostOn.bootId && route.bootId && route.bootId !== lostOn.bootId) {
        return { kind: 'rebooted', detail: `the session was lost during the reset and came back with boot id ${route.bootId} (was ${lostOn.bootId})` };
      }
      try {
        return { kind: 'result', result: await sendCommand(route, 'reset', commandId) };
      } catch (err) {
        const type = failureType(err);
        detail = failureMessage(err);
        const answer = answerOfFailure(type, detail);
        if (answer) return answer;
        if (type === undefined || !NOT_DELIVERED_TYPES.has(type)) last = route;
        log.warn('reset sent again after a lost session failed; waiting for the agent', { checkpoint: input.name, commandId, type });
      }
    }
    return { kind: 'lost', legacy: false, detail: `${detail}; the agent did not come back within ${t.readinessTimeoutSeconds}s` };
  }

  /** The first release's routing, kept for runs started before CHECKPOINT_FIXES_PATCH. */
  async function routeAndRunFirstRelease(name: AgentCommandInput['name'], commandId: string, opts: { minEpoch?: number }): Promise<RouteOutcome> {
    let lastDetail = 'no agent session';
    for (let attempt = 1; attempt <= t.agentRouteAttempts; attempt++) {
      if (attempt > 1) await sleep(`${backoffSeconds(attempt - 1, 2, 30)} seconds`);
      const route = await findRoute();
      if (!route || (opts.minEpoch !== undefined && !isSessionFresh(route.sessionEpoch, opts.minEpoch))) {
        lastDetail = route ? 'agent session is older than the reset' : 'agent not connected';
        continue;
      }
      try {
        return { kind: 'result', result: await sendCommand(route, name, commandId) };
      } catch (err) {
        const type = failureType(err);
        lastDetail = failureMessage(err);
        if (type === 'command_not_declared') return { kind: 'not_declared', detail: lastDetail };
        const lost = type === 'agent_not_connected' || type === 'timeout:HEARTBEAT';
        if (lost && name !== 'readiness') {
          // The command may have started: only our agents de-duplicate by command id.
          if (route.legacy) return { kind: 'lost', legacy: true, detail: lastDetail };
          if (name === 'reset') return { kind: 'lost', legacy: false, detail: lastDetail };
        }
        if (type === 'agent_command_timeout') {
          return { kind: 'result', result: { ok: false, exitCode: -1, stdout: '', stderr: lastDetail, durationMs: 0 } };
        }
        log.warn('agent command not delivered, re-routing', { checkpoint: input.name, command: name, attempt, type });
      }
    }
    return { kind: 'unreachable', detail: lastDetail };
  }

  function commandFailed(result: AgentCommandResult): string {
    return `exit ${result.exitCode}${result.stderr ? `: ${result.stderr.slice(0, 500)}` : ''}`;
  }

  async function finishCreate(outcome: CreateOutcome) {
    createOutcome = outcome;
    await condition(allHandlersFinished);
  }

  // --- create -----------------------------------------------------------------------------------
  return CancellationScope.nonCancellable(async (): Promise<WorkflowEnd> => {
    const accepted = await condition(() => createRequested, `${t.createAcceptWindowSeconds} seconds`);
    if (!accepted) return 'abandoned';

    const claimDeadline = Date.now() + t.createWaitForCleanupSeconds * 1000;
    const claimInput = { ...ref, jobId: input.jobId, projectId: input.projectId, backend: input.backend, caller: input.caller, cooldownSeconds: t.cooldownSeconds };
    let claim: ClaimResult;
    try {
      claim = await claimOnce.claimRunner(claimInput);
      while (!claim.ok && claim.holderCleaning && Date.now() < claimDeadline && !createTimedOut && !cancelRequested) {
        await sleep('2 seconds');
        claim = await claimOnce.claimRunner(claimInput);
      }
    } catch (err) {
      // The database did not answer: our row may or may not exist, so release it if it does.
      const detail = `could not claim the runner: ${failureMessage(err)}`;
      await store.releaseClaim({ ...ref, seq: 1, from: 'creating', to: 'create_failed', event: 'create_failed', detail });
      await finishCreate({ ok: false, code: 'backend', detail });
      return 'create_failed';
    }
    if (!claim.ok) {
      await finishCreate({ ok: false, code: claim.code === 'runner_not_found' ? 'not_found' : claim.code, detail: claim.detail });
      return 'rejected';
    }
    cp = applyEvent(cp, { type: 'claimed' }).snapshot; // claimRunner projected 'creating' itself (seq 0)
    publishState();

    const plan: RunnerPlan = await store.loadRunnerPlan({ runnerId: input.runnerId });
    let vmid: number | null = plan.vmid;
    let createError: string | null = null;
    if (!createTimedOut && !cancelRequested) {
      step = 'snapshot';
      try {
        vmid = (await backend.takeSnapshot(ref)).vmid;
      } catch (err) {
        createError = failureMessage(err);
      }
    }
    if (createError !== null || createTimedOut || cancelRequested) {
      const why = createError ?? (createTimedOut ? 'create deadline passed' : 'workflow canceled during create');
      const end = await compensateCreate(why);
      await finishCreate({ ok: false, code: createTimedOut ? 'create_timeout' : 'backend', detail: `Snapshot failed: ${why}` });
      if (end !== 'needs_attention') return end;
      return waitForOperatorFromNeedsAttention(plan);
    }
    createCommitted = true;
    await transition({ type: 'snapshot_taken' }, 'snapshot taken', { vmid: vmid ?? undefined });
    step = null;
    await finishCreate({ ok: true });
    return afterCreated(plan, vmid);
  });

  /** Snapshot failed or create was abandoned: delete what we may have made, release, end. */
  async function compensateCreate(why: string): Promise<'create_failed' | 'needs_attention'> {
    step = 'compensate';
    try {
      await backend.deleteSnapshot(ref);
    } catch (err) {
      await enterNeedsAttention(new NeedsAttention('orphan_snapshot', `create failed (${why}) and the snapshot could not be deleted: ${failureMessage(err)}`));
      return 'needs_attention';
    }
    await transition({ type: 'create_failed', detail: why }, why, {}, 'release');
    return 'create_failed';
  }

  // --- await the outcome ------------------------------------------------------------------------
  async function afterCreated(plan: RunnerPlan, vmid: number | null): Promise<WorkflowEnd> {
    const createdAt = Date.now();
    let ttlAt = createdAt + t.ttlSeconds * 1000;
    let pollerOutcome: FinalizeIntent | null = null;
    const watchScope = new CancellationScope();
    if (t.pollerEnabled && input.projectId) {
      const projectId = input.projectId;
      watchScope
        .run(async () => {
          await sleep(`${t.pollerMinAgeSeconds} seconds`);
          const res = await watcher.watchJob({ ...ref, jobId: input.jobId, projectId, intervalSeconds: t.pollerIntervalSeconds });
          pollerOutcome = { status: res.outcome, source: 'poller', at: Date.now() };
        })
        .catch(() => undefined); // cancelled when another source wins
    } else {
      log.info('GitLab job watch is off for this checkpoint', { checkpoint: input.name, reason: input.projectId ? 'poller disabled' : 'no project id' });
    }

    let intent: FinalizeIntent | null = null;
    while (intent === null) {
      const remaining = Math.max(0, ttlAt - Date.now());
      const woke = await condition(() => finalizeQueue.length > 0 || pollerOutcome !== null || cancelRequested, remaining);
      if (woke) {
        intent = finalizeQueue.shift() ?? pollerOutcome ?? { status: 'canceled', source: 'cancel', at: Date.now() };
        break;
      }
      // TTL reached.
      step = 'ttl_check';
      let observation: JobObservation;
      try {
        observation = await ci.observeJob({ ...ref, jobId: input.jobId, projectId: input.projectId });
      } catch (err) {
        observation = { kind: 'error', detail: failureMessage(err) };
      }
      const ageSeconds = Math.floor((Date.now() - createdAt) / 1000);
      const decision = decideAtTtl(observation, ageSeconds, t.maxTtlSeconds);
      if (decision.action === 'extend') {
        ttlAt += t.ttlSeconds * 1000;
        await transition({ type: 'ttl_extended', detail: observation.kind }, `TTL extended (${observation.kind === 'error' ? `GitLab error: ${observation.detail}` : 'job still running'})`, { ttlExtensions: cp.ttlExtensions + 1 });
        step = null;
        continue;
      }
      watchScope.cancel();
      if (decision.action === 'needs_attention') {
        await enterNeedsAttention(new NeedsAttention('ttl_exceeded', decision.detail));
        return waitForOperatorFromNeedsAttention(plan, vmid);
      }
      await transition({ type: 'ttl_expired', detail: observation.kind }, `TTL expired: job ${observation.kind === 'terminal' ? `finished (${observation.outcome})` : 'unknowable'}`);
      return resetPath(plan, vmid);
    }
    watchScope.cancel();
    await transition({ type: 'finalize_requested', intent }, `Finalize queued: status=${intent.status}, source=${intent.source}`, {
      finalizeStatus: intent.status,
      finalizeSource: intent.source,
      finalizeQueuedAtMs: intent.at,
    });
    await recordIgnoredFinalizes();

    if (pathAfterFinalize(intent.status, plan.successAction) === 'cleanup') {
      await transition({ type: 'cleanup_started' }, 'running the success action: cleanup');
      step = 'cleanup';
      const failure = await runCleanup(plan);
      if (failure === null) {
        await transition({ type: 'cleanup_done' }, 'cleanup done, snapshot deleted', {}, 'release');
        await recordIgnoredFinalizes();
        return 'deleted';
      }
      await transition({ type: 'cleanup_failed', detail: failure }, `cleanup failed, resetting instead: ${failure}`);
      return resetPath(plan, vmid);
    }
    await transition({ type: 'reset_started' }, `resetting after ${intent.status}`);
    return resetPath(plan, vmid);
  }

  async function recordIgnoredFinalizes() {
    while (finalizeQueue.length > 0) {
      const late = finalizeQueue.shift()!;
      await transition({ type: 'finalize_requested', intent: late }, `Already finalized: ignored status=${late.status}, source=${late.source}`);
    }
  }

  /** Returns null on success, or why cleanup failed. */
  async function runCleanup(plan: RunnerPlan): Promise<string | null> {
    if (plan.hasCleanupCommand) {
      const outcome = await routeAndRun('cleanup', `${input.name}:cleanup:1`);
      if (outcome.kind !== 'result') return `cleanup command: ${outcome.detail}`;
      if (!outcome.result.ok) return `cleanup command ${commandFailed(outcome.result)}`;
    }
    try {
      await backend.deleteSnapshot(ref);
    } catch (err) {
      return `snapshot delete: ${failureMessage(err)}`;
    }
    return null;
  }

  // --- reset path -------------------------------------------------------------------------------
  async function resetPath(plan: RunnerPlan, vmid: number | null): Promise<WorkflowEnd> {
    for (let resetAttempt = 1; ; resetAttempt++) {
      try {
        await pauseRunner(plan);
        await transition({ type: 'paused' }, plan.pauseMethod === 'none' ? 'runner has no pause method' : `paused via ${plan.pauseMethod}`);
        await confirmIdle(plan);
        // Taken just before the first destructive call: only sessions newer than this prove readiness.
        const epochAtReset = await store.takeEpochWatermark(ref);
        await transition({ type: 'idle_confirmed' }, 'no job running on the runner', { epochAtReset });
        const { sessionDropped } = await resetRunner(plan, vmid, epochAtReset, resetAttempt);
        await transition({ type: 'reset_done' }, plan.backend === 'proxmox' ? 'VM rolled back to the checkpoint' : 'reset command finished');
        await proveReadiness(plan, epochAtReset, sessionDropped);
        if (plan.backend === 'proxmox') {
          step = 'delete_snapshot';
          try {
            await backend.deleteSnapshot(ref);
          } catch (err) {
            throw new NeedsAttention('snapshot_delete_failed', `runner is ready but the snapshot could not be deleted: ${failureMessage(err)}`);
          }
        }
        await transition({ type: 'ready' }, 'runner verified ready', {}, 'release');
        return finishUnpaused(plan);
      } catch (err) {
        if (!(err instanceof NeedsAttention)) throw err;
        await enterNeedsAttention(err);
        const request = await nextOperatorRequest();
        if (request.kind === 'release') return releaseByOperator(plan, request.signal);
        await store.resolveAlert({ key: `needs_attention:${input.name}` });
        await transition({ type: 'retry_reset', actor: request.signal.actor }, `reset retried by ${request.signal.actor}`);
      }
    }
  }

  async function pauseRunner(plan: RunnerPlan) {
    step = 'pause';
    if (plan.pauseMethod === 'none') return;
    if (plan.pauseMethod === 'agent') {
      const outcome = await routeAndRun('pause_runner', `${input.name}:pause:${seq}`);
      if (outcome.kind === 'result' && outcome.result.ok) return;
      const detail = outcome.kind === 'result' ? commandFailed(outcome.result) : outcome.detail;
      await store.raiseAlert({ key: `pause_failed:${input.name}`, severity: 'critical', message: `Could not pause runner ${input.runnerId}: ${detail}`, runnerId: input.runnerId, checkpointName: input.name });
      throw new NeedsAttention('pause_failed', `pause_runner command: ${detail}`);
    }
    try {
      await pausing.pauseRunner(ref);
    } catch (err) {
      await store.raiseAlert({ key: `pause_failed:${input.name}`, severity: 'critical', message: `Could not pause GitLab runner of ${input.runnerId} for ${t.pauseBudgetSeconds}s: ${failureMessage(err)}`, runnerId: input.runnerId, checkpointName: input.name });
      throw new NeedsAttention('pause_failed', `pausing the GitLab runner failed for ${t.pauseBudgetSeconds}s: ${failureMessage(err)}`);
    }
  }

  async function confirmIdle(plan: RunnerPlan) {
    step = 'confirm_idle';
    if (plan.pauseMethod !== 'gitlab') return;
    let progress = initialIdleProgress();
    let last = Date.now();
    for (;;) {
      let observation;
      try {
        observation = await ci.listRunningJobs(ref);
      } catch (err) {
        observation = { kind: 'unknown' as const, detail: failureMessage(err) };
      }
      const now = Date.now();
      const decision = decideIdle(progress, observation, input.jobId, Math.round((now - last) / 1000), t);
      last = now;
      if (decision.action === 'idle') return;
      if (decision.action === 'busy') throw new NeedsAttention('runner_busy', decision.detail);
      progress = decision.progress;
      await sleep(`${t.idlePollSeconds} seconds`);
    }
  }

  /** The destructive step. Reports whether the agent session dropped (a reboot). */
  async function resetRunner(plan: RunnerPlan, vmid: number | null, epochAtReset: number, resetAttempt: number): Promise<{ sessionDropped: boolean }> {
    step = 'reset';
    if (plan.backend === 'proxmox') {
      try {
        await backend.assertVmUnchanged({ ...ref, vmid });
      } catch (err) {
        throw new NeedsAttention('config_changed', failureMessage(err));
      }
      for (const [name, run] of [
        ['stop', () => backend.stopVm(ref)],
        ['rollback', () => backend.rollbackVm(ref)],
        ['start', () => backend.startVm(ref)],
      ] as const) {
        step = `reset:${name}`;
        try {
          await run();
        } catch (err) {
          throw new NeedsAttention('reset_failed', `VM ${name} failed: ${failureMessage(err)}`);
        }
      }
      return { sessionDropped: true };
    }
    const outcome = await routeAndRun('reset', fixes ? `${input.name}:reset:${seq}` : `${input.name}:reset:${resetAttempt}`);
    switch (outcome.kind) {
      case 'not_declared':
        throw new NeedsAttention('command_not_declared', `the agent does not declare a reset command: ${outcome.detail}`);
      case 'unreachable':
        throw new NeedsAttention('agent_unreachable', `could not reach the agent to reset: ${outcome.detail}`);
      case 'rebooted':
        if (plan.resetMode === 'in_place') {
          throw new NeedsAttention('command_outcome_unknown', `the host rebooted during an in-place reset (${outcome.detail}); the reset may or may not have completed`);
        }
        return { sessionDropped: true };
      case 'lost':
        if (!fixes) {
          if (plan.resetMode === 'reboot' || plan.resetMode === 'auto') return { sessionDropped: true };
        } else if (outcome.legacy && plan.resetMode === 'reboot' && !outcome.byDrain) {
          // A legacy agent reports no boot id: in reboot mode a dropped session is the reboot
          // (ARCHITECTURE §4.9); readiness still needs a session newer than the reset. Not when our
          // own instance closed it while draining: the reset may still be running on the host.
          return { sessionDropped: true };
        }
        throw new NeedsAttention('command_outcome_unknown', `the session was lost while reset ran (${outcome.detail}); it may or may not have completed`);
      case 'result':
        if (!outcome.result.ok) throw new NeedsAttention('reset_failed', `reset command ${commandFailed(outcome.result)}`);
    }
    if (plan.resetMode === 'reboot') return { sessionDropped: true };
    if (plan.resetMode === 'in_place') return { sessionDropped: false };
    await sleep(`${t.resetSettleSeconds} seconds`);
    const route = await findRoute();
    return { sessionDropped: !route || isSessionFresh(route.sessionEpoch, epochAtReset) };
  }

  /**
   * Readiness is proven, never assumed: a live session (newer than the reset when the host
   * rebooted), stable for a while, then the readiness command passing on that session.
   */
  async function proveReadiness(plan: RunnerPlan, epochAtReset: number, sessionDropped: boolean) {
    step = 'readiness';
    const needFresh = plan.backend === 'proxmox' || resetNeedsFreshSession(plan.resetMode, sessionDropped);
    const deadline = Date.now() + t.readinessTimeoutSeconds * 1000;
    // Unique per reset attempt: an agent that remembers ids must run a retry's probes again.
    const readinessRound = seq;
    let problem = 'no agent session yet';
    for (let probe = 1; Date.now() < deadline; probe++) {
      const route = await findRoute();
      if (!route) {
        problem = 'agent not connected';
      } else if (needFresh && !isSessionFresh(route.sessionEpoch, epochAtReset)) {
        problem = `agent session ${route.sessionEpoch} is older than the reset (epoch ${epochAtReset})`;
      } else if (route.connectedForSeconds < t.readinessStableSeconds) {
        problem = `agent session ${route.sessionEpoch} not yet stable for ${t.readinessStableSeconds}s`;
        const wait = Math.min(t.readinessStableSeconds - route.connectedForSeconds, Math.max(1, (deadline - Date.now()) / 1000));
        await sleep(`${Math.max(1, Math.ceil(wait))} seconds`);
        continue;
      } else if (!plan.hasReadinessCommand) {
        return;
      } else {
        const outcome = await runOnRoute(route, 'readiness', fixes ? `${input.name}:readiness:${readinessRound}:${probe}` : `${input.name}:readiness:${probe}`);
        if (outcome.kind === 'result' && outcome.result.ok) return;
        problem = outcome.kind === 'result' ? `readiness command ${commandFailed(outcome.result)}` : outcome.detail;
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(left, t.readinessPollIntervalSeconds * 1000));
    }
    throw new NeedsAttention('readiness_timeout', `runner not ready within ${t.readinessTimeoutSeconds}s: ${problem}`);
  }

  /** One delivery attempt on a known route (readiness probes loop on their own). */
  async function runOnRoute(route: AgentRoute, name: AgentCommandInput['name'], commandId: string): Promise<RouteOutcome> {
    try {
      return { kind: 'result', result: await sendCommand(route, name, commandId) };
    } catch (err) {
      if (failureType(err) === 'command_not_declared') return { kind: 'not_declared', detail: failureMessage(err) };
      return { kind: 'unreachable', detail: failureMessage(err) };
    }
  }

  async function finishUnpaused(plan: RunnerPlan): Promise<WorkflowEnd> {
    await transition({ type: 'claim_released' }, 'claim released');
    step = 'unpause';
    await unpauseRunner(plan);
    step = null;
    await transition({ type: 'unpaused' }, 'runner unpaused');
    await recordIgnoredFinalizes();
    return cp.state as WorkflowEnd;
  }

  async function unpauseRunner(plan: RunnerPlan) {
    if (plan.pauseMethod === 'none') return;
    if (plan.pauseMethod === 'agent') {
      for (let attempt = 1; ; attempt++) {
        const outcome = await routeAndRun('unpause_runner', `${input.name}:unpause:${attempt}`);
        if (outcome.kind === 'result' && outcome.result.ok) return;
        await sleep(`${backoffSeconds(attempt, 5, 300)} seconds`);
      }
    }
    // Started before the alert timer, as in the first release (replay keeps the command order).
    let unpause = unpausing.unpauseRunner(ref).then(
      () => null,
      (err: unknown) => err,
    );
    const alertKey = `unpause_slow:${input.name}`;
    let alerted = false;
    const alertOnce = async (why: string) => {
      if (alerted) return;
      alerted = true;
      await store.raiseAlert({ key: alertKey, severity: 'warning', message: `Runner ${input.runnerId} is clean but ${why}`, runnerId: input.runnerId, checkpointName: input.name });
    };
    void sleep(`${t.unpauseAlertAfterSeconds} seconds`).then(() => alertOnce(`could not be unpaused for ${t.unpauseAlertAfterSeconds}s`));
    // The runner is clean: keep trying without limit, also after a failure Temporal will not retry.
    for (let attempt = 1; ; attempt++) {
      const failure = await unpause;
      if (failure === null) break;
      await alertOnce(`could not be unpaused: ${failureMessage(failure)}`);
      await sleep(`${backoffSeconds(attempt, 30, 300)} seconds`);
      unpause = unpausing.unpauseRunner(ref).then(
        () => null,
        (err: unknown) => err,
      );
    }
    if (alerted) await store.resolveAlert({ key: alertKey });
  }

  // --- needs attention --------------------------------------------------------------------------
  async function enterNeedsAttention(err: NeedsAttention) {
    step = null;
    // Requests from before this episode never act in it.
    if (fixes) {
      ignoredOperatorSignals += operatorQueue.length;
      operatorQueue.length = 0;
    }
    await transition({ type: 'step_failed', reason: err.reason, detail: err.detail }, err.detail, { needsAttentionReason: err.reason });
    needsAttentionSeq = seq;
    await store.raiseAlert({
      key: `needs_attention:${input.name}`,
      severity: 'critical',
      message: `Runner ${input.runnerId} needs attention (${err.reason}): ${err.detail}`,
      runnerId: input.runnerId,
      checkpointName: input.name,
    });
  }

  async function nextOperatorRequest(): Promise<OperatorRequest> {
    await condition(() => operatorQueue.length > 0);
    const request = operatorQueue.shift()!;
    if (fixes) {
      answeredEpisode = needsAttentionSeq;
      // One request answers the episode; the rest of a double click is dropped.
      ignoredOperatorSignals += operatorQueue.length;
      operatorQueue.length = 0;
      await store.resolveAlert({ key: `pause_failed:${input.name}` });
    }
    return request;
  }

  async function waitForOperatorFromNeedsAttention(plan: RunnerPlan, vmid: number | null = plan.vmid): Promise<WorkflowEnd> {
    const request = await nextOperatorRequest();
    if (request.kind === 'release') return releaseByOperator(plan, request.signal);
    await store.resolveAlert({ key: `needs_attention:${input.name}` });
    await transition({ type: 'retry_reset', actor: request.signal.actor }, `reset retried by ${request.signal.actor}`);
    return resetPath(plan, vmid);
  }

  async function releaseByOperator(plan: RunnerPlan, signal: ReleaseSignal): Promise<WorkflowEnd> {
    for (;;) {
      if (!signal.deleteSnapshot) break;
      try {
        await backend.deleteSnapshot(ref);
        break;
      } catch (err) {
        await enterNeedsAttention(new NeedsAttention('snapshot_delete_failed', `release by ${signal.actor}: snapshot delete failed: ${failureMessage(err)}`));
        const request = await nextOperatorRequest();
        if (request.kind === 'retry_reset') {
          await store.resolveAlert({ key: `needs_attention:${input.name}` });
          await transition({ type: 'retry_reset', actor: request.signal.actor }, `reset retried by ${request.signal.actor}`);
          return resetPath(plan, plan.vmid);
        }
        signal = request.signal;
      }
    }
    await store.resolveAlert({ key: `needs_attention:${input.name}` });
    await transition({ type: 'release_requested', actor: signal.actor, deleteSnapshot: signal.deleteSnapshot }, `released by ${signal.actor}${signal.deleteSnapshot ? ', snapshot deleted' : ''}`, { needsAttentionReason: null }, 'release');
    return finishUnpaused(plan);
  }
}

