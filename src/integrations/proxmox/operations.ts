// Idempotent Proxmox steps for the backend activities (ARCHITECTURE.md §4.12). A retried activity passes
// the time of its first attempt as `since`: before any destructive POST we look for a task of the same
// type on the VM started since then and attach to it, so a retry never starts a second snapshot,
// rollback, stop, start or delete while the first is running, and never repeats a finished rollback.
import { setTimeout as sleep } from 'node:timers/promises';
import { E2epoolError } from '../../domain/errors.js';
import type { ProxmoxClient, SnapshotEntry, TaskListEntry, TaskStatus } from './client.js';
import {
  ProxmoxTaskError, codeFromTaskExitstatus, isAlreadyRunning, isSnapshotMissing, isSnapshotNameUsed, isTaskSuccess,
} from './errors.js';

export interface VmTarget {
  node: string;
  vmid: number;
}

export interface OperationContext {
  /** When the first attempt of this activity started. */
  since: Date;
  heartbeat?: (details: unknown) => void;
  /** Task and status polling interval; default 1000 ms. */
  pollIntervalMs?: number;
  signal?: AbortSignal;
  /** The task a previous attempt of this activity waited for (its last heartbeat), if any. */
  previousUpid?: string;
}

export interface ProxmoxOperationsOptions {
  /** How long a finished stop/start task may take to show in `status/current`; default 60 s. */
  powerStateTimeoutMs?: number;
  /**
   * Tasks that started up to this much before `since` still count as ours, because Proxmox records
   * task start times in whole seconds on the node's clock. Default 5 s.
   */
  clockSkewToleranceMs?: number;
}

export type SnapshotOutcome = { outcome: 'created' | 'attached' | 'already_exists'; upid?: string };
export type RollbackOutcome = { outcome: 'rolled_back' | 'attached' | 'already_done'; upid: string };
export type PowerOutcome = { outcome: 'done' | 'attached' | 'already'; upid?: string };
export type DeleteOutcome = { outcome: 'deleted' | 'attached' | 'already_gone'; upid?: string };

export interface ExpectedVm {
  /** The VM id recorded when the checkpoint was created. */
  vmid: number;
  requiredTag?: string;
  requiredPool?: string;
}

const OUR_SNAPSHOT = /^job-/;

export class ProxmoxOperations {
  private readonly powerStateTimeoutMs: number;
  private readonly clockSkewToleranceMs: number;

  constructor(private readonly client: ProxmoxClient, opts: ProxmoxOperationsOptions = {}) {
    this.powerStateTimeoutMs = opts.powerStateTimeoutMs ?? 60_000;
    this.clockSkewToleranceMs = opts.clockSkewToleranceMs ?? 5_000;
  }

  /** Takes snapshot `name` unless it exists; attaches to a snapshot task already running since `since`. */
  async ensureSnapshot(target: VmTarget, name: string, opts: { vmstate?: boolean; description?: string }, ctx: OperationContext): Promise<SnapshotOutcome> {
    const running = (await this.tasksSince(target, 'qmsnapshot', ctx)).find(isRunning);
    if (running) {
      // The task id names only the VM, not the snapshot: after it ends, the snapshot list says whether it was ours.
      const status = await this.waitForTask(target, running.upid, 'ensureSnapshot', ctx);
      if (await this.snapshotReady(target, name)) return { outcome: 'attached', upid: running.upid };
      if (!isTaskSuccess(status.exitstatus)) throw taskError(status);
    }
    const existing = (await this.client.listSnapshots(target.node, target.vmid)).find((s) => s.name === name);
    if (existing) {
      if (existing.snapstate === undefined) return { outcome: 'already_exists' };
      throw new E2epoolError('proxmox_locked', `snapshot ${name} of VM ${target.vmid} is in state ${existing.snapstate}`, { vmid: target.vmid });
    }
    const run = await this.startAndWait(target, 'ensureSnapshot', ctx, isSnapshotNameUsed,
      () => this.client.createSnapshot(target.node, target.vmid, name, { vmstate: opts.vmstate ?? false, description: opts.description ?? `e2epool checkpoint ${name}` }));
    return run.benign ? { outcome: 'already_exists', ...withUpid(run.upid) } : { outcome: 'created', ...withUpid(run.upid) };
  }

  /** Rolls back to `name`; a rollback running or finished (by us) since `since` is attached to, never repeated. */
  async rollbackToSnapshot(target: VmTarget, name: string, ctx: OperationContext, opts: { start?: boolean } = {}): Promise<RollbackOutcome> {
    const tasks = await this.tasksSince(target, 'qmrollback', ctx);
    const running = tasks.find(isRunning);
    if (running) {
      const status = await this.waitForTask(target, running.upid, 'rollback', ctx);
      if (!isTaskSuccess(status.exitstatus)) throw taskError(status);
      return { outcome: 'attached', upid: running.upid };
    }
    const done = tasks.find((t) => !isRunning(t) && isTaskSuccess(t.status) && t.user === this.client.tokenId);
    if (done) return { outcome: 'already_done', upid: done.upid };
    // A rollback this activity started that ran and failed left the disk in a state nobody knows:
    // a second one is an operator's decision, never an activity retry's.
    const failed = ctx.previousUpid ? tasks.find((t) => t.upid === ctx.previousUpid && !isRunning(t)) : undefined;
    if (failed) {
      throw new E2epoolError('proxmox_task_failed', `rollback task ${failed.upid} of VM ${target.vmid} failed (${failed.status ?? 'no status'}); not starting another`, { upid: failed.upid, vmid: target.vmid });
    }
    const run = await this.startAndWait(target, 'rollback', ctx, () => false, () => this.client.rollbackSnapshot(target.node, target.vmid, name, opts.start ? { start: true } : {}));
    return { outcome: 'rolled_back', upid: run.upid! };
  }

  /** Hard stop; "already stopped" is success. Returns once `status/current` says stopped. */
  async stopVm(target: VmTarget, ctx: OperationContext): Promise<PowerOutcome> {
    return this.power(target, 'stopped', ctx);
  }

  /** Start; "already running" is success. Returns once `status/current` says running. */
  async startVm(target: VmTarget, ctx: OperationContext): Promise<PowerOutcome> {
    return this.power(target, 'running', ctx);
  }

  /**
   * Deletes snapshot `name`; "does not exist" is success. With `snapshotTasksSince` (a compensation
   * after a create gave up), snapshot tasks started since then finish first: deleting before one ends
   * would either hit the VM lock or find nothing and leak the snapshot the task writes afterwards.
   */
  async deleteSnapshot(target: VmTarget, name: string, ctx: OperationContext, opts: { snapshotTasksSince?: Date } = {}): Promise<DeleteOutcome> {
    if (opts.snapshotTasksSince) {
      const creating = (await this.tasksSince(target, 'qmsnapshot', { ...ctx, since: opts.snapshotTasksSince })).filter(isRunning);
      for (const task of creating) await this.waitForTask(target, task.upid, 'deleteSnapshot:await-snapshot', ctx);
    }
    const running = (await this.tasksSince(target, 'qmdelsnapshot', ctx)).find(isRunning);
    if (running) {
      const status = await this.waitForTask(target, running.upid, 'deleteSnapshot', ctx);
      if (!(await this.snapshotPresent(target, name))) return { outcome: 'attached', upid: running.upid };
      if (!isTaskSuccess(status.exitstatus) && !isSnapshotMissing(taskError(status))) throw taskError(status);
    } else if (!(await this.snapshotPresent(target, name))) {
      return { outcome: 'already_gone' };
    }
    const run = await this.startAndWait(target, 'deleteSnapshot', ctx, isSnapshotMissing, () => this.client.deleteSnapshot(target.node, target.vmid, name));
    // "Does not exist" counts as gone only when a fresh listing agrees.
    if (run.benign && (await this.snapshotPresent(target, name))) {
      throw new E2epoolError('proxmox_task_failed', `Proxmox reported snapshot '${name}' missing, but it is still listed on VM ${target.vmid}`);
    }
    return run.benign ? { outcome: 'already_gone', ...withUpid(run.upid) } : { outcome: 'deleted', ...withUpid(run.upid) };
  }

  /**
   * Stop → rollback → start. When a rollback already ran or is running since `since`, the stop is
   * skipped (the VM may have been started again by a previous attempt) and the rollback is attached to.
   */
  async rollbackVm(target: VmTarget, name: string, ctx: OperationContext): Promise<RollbackOutcome> {
    const prior = (await this.tasksSince(target, 'qmrollback', ctx))
      .find((t) => isRunning(t) || (isTaskSuccess(t.status) && t.user === this.client.tokenId));
    if (!prior) await this.stopVm(target, ctx);
    const rollback = await this.rollbackToSnapshot(target, name, ctx);
    await this.startVm(target, ctx);
    return rollback;
  }

  /** Guard before destructive calls: same VM id, still on this node, still tagged / pooled as required. */
  async assertVmMatches(target: VmTarget, expected: ExpectedVm): Promise<{ name?: string; tags: string[] }> {
    if (target.vmid !== expected.vmid) {
      throw new E2epoolError('config_changed', `runner VM id is now ${target.vmid}, the checkpoint was taken on VM ${expected.vmid}`, { vmid: target.vmid, expectedVmid: expected.vmid });
    }
    const config = await this.client.getVmConfig(target.node, target.vmid);
    if (expected.requiredTag !== undefined && !config.tagList.includes(expected.requiredTag)) {
      throw new E2epoolError('config_changed', `VM ${target.vmid} on ${target.node} no longer carries tag ${expected.requiredTag}`, { vmid: target.vmid });
    }
    if (expected.requiredPool !== undefined) {
      const resource = (await this.client.listVmResources()).find((r) => r.vmid === target.vmid);
      if (!resource || resource.pool !== expected.requiredPool || (resource.node !== undefined && resource.node !== target.node)) {
        throw new E2epoolError('config_changed', `VM ${target.vmid} is not in pool ${expected.requiredPool} on ${target.node}`, { vmid: target.vmid });
      }
    }
    return { ...(config.name !== undefined ? { name: config.name } : {}), tags: config.tagList };
  }

  /** Snapshots e2epool took (`job-…`), for the orphan audit. */
  async listOurSnapshots(target: VmTarget): Promise<SnapshotEntry[]> {
    return (await this.client.listSnapshots(target.node, target.vmid)).filter((s) => s.name !== 'current' && OUR_SNAPSHOT.test(s.name));
  }

  private async power(target: VmTarget, want: 'running' | 'stopped', ctx: OperationContext): Promise<PowerOutcome> {
    const type = want === 'stopped' ? 'qmstop' : 'qmstart';
    const op = want === 'stopped' ? 'stopVm' : 'startVm';
    const running = (await this.tasksSince(target, type, ctx)).find(isRunning);
    if (running) {
      const status = await this.waitForTask(target, running.upid, op, ctx);
      if (!isTaskSuccess(status.exitstatus) && !(want === 'running' && isAlreadyRunning(taskError(status)))) throw taskError(status);
      await this.waitForPowerState(target, want, op, ctx);
      return { outcome: 'attached', upid: running.upid };
    }
    if ((await this.client.vmStatus(target.node, target.vmid)).status === want) return { outcome: 'already' };
    const run = await this.startAndWait(target, op, ctx, want === 'running' ? isAlreadyRunning : () => false,
      () => (want === 'stopped' ? this.client.stopVm(target.node, target.vmid) : this.client.startVm(target.node, target.vmid)));
    await this.waitForPowerState(target, want, op, ctx);
    return { outcome: 'done', ...withUpid(run.upid) };
  }

  /**
   * POSTs (via `post`) and waits for the task. A failure `isBenign` accepts, in the answer or in the
   * task's exit status, means the wanted state already holds.
   */
  private async startAndWait(target: VmTarget, op: string, ctx: OperationContext, isBenign: (err: unknown) => boolean, post: () => Promise<string>): Promise<{ upid?: string; benign: boolean }> {
    let upid: string;
    try {
      upid = await post();
    } catch (err) {
      if (isBenign(err)) return { benign: true };
      throw err;
    }
    const status = await this.waitForTask(target, upid, op, ctx);
    if (isTaskSuccess(status.exitstatus)) return { upid, benign: false };
    const failure = taskError(status);
    if (isBenign(failure)) return { upid, benign: true };
    throw failure;
  }

  /** Tasks of `type` on the VM started since the first attempt, newest first. */
  private async tasksSince(target: VmTarget, type: string, ctx: OperationContext): Promise<TaskListEntry[]> {
    const since = new Date(ctx.since.getTime() - this.clockSkewToleranceMs);
    const sinceSeconds = Math.floor(since.getTime() / 1000);
    const tasks = await this.client.listTasks(target.node, { vmid: target.vmid, typefilter: type, since, source: 'all', limit: 100 });
    return tasks
      .filter((t) => t.type === type && t.id === String(target.vmid) && t.starttime >= sinceSeconds)
      .sort((a, b) => b.starttime - a.starttime);
  }

  private async waitForTask(target: VmTarget, upid: string, op: string, ctx: OperationContext): Promise<TaskStatus> {
    for (;;) {
      ctx.signal?.throwIfAborted();
      const status = await this.client.taskStatus(target.node, upid);
      ctx.heartbeat?.({ op, upid });
      if (status.status === 'stopped') return status;
      await sleep(ctx.pollIntervalMs ?? 1000, undefined, ctx.signal ? { signal: ctx.signal } : {});
    }
  }

  private async waitForPowerState(target: VmTarget, want: 'running' | 'stopped', op: string, ctx: OperationContext): Promise<void> {
    const deadline = Date.now() + this.powerStateTimeoutMs;
    for (;;) {
      ctx.signal?.throwIfAborted();
      const status = await this.client.vmStatus(target.node, target.vmid);
      ctx.heartbeat?.({ op, vmid: target.vmid, waitingFor: want, status: status.status });
      if (status.status === want) return;
      if (Date.now() >= deadline) {
        throw new E2epoolError('proxmox_unavailable', `VM ${target.vmid} did not reach '${want}' within ${Math.round(this.powerStateTimeoutMs / 1000)}s`, { vmid: target.vmid });
      }
      await sleep(ctx.pollIntervalMs ?? 1000, undefined, ctx.signal ? { signal: ctx.signal } : {});
    }
  }

  private async snapshotReady(target: VmTarget, name: string): Promise<boolean> {
    const snap = (await this.client.listSnapshots(target.node, target.vmid)).find((s) => s.name === name);
    return snap !== undefined && snap.snapstate === undefined;
  }

  private async snapshotPresent(target: VmTarget, name: string): Promise<boolean> {
    return (await this.client.listSnapshots(target.node, target.vmid)).some((s) => s.name === name);
  }
}

function withUpid(upid: string | undefined): { upid?: string } {
  return upid === undefined ? {} : { upid };
}

function isRunning(task: TaskListEntry): boolean {
  return task.endtime === undefined && (task.status === undefined || task.status === 'running' || task.status === 'RUNNING');
}

function taskError(status: TaskStatus): ProxmoxTaskError {
  const exitstatus = status.exitstatus ?? 'unexpected status';
  return new ProxmoxTaskError(codeFromTaskExitstatus(exitstatus), status.upid, exitstatus);
}
