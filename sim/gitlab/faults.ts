// Fault injection per simulated endpoint: answer with a status (5xx, 404, 401...), hang until the
// client gives up, delay, or drop the connection. A fault without `times` stays until cleared.

export const SIM_ENDPOINTS = ['getJob', 'getRunner', 'updateRunner', 'listRunnerJobs'] as const;
export type SimEndpoint = (typeof SIM_ENDPOINTS)[number];
/** `any` matches every /api/v4 endpoint, including unknown routes. */
export type SimFaultTarget = SimEndpoint | 'any';

export type SimFault =
  | { kind: 'status'; status: number; message?: string; times?: number }
  | { kind: 'hang'; times?: number }
  | { kind: 'delay'; ms: number; times?: number }
  | { kind: 'disconnect'; times?: number };

interface ActiveFault {
  target: SimFaultTarget;
  fault: SimFault;
  remaining: number;
}

export class FaultInjector {
  private faults: ActiveFault[] = [];

  inject(target: SimFaultTarget, fault: SimFault): void {
    validateFault(target, fault);
    this.faults.push({ target, fault, remaining: fault.times ?? Infinity });
  }

  clear(target?: SimFaultTarget): void {
    this.faults = target === undefined ? [] : this.faults.filter((f) => f.target !== target);
  }

  /** The fault to apply to this call, if any; consumes one use of it. */
  take(endpoint: SimEndpoint | undefined): SimFault | undefined {
    const active = this.faults.find((f) => f.remaining > 0 && (f.target === 'any' || f.target === endpoint));
    if (!active) return undefined;
    active.remaining -= 1;
    if (active.remaining <= 0) this.faults = this.faults.filter((f) => f !== active);
    return active.fault;
  }

  list(): Array<{ target: SimFaultTarget; fault: SimFault; remaining: number | null }> {
    return this.faults.map((f) => ({ target: f.target, fault: f.fault, remaining: Number.isFinite(f.remaining) ? f.remaining : null }));
  }
}

/** Throws a readable error for a malformed fault (the admin API answers 400 with it). */
export function validateFault(target: unknown, fault: unknown): asserts fault is SimFault {
  if (target !== 'any' && !(SIM_ENDPOINTS as readonly unknown[]).includes(target)) {
    throw new Error(`endpoint must be one of any, ${SIM_ENDPOINTS.join(', ')}`);
  }
  const f = fault as Partial<Record<string, unknown>> | null;
  if (!f || typeof f !== 'object') throw new Error('fault must be an object');
  if (f.times !== undefined && (typeof f.times !== 'number' || !Number.isInteger(f.times) || f.times < 1)) {
    throw new Error('times must be a positive integer (omit it for a fault that stays until cleared)');
  }
  switch (f.kind) {
    case 'status':
      if (typeof f.status !== 'number' || !Number.isInteger(f.status) || f.status < 400 || f.status > 599) throw new Error('status must be an HTTP error status (400-599)');
      if (f.message !== undefined && typeof f.message !== 'string') throw new Error('message must be a string');
      return;
    case 'delay':
      if (typeof f.ms !== 'number' || !(f.ms >= 0)) throw new Error('ms must be a non-negative number');
      return;
    case 'hang':
    case 'disconnect':
      return;
    default:
      throw new Error('kind must be one of status, hang, delay, disconnect');
  }
}
