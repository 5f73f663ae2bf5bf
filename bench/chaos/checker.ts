// The chaos run's judge. It reads only ground truth (what ran on the hosts, what the hypervisor and
// GitLab did, what the harness sent) plus, for "how did it end", the controller's final state and
// Temporal's histories. Pure: no I/O, so it is tested on hand-made records.
import type { CommandTruth, FinalFacts, GroundTruth, RunnerTruth, TaskTruth } from './truth.js';

export interface Violation {
  invariant: 1 | 2 | 3 | 4 | 5;
  rule: string;
  runnerId?: string;
  checkpoint?: string;
  detail: string;
  /** The workflow review finding this matches, when the pattern is one of them. */
  reviewFinding?: string;
  /** Ground-truth events around it, oldest first. */
  events: string[];
}

export interface CheckOptions {
  /** Largest history a checkpoint workflow may have. */
  historyBound: number;
  /** Time zero of the event lines. */
  startedAt: number;
}

const END_STATES = new Set(['deleted', 'reset', 'gc_reset', 'create_failed', 'released']);

export function checkInvariants(truth: GroundTruth, facts: FinalFacts, opts: CheckOptions): Violation[] {
  const timeline = new Timeline(truth, opts.startedAt);
  return [
    ...neverTwoHolders(truth, timeline),
    ...unpausedOnlyWhenClean(truth, timeline),
    ...noDoubleReset(truth, timeline),
    ...noLeakedSnapshots(truth, facts, timeline),
    ...everyCheckpointEnds(facts, opts, timeline),
  ];
}

const isReset = (c: CommandTruth) => c.command === 'reset' && !c.replayed;
const isRollback = (t: TaskTruth) => t.type === 'qmrollback';
/** Any step of a VM reset (stop, rollback, start): an attempt to reset. */
const isResetStep = (t: TaskTruth) => t.type === 'qmrollback' || t.type === 'qmstop' || t.type === 'qmstart';

/** Invariant 1: an older checkpoint never acts on the runner once a newer one exists. */
function neverTwoHolders(truth: GroundTruth, timeline: Timeline): Violation[] {
  const out: Violation[] = [];
  for (const runner of truth.runners) {
    const birth = new Map<string, number>();
    const note = (name: string | null, at: number) => {
      if (!name || !name.startsWith('job-')) return;
      birth.set(name, Math.min(birth.get(name) ?? Infinity, at));
    };
    for (const c of truth.checkpoints) if (c.runnerId === runner.runnerId && c.createdAt !== null) note(c.name, c.createdAt);
    for (const t of truth.tasks) if (t.runnerId === runner.runnerId && t.type === 'qmsnapshot') note(t.snapname, t.startedAt);
    // Only command ids name their checkpoint for sure (legacy frames carry none).
    const commands = truth.commands.filter((c) => c.runnerId === runner.runnerId && c.commandId);
    for (const c of commands) note(c.checkpoint, c.startedAt);
    const actions: Array<{ name: string; at: number; what: string }> = [
      ...commands.filter(isReset).map((c) => ({ name: c.checkpoint!, at: c.startedAt, what: 'reset command' })),
      ...truth.tasks.filter((t) => t.runnerId === runner.runnerId && isRollback(t) && t.snapname).map((t) => ({ name: t.snapname!, at: t.startedAt, what: 'rollback task' })),
    ];
    for (const action of actions) {
      const born = birth.get(action.name);
      if (born === undefined) continue;
      const newer = [...birth].find(([other, at]) => other !== action.name && at > born && at < action.at);
      if (!newer) continue;
      out.push({
        invariant: 1,
        rule: 'never two claim holders for one runner',
        runnerId: runner.runnerId,
        checkpoint: action.name,
        detail: `${action.what} of ${action.name} started after the newer checkpoint ${newer[0]} existed`,
        events: timeline.around(runner.runnerId, newer[1] - 2000, action.at + 2000),
      });
    }
  }
  return out;
}

/** When the runner's reset really completed, per its kind, within (from, to). */
function resetCompletions(runner: RunnerTruth, truth: GroundTruth, from: number, to: number): number[] {
  if (runner.kind === 'proxmox') {
    return truth.tasks
      .filter((t) => t.runnerId === runner.runnerId && isRollback(t) && t.exitstatus === 'OK' && t.endedAt !== null && t.endedAt > from && t.endedAt < to)
      .map((t) => t.endedAt!);
  }
  return truth.commands
    .filter((c) => c.runnerId === runner.runnerId && isReset(c) && c.exitCode === 0 && c.endedAt !== null && c.endedAt > from && c.endedAt < to)
    .map((c) => c.endedAt!);
}

/** Invariant 2: an unpause comes after a completed reset and a passing readiness on a later session. */
function unpausedOnlyWhenClean(truth: GroundTruth, timeline: Timeline): Violation[] {
  const out: Violation[] = [];
  for (const runner of truth.runners) {
    const pauses = truth.pauses.filter((p) => p.runnerId === runner.runnerId).sort((a, b) => a.at - b.at);
    for (const unpause of pauses.filter((p) => !p.paused)) {
      const pausedAt = pauses.filter((p) => p.paused && p.at < unpause.at).at(-1)?.at ?? 0;
      const completions = resetCompletions(runner, truth, pausedAt, unpause.at);
      const proven = completions.some((doneAt) =>
        truth.commands.some(
          (c) =>
            c.runnerId === runner.runnerId &&
            c.command === 'readiness' &&
            c.exitCode === 0 &&
            c.startedAt > doneAt &&
            c.startedAt < unpause.at &&
            (!(runner.kind === 'proxmox' || runner.resetReboots) || c.sessionStartedAt > doneAt),
        ),
      );
      if (proven) continue;
      // An operator release unpauses by design, unless a reset was attempted after it (a stale one).
      const releases = truth.operator.filter((o) => o.runnerId === runner.runnerId && o.action === 'release' && o.status === 202 && o.at > pausedAt && o.at < unpause.at);
      const attemptsAfter = (at: number) =>
        truth.commands.some((c) => c.runnerId === runner.runnerId && isReset(c) && c.startedAt > at && c.startedAt < unpause.at) ||
        truth.tasks.some((t) => t.runnerId === runner.runnerId && isResetStep(t) && t.startedAt > at && t.startedAt < unpause.at);
      if (releases.some((r) => !attemptsAfter(r.at))) continue;
      const stale = releases.length > 0;
      const instanceLost = truth.faults.some((f) => f.target.startsWith('controller-') && f.at > pausedAt && f.at < unpause.at);
      const noReset = completions.length === 0 && !truth.commands.some((c) => c.runnerId === runner.runnerId && c.command === 'reset' && c.startedAt > pausedAt && c.startedAt < unpause.at);
      out.push({
        invariant: 2,
        rule: 'unpaused only after a completed reset and readiness on a session that began after it',
        runnerId: runner.runnerId,
        detail: stale
          ? 'unpaused by an operator release that was sent before a later reset attempt (a stale release)'
          : completions.length === 0
            ? `unpaused but no reset completed since the pause${noReset ? ' (the reset never ran on the host)' : ''}`
            : 'unpaused after a reset without a passing readiness check on a session newer than the reset',
        ...(stale
          ? { reviewFinding: 'bug 2 (operator signals queued and used at a later needs-attention)' }
          : runner.kind === 'legacy_reboot' && instanceLost
            ? { reviewFinding: 'legacy-reboot-instance-loss (a legacy reboot-mode reset whose session an instance drain or crash closed is taken for the reboot)' }
            : noReset && runner.kind !== 'proxmox'
              ? { reviewFinding: 'bug 1 (an undelivered or unknown reset taken for a reboot)' }
              : {}),
        events: timeline.around(runner.runnerId, pausedAt - 1000, unpause.at + 1000),
      });
    }
  }
  return out;
}

/** Invariant 3: reset_cmd or a rollback runs once per checkpoint, plus once per operator retry. */
function noDoubleReset(truth: GroundTruth, timeline: Timeline): Violation[] {
  const out: Violation[] = [];
  const runs = new Map<string, { runnerId: string; count: number; first: number; last: number }>();
  const add = (name: string | null, runnerId: string, at: number) => {
    if (!name) return;
    const r = runs.get(name) ?? { runnerId, count: 0, first: at, last: at };
    r.count += 1;
    r.first = Math.min(r.first, at);
    r.last = Math.max(r.last, at);
    runs.set(name, r);
  };
  for (const c of truth.commands) if (isReset(c)) add(c.checkpoint, c.runnerId, c.startedAt);
  for (const t of truth.tasks) if (isRollback(t)) add(t.snapname, t.runnerId, t.startedAt);
  for (const [name, r] of runs) {
    const retries = truth.operator.filter((o) => o.checkpoint === name && o.action === 'retry' && o.status === 202);
    const intents = new Set(retries.map((o) => o.intent)).size;
    if (r.count <= 1 + intents) continue;
    const runner = truth.runners.find((x) => x.runnerId === r.runnerId);
    const doubleClicks = retries.length > intents;
    const failedRollbacks = truth.tasks.filter((t) => t.snapname === name && isRollback(t) && t.exitstatus !== 'OK').length;
    out.push({
      invariant: 3,
      rule: 'no reset_cmd or rollback ran twice for one checkpoint',
      runnerId: r.runnerId,
      checkpoint: name,
      detail: `${r.count} resets ran for one checkpoint with ${intents} operator retr${intents === 1 ? 'y' : 'ies'}`,
      ...(doubleClicks
        ? { reviewFinding: 'bug 2 (a double Retry causes an automatic second reset)' }
        : runner?.kind === 'proxmox' && r.count - failedRollbacks <= 1 + intents
          ? { reviewFinding: 'failed-rollback-retried (a rollback task that failed is started again by the activity retry)' }
          : runner?.kind.startsWith('legacy') ? { reviewFinding: 'bug 7 (a legacy agent receives the same reset twice)' } : {}),
      events: timeline.around(r.runnerId, r.first - 2000, r.last + 2000),
    });
  }
  return out;
}

/** Invariant 4: at the end no `job-*` snapshot is left unless its checkpoint needs attention. */
function noLeakedSnapshots(truth: GroundTruth, facts: FinalFacts, timeline: Timeline): Violation[] {
  const state = new Map(facts.checkpoints.map((c) => [c.name, c.state]));
  return truth.snapshotsLeft
    .filter((s) => s.name.startsWith('job-') && state.get(s.name) !== 'needs_attention')
    .map((s) => {
      const deletes = truth.tasks.filter((t) => t.snapname === s.name && t.type === 'qmdelsnapshot');
      return {
        invariant: 4 as const,
        rule: 'no job-* snapshot left unless its checkpoint needs attention',
        runnerId: s.runnerId,
        checkpoint: s.name,
        detail: `snapshot ${s.name} is still on VM ${s.vmid}; its checkpoint is ${state.get(s.name) ?? 'unknown to the controller'}`,
        ...(deletes.some((t) => t.exitstatus !== 'OK' && /does not exist/.test(t.exitstatus ?? ''))
          ? { reviewFinding: 'bug 9 (an unrelated "does not exist" taken for a deleted snapshot)' }
          : {}),
        events: timeline.forCheckpoint(s.name),
      };
    });
}

/** Invariant 5: every checkpoint ends (or waits in needs attention with a reason); nothing is wedged. */
function everyCheckpointEnds(facts: FinalFacts, opts: CheckOptions, timeline: Timeline): Violation[] {
  const out: Violation[] = [];
  for (const c of facts.checkpoints) {
    if (END_STATES.has(c.state) || (c.state === 'needs_attention' && c.needsAttentionReason)) continue;
    out.push({
      invariant: 5,
      rule: 'every checkpoint ends terminal or in needs_attention with a reason',
      runnerId: c.runnerId,
      checkpoint: c.name,
      detail: `checkpoint is still ${c.state}${c.state === 'needs_attention' ? ' without a reason' : ''} after the drain`,
      events: timeline.forCheckpoint(c.name),
    });
  }
  for (const wf of facts.workflows) {
    if (wf.workflowTaskFailures > 0) {
      const message = wf.workflowTaskFailure ?? '';
      out.push({
        invariant: 5,
        rule: 'no workflow is wedged in failing workflow tasks',
        checkpoint: wf.workflowId,
        detail: `${wf.workflowTaskFailures} failed workflow task(s): ${message.slice(0, 200)}`,
        ...(/primitive value/.test(message)
          ? { reviewFinding: 'bug 8 (a signal handler throws on a malformed payload)' }
          : /transition|not allowed|Invalid/i.test(message)
            ? { reviewFinding: 'bug 3 (a release whose snapshot delete fails throws InvalidTransitionError)' }
            : {}),
        events: timeline.forCheckpoint(wf.workflowId),
      });
    }
    if (wf.historyLength > opts.historyBound) {
      out.push({
        invariant: 5,
        rule: `every history stays under ${opts.historyBound} events`,
        checkpoint: wf.workflowId,
        detail: `history has ${wf.historyLength} events`,
        events: timeline.forCheckpoint(wf.workflowId),
      });
    }
  }
  return out;
}

/** Ground-truth events as short lines, for showing why a violation is one. */
class Timeline {
  private readonly lines: Array<{ at: number; runnerId: string; checkpoint: string | null; text: string }> = [];

  constructor(truth: GroundTruth, private readonly t0: number) {
    for (const c of truth.commands) {
      const outcome = c.replayed ? 'answered from memory' : c.exitCode === null ? 'no exit code' : `exit ${c.exitCode}`;
      this.lines.push({ at: c.startedAt, runnerId: c.runnerId, checkpoint: c.checkpoint, text: `agent ran ${c.command}${c.commandId ? ` (${c.commandId})` : ''} on session ${c.sessionSerial}: ${outcome}${c.endedAt ? ` after ${c.endedAt - c.startedAt} ms` : ''}` });
    }
    for (const s of truth.sessions) this.lines.push({ at: s.at, runnerId: s.runnerId, checkpoint: null, text: `agent session ${s.serial} ${s.open ? 'opened' : 'closed'} (boot ${s.bootId.slice(0, 6)})` });
    for (const t of truth.tasks) this.lines.push({ at: t.startedAt, runnerId: t.runnerId, checkpoint: t.snapname, text: `proxmox ${t.type}${t.snapname ? ` ${t.snapname}` : ''}: ${t.exitstatus ?? 'running'}${t.endedAt ? ` after ${t.endedAt - t.startedAt} ms` : ''}` });
    for (const p of truth.pauses) this.lines.push({ at: p.at, runnerId: p.runnerId, checkpoint: null, text: `gitlab runner ${p.paused ? 'paused' : 'unpaused'}` });
    for (const o of truth.operator) this.lines.push({ at: o.at, runnerId: o.runnerId, checkpoint: o.checkpoint, text: `operator ${o.action}${o.deleteSnapshot ? ' (delete snapshot)' : ''} of ${o.checkpoint}: HTTP ${o.status} (intent ${o.intent})` });
    for (const c of truth.checkpoints) if (c.createdAt !== null) this.lines.push({ at: c.createdAt, runnerId: c.runnerId, checkpoint: c.name, text: `create answered: ${c.name} (job ${c.jobId})` });
    for (const f of truth.faults) this.lines.push({ at: f.at, runnerId: f.target, checkpoint: null, text: `fault ${f.kind} on ${f.target}` });
    this.lines.sort((a, b) => a.at - b.at);
  }

  private format(line: { at: number; runnerId: string; text: string }): string {
    return `t+${((line.at - this.t0) / 1000).toFixed(3)}s ${line.runnerId}: ${line.text}`;
  }

  around(runnerId: string, from: number, to: number): string[] {
    return this.lines
      .filter((l) => l.at >= from && l.at <= to && (l.runnerId === runnerId || !l.runnerId.startsWith('chaos-')))
      .slice(0, 80)
      .map((l) => this.format(l));
  }

  forCheckpoint(name: string): string[] {
    const own = this.lines.filter((l) => l.checkpoint === name);
    if (own.length === 0) return [];
    return this.around(own[0]!.runnerId, own[0]!.at - 1000, own.at(-1)!.at + 1000);
  }
}
