// In-memory Proxmox cluster for the simulator: VMs with power state, config lock, a `disk` that
// snapshots capture and rollbacks restore, snapshots, and asynchronous tasks with UPIDs.
import { randomBytes } from 'node:crypto';
import type { SimDurations, SimTaskType } from './profiles.js';

export type PowerState = 'running' | 'stopped';

export interface SimVmInit {
  node: string;
  vmid: number;
  name?: string;
  tags?: string[];
  pool?: string;
  status?: PowerState;
  disk?: Record<string, unknown>;
  /** ZFS-like storage: rollback only to the most recent snapshot. Default false (LVM-thin, qcow2). */
  linearChain?: boolean;
  /**
   * Rollback of a running VM. qemu-server stops the VM itself before rolling back
   * (`__snapshot_rollback_vm_stop`), so 'stop' is the default; 'error' fails the task with
   * "VM <vmid> is running" for tests that want the stricter behaviour.
   */
  rollbackWhileRunning?: 'stop' | 'error';
}

export interface SimSnapshot {
  name: string;
  description: string;
  snaptime?: number;
  vmstate: boolean;
  parent?: string;
  snapstate?: 'prepare' | 'delete';
  disk: Record<string, unknown>;
  /** Creation order, for the most-recent rule. */
  seq: number;
}

export interface SimVm {
  node: string;
  vmid: number;
  name: string;
  tags: string[];
  pool?: string;
  status: PowerState;
  lock?: string;
  disk: Record<string, unknown>;
  snapshots: Map<string, SimSnapshot>;
  /** Parent of the `current` state: the snapshot last taken or rolled back to. */
  parent?: string;
  linearChain: boolean;
  rollbackWhileRunning: 'stop' | 'error';
  uptimeSince?: number;
}

export interface SimTask {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: SimTaskType;
  id: string;
  user: string;
  status: 'running' | 'stopped';
  exitstatus?: string;
  endtime?: number;
  log: string[];
}

/** What a task does: `start` runs at once, `finish` when the duration has passed (returns an error text to fail). */
interface TaskWork {
  start?: () => void;
  finish: () => string | undefined;
  /** Undo on an injected failure. */
  abort?: () => void;
}

export type PowerListener = (vmid: number, status: PowerState) => void;

const clone = <T>(value: T): T => structuredClone(value);
const nowSeconds = () => Math.floor(Date.now() / 1000);

function hex(n: number, width: number): string {
  return n.toString(16).toUpperCase().padStart(width, '0');
}

export class SimState {
  readonly vms = new Map<number, SimVm>();
  readonly tasks: SimTask[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly powerListeners = new Set<PowerListener>();
  private nextPid = 0x1000 + randomBytes(2).readUInt16BE(0);
  private nextSeq = 1;
  private readonly pstart = 0x00c0ffee;

  constructor(private readonly initial: SimVmInit[], public durations: SimDurations) {
    for (const vm of initial) this.addVm(vm);
  }

  addVm(init: SimVmInit): SimVm {
    if (!Number.isInteger(init.vmid) || init.vmid < 100) throw new Error(`invalid vmid ${init.vmid}`);
    if (this.vms.has(init.vmid)) throw new Error(`VM ${init.vmid} already exists`);
    const vm: SimVm = {
      node: init.node,
      vmid: init.vmid,
      name: init.name ?? `runner-${init.vmid}`,
      tags: [...(init.tags ?? [])],
      ...(init.pool !== undefined ? { pool: init.pool } : {}),
      status: init.status ?? 'running',
      disk: clone(init.disk ?? {}),
      snapshots: new Map(),
      linearChain: init.linearChain ?? false,
      rollbackWhileRunning: init.rollbackWhileRunning ?? 'stop',
      ...(init.status === 'stopped' ? {} : { uptimeSince: Date.now() }),
    };
    this.vms.set(vm.vmid, vm);
    return vm;
  }

  vm(vmid: number): SimVm {
    const vm = this.vms.get(vmid);
    if (!vm) throw new Error(`no VM ${vmid} in the simulator`);
    return vm;
  }

  onPowerChange(listener: PowerListener): () => void {
    this.powerListeners.add(listener);
    return () => this.powerListeners.delete(listener);
  }

  setPower(vm: SimVm, status: PowerState): void {
    if (vm.status === status) return;
    vm.status = status;
    if (status === 'running') vm.uptimeSince = Date.now();
    else delete vm.uptimeSince;
    for (const listener of this.powerListeners) {
      try {
        listener(vm.vmid, status);
      } catch {
        // A hook's failure must not break the simulated hypervisor.
      }
    }
  }

  setDisk(vmid: number, disk: Record<string, unknown>, merge = true): void {
    const vm = this.vm(vmid);
    vm.disk = merge ? { ...vm.disk, ...clone(disk) } : clone(disk);
  }

  setLock(vmid: number, lock: string | undefined): void {
    const vm = this.vm(vmid);
    if (lock === undefined) delete vm.lock;
    else vm.lock = lock;
  }

  /** Back to the VMs given at start; tasks and timers are dropped. */
  reset(): void {
    this.cancelTimers();
    this.tasks.length = 0;
    this.vms.clear();
    for (const vm of this.initial) this.addVm(vm);
  }

  cancelTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  findTask(upid: string): SimTask | undefined {
    return this.tasks.find((t) => t.upid === upid);
  }

  /** Starts a worker task; the work's `finish` runs after `durationMs`. */
  runTask(vm: SimVm, type: SimTaskType, user: string, work: TaskWork, opts: { durationMs?: number; failWith?: string } = {}): SimTask {
    const pid = this.nextPid++;
    const starttime = nowSeconds();
    const task: SimTask = {
      upid: `UPID:${vm.node}:${hex(pid, 8)}:${hex(this.pstart, 8)}:${hex(starttime, 8)}:${type}:${vm.vmid}:${user}:`,
      node: vm.node, pid, pstart: this.pstart, starttime, type, id: String(vm.vmid), user, status: 'running', log: [],
    };
    this.tasks.push(task);
    work.start?.();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      let error: string | undefined;
      if (opts.failWith !== undefined) {
        work.abort?.();
        error = opts.failWith;
      } else {
        error = work.finish();
      }
      task.status = 'stopped';
      task.endtime = nowSeconds();
      if (error === undefined) {
        task.exitstatus = 'OK';
        task.log.push('TASK OK');
      } else {
        task.exitstatus = error;
        task.log.push(error, `TASK ERROR: ${error}`);
      }
    }, opts.durationMs ?? this.durations[type]);
    this.timers.add(timer);
    return task;
  }

  /** The most recent snapshot that is not being deleted (creation order). */
  private mostRecentSnapshot(vm: SimVm): SimSnapshot | undefined {
    let newest: SimSnapshot | undefined;
    for (const s of vm.snapshots.values()) if (s.snapstate !== 'delete' && (!newest || s.seq > newest.seq)) newest = s;
    return newest;
  }

  // Each operation below returns a started task; lock checks that Proxmox makes before forking the
  // worker are done by the caller (server.ts) so they answer synchronously.

  createSnapshot(vm: SimVm, user: string, name: string, opts: { vmstate: boolean; description: string }, taskOpts: { durationMs?: number; failWith?: string }): SimTask {
    if (vm.snapshots.has(name)) {
      return this.runTask(vm, 'qmsnapshot', user, { finish: () => `snapshot name '${name}' already used` }, { durationMs: 5 });
    }
    const snap: SimSnapshot = {
      name, description: opts.description, vmstate: opts.vmstate && vm.status === 'running', snapstate: 'prepare',
      disk: clone(vm.disk), seq: this.nextSeq++, ...(vm.parent !== undefined ? { parent: vm.parent } : {}),
    };
    return this.runTask(vm, 'qmsnapshot', user, {
      start: () => {
        vm.lock = 'snapshot';
        vm.snapshots.set(name, snap);
      },
      finish: () => {
        delete snap.snapstate;
        snap.snaptime = nowSeconds();
        vm.parent = name;
        delete vm.lock;
        return undefined;
      },
      abort: () => {
        vm.snapshots.delete(name);
        delete vm.lock;
      },
    }, taskOpts);
  }

  rollback(vm: SimVm, user: string, name: string, opts: { start: boolean }, taskOpts: { durationMs?: number; failWith?: string }): SimTask {
    const snap = vm.snapshots.get(name);
    const quickFail = (message: string) => this.runTask(vm, 'qmrollback', user, { finish: () => message }, { durationMs: 5 });
    if (!snap || snap.snapstate !== undefined) return quickFail(`snapshot '${name}' does not exist`);
    if (vm.linearChain && this.mostRecentSnapshot(vm) !== snap) {
      return quickFail(`can't rollback, '${name}' is not most recent snapshot on 'local-zfs:vm-${vm.vmid}-disk-0'`);
    }
    if (vm.status === 'running' && vm.rollbackWhileRunning === 'error') return quickFail(`VM ${vm.vmid} is running`);
    return this.runTask(vm, 'qmrollback', user, {
      start: () => {
        vm.lock = 'rollback';
        this.setPower(vm, 'stopped');
      },
      finish: () => {
        vm.disk = clone(snap.disk);
        vm.parent = name;
        delete vm.lock;
        if (opts.start || snap.vmstate) this.setPower(vm, 'running');
        return undefined;
      },
      abort: () => {
        delete vm.lock;
      },
    }, taskOpts);
  }

  deleteSnapshot(vm: SimVm, user: string, name: string, taskOpts: { durationMs?: number; failWith?: string }): SimTask {
    const snap = vm.snapshots.get(name);
    if (!snap || snap.snapstate === 'prepare') {
      return this.runTask(vm, 'qmdelsnapshot', user, { finish: () => `snapshot '${name}' does not exist` }, { durationMs: 5 });
    }
    return this.runTask(vm, 'qmdelsnapshot', user, {
      start: () => {
        vm.lock = 'snapshot-delete';
        snap.snapstate = 'delete';
      },
      finish: () => {
        vm.snapshots.delete(name);
        for (const other of vm.snapshots.values()) {
          if (other.parent === name) {
            if (snap.parent !== undefined) other.parent = snap.parent;
            else delete other.parent;
          }
        }
        if (vm.parent === name) {
          if (snap.parent !== undefined) vm.parent = snap.parent;
          else delete vm.parent;
        }
        delete vm.lock;
        return undefined;
      },
      abort: () => {
        delete snap.snapstate;
        delete vm.lock;
      },
    }, taskOpts);
  }

  stop(vm: SimVm, user: string, taskOpts: { durationMs?: number; failWith?: string }): SimTask {
    // Stopping a stopped VM is a successful no-op in qemu-server.
    return this.runTask(vm, 'qmstop', user, {
      finish: () => {
        this.setPower(vm, 'stopped');
        return undefined;
      },
    }, taskOpts);
  }

  start(vm: SimVm, user: string, taskOpts: { durationMs?: number; failWith?: string }): SimTask {
    if (vm.status === 'running') {
      return this.runTask(vm, 'qmstart', user, { finish: () => `VM ${vm.vmid} already running` }, { durationMs: 5 });
    }
    return this.runTask(vm, 'qmstart', user, {
      finish: () => {
        this.setPower(vm, 'running');
        return undefined;
      },
    }, taskOpts);
  }

  /** `GET …/snapshot` as Proxmox lists it, with the `current` pseudo-entry last. */
  snapshotList(vm: SimVm): Array<Record<string, unknown>> {
    const list: Array<Record<string, unknown>> = [...vm.snapshots.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((s) => ({
        name: s.name,
        description: s.description,
        ...(s.snaptime !== undefined ? { snaptime: s.snaptime } : {}),
        ...(s.vmstate ? { vmstate: 1 } : {}),
        ...(s.parent !== undefined ? { parent: s.parent } : {}),
        ...(s.snapstate !== undefined ? { snapstate: s.snapstate } : {}),
      }));
    list.push({
      name: 'current', description: 'You are here!', running: vm.status === 'running' ? 1 : 0,
      digest: randomBytes(20).toString('hex'), ...(vm.parent !== undefined ? { parent: vm.parent } : {}),
    });
    return list;
  }

  /** A JSON-friendly copy for the admin API and tests. */
  describeVm(vm: SimVm): Record<string, unknown> {
    return {
      node: vm.node, vmid: vm.vmid, name: vm.name, tags: vm.tags, pool: vm.pool, status: vm.status, lock: vm.lock,
      disk: clone(vm.disk), parent: vm.parent, linearChain: vm.linearChain, rollbackWhileRunning: vm.rollbackWhileRunning,
      snapshots: [...vm.snapshots.values()].map((s) => ({ name: s.name, parent: s.parent, snapstate: s.snapstate, vmstate: s.vmstate, disk: clone(s.disk) })),
    };
  }
}
