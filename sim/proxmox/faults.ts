// Fault injection for the Proxmox simulator, per VM (or any VM) and per API operation.

export const simOperations = [
  'status', 'config', 'snapshot-list', 'snapshot-create', 'snapshot-rollback', 'snapshot-delete',
  'stop', 'start', 'task-status', 'task-log', 'task-list', 'cluster-resources',
] as const;
export type SimOperation = (typeof simOperations)[number];

/** Operations that start a task, and so accept `task-fail` and `slow`. */
export const taskOperations = ['snapshot-create', 'snapshot-rollback', 'snapshot-delete', 'stop', 'start'] as const;

interface FaultTarget {
  /** Which call; '*' for every call. */
  op: SimOperation | '*';
  /** Which VM; omitted for every VM (node-level calls carry the task's VM id when known). */
  vmid?: number;
  /** How many matching calls it affects; omitted for all of them until cleared. */
  times?: number;
}

export type SimFault =
  /** Answer with this status (default 500) and message instead of handling the call. */
  | (FaultTarget & { type: 'http-error'; status?: number; message?: string })
  /**
   * Never answer (the connection stays open until the simulator stops). With `afterHandling` the call
   * is carried out first (a task starts) and only the answer is lost, as when a response times out.
   */
  | (FaultTarget & { type: 'timeout'; afterHandling?: boolean })
  /** The task starts normally and ends with this exit status instead of OK. */
  | (FaultTarget & { type: 'task-fail'; exitstatus: string })
  /** The task takes this long instead of the profile's duration. */
  | (FaultTarget & { type: 'slow'; durationMs: number });

export type SimFaultInput = SimFault | { type: 'stuck-lock'; vmid: number; lock: string };

export class SimFaults {
  private faults: SimFault[] = [];

  add(fault: SimFault): void {
    this.faults.push({ ...fault });
  }

  list(): SimFault[] {
    return this.faults.map((f) => ({ ...f }));
  }

  clear(): void {
    this.faults = [];
  }

  /** Finds the first live fault of one of the types for this call and uses up one of its `times`. */
  take<T extends SimFault['type']>(types: readonly T[], op: SimOperation, vmid: number | undefined): Extract<SimFault, { type: T }> | undefined {
    const index = this.faults.findIndex((f) => (types as readonly string[]).includes(f.type)
      && (f.op === '*' || f.op === op)
      && (f.vmid === undefined || f.vmid === vmid));
    if (index < 0) return undefined;
    const fault = this.faults[index]!;
    if (fault.times !== undefined) {
      fault.times -= 1;
      if (fault.times <= 0) this.faults.splice(index, 1);
    }
    return { ...fault } as Extract<SimFault, { type: T }>;
  }
}

/** Validates a fault from the admin API; returns an error text or the fault. */
export function parseFault(body: unknown): SimFaultInput | string {
  if (!body || typeof body !== 'object') return 'fault must be a JSON object';
  const f = body as Record<string, unknown>;
  const vmid = f.vmid === undefined ? undefined : Number(f.vmid);
  if (vmid !== undefined && !Number.isInteger(vmid)) return 'vmid must be an integer';
  if (f.type === 'stuck-lock') {
    if (vmid === undefined || typeof f.lock !== 'string' || !f.lock) return 'stuck-lock needs vmid and lock';
    return { type: 'stuck-lock', vmid, lock: f.lock };
  }
  const op = f.op ?? '*';
  if (op !== '*' && !(simOperations as readonly unknown[]).includes(op)) return `op must be '*' or one of ${simOperations.join(', ')}`;
  const times = f.times === undefined ? undefined : Number(f.times);
  if (times !== undefined && (!Number.isInteger(times) || times < 1)) return 'times must be a positive integer';
  const target = { op: op as SimOperation | '*', ...(vmid !== undefined ? { vmid } : {}), ...(times !== undefined ? { times } : {}) };
  switch (f.type) {
    case 'http-error': {
      const status = f.status === undefined ? undefined : Number(f.status);
      if (status !== undefined && (!Number.isInteger(status) || status < 400 || status > 599)) return 'status must be 400..599';
      if (f.message !== undefined && typeof f.message !== 'string') return 'message must be a string';
      return { type: 'http-error', ...target, ...(status !== undefined ? { status } : {}), ...(typeof f.message === 'string' ? { message: f.message } : {}) };
    }
    case 'timeout':
      if (f.afterHandling !== undefined && typeof f.afterHandling !== 'boolean') return 'afterHandling must be a boolean';
      return { type: 'timeout', ...target, ...(f.afterHandling ? { afterHandling: true } : {}) };
    case 'task-fail':
      if (typeof f.exitstatus !== 'string' || !f.exitstatus) return 'task-fail needs exitstatus';
      return { type: 'task-fail', ...target, exitstatus: f.exitstatus };
    case 'slow': {
      const durationMs = Number(f.durationMs);
      if (!Number.isFinite(durationMs) || durationMs < 0) return 'slow needs durationMs >= 0';
      return { type: 'slow', ...target, durationMs };
    }
    default:
      return 'type must be http-error, timeout, task-fail, slow or stuck-lock';
  }
}
