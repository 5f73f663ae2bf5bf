// The state of one checkpoint run: the domain snapshot, what the handlers queued, and the
// transitions and alerts not yet written. Handlers only validate and queue; the main sequence acts.
// Transitions of one await point reach the database together (one local activity), and search
// attributes change only when the visible state does.
import { log, upsertSearchAttributes } from '@temporalio/workflow';
import type { AlertInput, ProjectedTransition, ProjectionInput, StoreActivities } from '../../activities/types.js';
import type { CheckpointState } from '../../src/domain/checkpoint-states.js';
import { parseFinalizeStatus, type FinalizeIntent } from '../../src/domain/finalize.js';
import { applyEvent, initialSnapshot, InvalidTransitionError, type CheckpointEvent, type CheckpointSnapshot } from '../../src/domain/transitions.js';
import { CheckpointStateSearchAttribute, NeedsAttentionSearchAttribute } from '../../temporal/search-attributes.js';
import type { CheckpointQueryResult, CheckpointResumeState, CheckpointWorkflowInput, ReleaseSignal, RetryResetSignal } from '../messages.js';

export type OperatorRequest = { kind: 'retry_reset'; signal: RetryResetSignal } | { kind: 'release'; signal: ReleaseSignal };

export type CreateOutcome = { ok: true } | { ok: false; code: string; detail: string };

/** The operator's name from a signal; null when the payload has none (the signal is then invalid). */
function actorOf(sig: unknown): string | null {
  const actor = sig && typeof sig === 'object' ? (sig as { actor?: unknown }).actor : undefined;
  return typeof actor === 'string' && actor.length > 0 ? actor.slice(0, 100) : null;
}

function episodeOf(sig: unknown): number | undefined {
  const episode = sig && typeof sig === 'object' ? (sig as { episode?: unknown }).episode : undefined;
  return typeof episode === 'number' && Number.isInteger(episode) ? episode : undefined;
}

export class CheckpointRun {
  snapshot: CheckpointSnapshot;
  /** Seq of the last transition; the claim projected seq 0. */
  seq: number;
  /** What the run is doing now, for the query (`snapshot`, `reset:rollback`, `readiness`, …). */
  step: string | null = null;

  createRequested = false;
  createDeadlineMs = 0;
  createOutcome: CreateOutcome | undefined;
  createTimedOut = false;
  /** Set when the snapshot exists and is being recorded: past it the create succeeds, even late. */
  createCommitted = false;
  cancelRequested = false;

  readonly finalizeQueue: FinalizeIntent[] = [];
  readonly operatorQueue: OperatorRequest[] = [];
  /** Seq of the step_failed transition that opened the current needs-attention episode. */
  needsAttentionSeq: number | null = null;
  /** The episode an operator request was already taken for: later signals for it are ignored. */
  private answeredEpisode: number | null = null;
  ignoredOperatorSignals: number;

  private pending: ProjectedTransition[] = [];
  private raises: AlertInput[] = [];
  private resolves: string[] = [];
  private published: string | null;

  constructor(
    private readonly input: CheckpointWorkflowInput,
    private readonly store: Pick<StoreActivities, 'recordProgress'>,
    resume?: CheckpointResumeState,
  ) {
    this.snapshot = resume?.snapshot ?? initialSnapshot();
    this.seq = resume?.seq ?? 0;
    this.ignoredOperatorSignals = resume?.ignoredOperatorSignals ?? 0;
    // The start options carry CheckpointState=creating; a continued run carries what it had.
    this.published = resume ? this.snapshot.state : 'creating';
    if (resume) {
      this.createRequested = true;
      this.createOutcome = { ok: true };
    }
  }

  get state(): CheckpointState | 'new' {
    return this.snapshot.state;
  }

  /** What a continued run needs to pick up where this one stops. */
  resumeState(): CheckpointResumeState {
    return { snapshot: this.snapshot, seq: this.seq, ignoredOperatorSignals: this.ignoredOperatorSignals };
  }

  // --- handlers ---------------------------------------------------------------------------------

  acceptFinalize(sig: unknown): void {
    const s = sig && typeof sig === 'object' ? (sig as { status?: unknown; source?: unknown }) : {};
    const status = parseFinalizeStatus(s.status);
    if (!status || typeof s.source !== 'string') {
      log.warn('ignoring malformed finalize signal', { checkpoint: this.input.name });
      return;
    }
    this.finalizeQueue.push({ status, source: s.source.slice(0, 50), at: Date.now() });
  }

  acceptRetryReset(sig: unknown): void {
    const actor = actorOf(sig);
    if (actor === null) return this.ignoreOperator('retryReset signal without an actor');
    this.acceptOperator({ kind: 'retry_reset', signal: { actor } }, episodeOf(sig));
  }

  acceptRelease(sig: unknown): void {
    const actor = actorOf(sig);
    const flag = sig && typeof sig === 'object' ? (sig as { deleteSnapshot?: unknown }).deleteSnapshot : undefined;
    if (actor === null || (flag !== undefined && typeof flag !== 'boolean')) return this.ignoreOperator('malformed release signal');
    this.acceptOperator({ kind: 'release', signal: { actor, deleteSnapshot: flag === true } }, episodeOf(sig));
  }

  /** One request per needs-attention episode, only while in it, only for it when it names one. */
  private acceptOperator(request: OperatorRequest, episode: number | undefined): void {
    const current = this.state === 'needs_attention' ? this.needsAttentionSeq : null;
    if (current === null || this.operatorQueue.length > 0 || this.answeredEpisode === current || (episode !== undefined && episode !== current)) {
      return this.ignoreOperator(`${request.kind} outside its needs-attention episode (state ${this.state}, episode ${episode ?? 'none'}, current ${current ?? 'none'})`);
    }
    this.operatorQueue.push(request);
  }

  private ignoreOperator(why: string): void {
    this.ignoredOperatorSignals += 1;
    log.warn(`ignoring operator signal: ${why}`, { checkpoint: this.input.name });
  }

  /** Opens a needs-attention episode: requests queued before it never act in it. */
  openEpisode(): void {
    this.needsAttentionSeq = this.seq;
    this.ignoredOperatorSignals += this.operatorQueue.length;
    this.operatorQueue.length = 0;
  }

  /** Takes the request that answers the current episode; the rest of a double click is dropped. */
  takeOperatorRequest(): OperatorRequest {
    const request = this.operatorQueue.shift()!;
    this.answeredEpisode = this.needsAttentionSeq;
    this.ignoredOperatorSignals += this.operatorQueue.length;
    this.operatorQueue.length = 0;
    return request;
  }

  query(): CheckpointQueryResult {
    return {
      name: this.input.name,
      runnerId: this.input.runnerId,
      state: this.snapshot.state,
      finalize: this.snapshot.finalize,
      ignoredFinalizes: this.snapshot.ignoredFinalizes,
      needsAttention: this.snapshot.needsAttention,
      ttlExtensions: this.snapshot.ttlExtensions,
      step: this.step,
      needsAttentionEpisode: this.state === 'needs_attention' ? this.needsAttentionSeq : null,
      ignoredOperatorSignals: this.ignoredOperatorSignals,
    };
  }

  // --- transitions and alerts -------------------------------------------------------------------

  /**
   * Applies an event and queues its projection for the next commit. A transition the table refuses
   * is a bug: it is logged, alerted and skipped, never thrown (that would wedge the run).
   */
  apply(event: CheckpointEvent, detail?: string, fields: ProjectionInput['fields'] = {}, opts: { releaseClaim?: boolean } = {}): void {
    const from = this.state === 'new' ? null : this.state;
    let ignored: boolean;
    try {
      const result = applyEvent(this.snapshot, event);
      this.snapshot = result.snapshot;
      ignored = result.ignored;
    } catch (err) {
      if (!(err instanceof InvalidTransitionError)) throw err;
      log.error('refused transition skipped', { checkpoint: this.input.name, from: this.state, event: event.type });
      this.raiseAlert({ key: `workflow_bug:${this.input.name}`, severity: 'critical', message: `Checkpoint ${this.input.name} skipped a refused transition: ${err.message}` });
      return;
    }
    this.seq += 1;
    this.pending.push({
      seq: this.seq,
      from,
      to: this.state as CheckpointState,
      event: ignored ? `${event.type}_ignored` : event.type,
      ...(detail !== undefined ? { detail } : {}),
      fields,
      ...(opts.releaseClaim ? { releaseClaim: true } : {}),
    });
  }

  /** The claim activity projected `creating` (seq 0) itself. */
  applyClaimed(): void {
    if (this.state === 'new') this.snapshot = applyEvent(this.snapshot, { type: 'claimed' }).snapshot;
  }

  /** Finalizes that arrived after the first one: recorded, and ignored. */
  recordLateFinalizes(): void {
    while (this.finalizeQueue.length > 0) {
      const late = this.finalizeQueue.shift()!;
      this.apply({ type: 'finalize_requested', intent: late }, `Already finalized: ignored status=${late.status}, source=${late.source}`);
    }
  }

  raiseAlert(alert: Omit<AlertInput, 'runnerId' | 'checkpointName'>): void {
    this.raises.push({ ...alert, runnerId: this.input.runnerId, checkpointName: this.input.name });
  }

  resolveAlert(key: string): void {
    this.resolves.push(key);
  }

  /**
   * Writes what is queued, in one local activity, before the run waits on anything else: the
   * database (claims, cooldowns, the dashboard) must never lag behind a step that has begun.
   */
  async commit(opts: { takeEpochWatermark?: boolean } = {}): Promise<number | null> {
    if (this.pending.length === 0 && this.raises.length === 0 && this.resolves.length === 0 && !opts.takeEpochWatermark) return null;
    const transitions = this.pending;
    const raiseAlerts = this.raises;
    const resolveAlerts = this.resolves;
    this.pending = [];
    this.raises = [];
    this.resolves = [];
    const result = await this.store.recordProgress({
      name: this.input.name,
      runnerId: this.input.runnerId,
      transitions,
      ...(raiseAlerts.length ? { raiseAlerts } : {}),
      ...(resolveAlerts.length ? { resolveAlerts } : {}),
      ...(opts.takeEpochWatermark ? { takeEpochWatermark: true } : {}),
    });
    this.publish();
    return result.epochWatermark;
  }

  /** Commits, then waits on the outside world (an activity, a timer, a signal). */
  async commitThen<T>(fn: () => Promise<T>): Promise<T> {
    await this.commit();
    return fn();
  }

  private publish(): void {
    if (this.state === 'new' || this.state === this.published) return;
    this.published = this.state;
    upsertSearchAttributes([
      { key: CheckpointStateSearchAttribute, value: this.state },
      { key: NeedsAttentionSearchAttribute, value: this.state === 'needs_attention' },
    ]);
  }
}
