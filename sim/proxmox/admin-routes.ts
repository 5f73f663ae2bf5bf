// The simulator's admin API under /_sim: recorded calls, reset, faults, tasks, and VM state (disk,
// lock, power). Unauthenticated: the simulator listens on 127.0.0.1. README.md lists every route.
import type http from 'node:http';
import { parseFault, type SimFault, type SimFaults } from './faults.js';
import { sendData, sendError } from './http-envelope.js';
import type { SimCall, ProxmoxSimulator } from './server.js';
import type { SimState } from './state.js';

export interface AdminContext {
  simulator: Pick<ProxmoxSimulator, 'reset'>;
  state: SimState;
  faults: SimFaults;
  calls: SimCall[];
}

/** Applies a fault; `stuck-lock` sets the VM's lock instead of queueing a fault. */
export function applyFault(ctx: Pick<AdminContext, 'state' | 'faults'>, input: SimFault | { type: 'stuck-lock'; vmid: number; lock: string }): void {
  if (input.type === 'stuck-lock') ctx.state.setLock(input.vmid, input.lock);
  else ctx.faults.add(input);
}

export function handleAdmin(ctx: AdminContext, method: string, parts: string[], body: unknown, res: http.ServerResponse): void {
  const { simulator, state, faults, calls } = ctx;
  const [what, idText, action] = parts;
  if (what === 'calls' && parts.length === 1) {
    if (method === 'GET') return sendData(res, calls);
    if (method === 'DELETE') { calls.length = 0; return sendData(res, null); }
  }
  if (what === 'reset' && method === 'POST' && parts.length === 1) { simulator.reset(); return sendData(res, null); }
  if (what === 'faults' && parts.length === 1) {
    if (method === 'GET') return sendData(res, faults.list());
    if (method === 'DELETE') { faults.clear(); return sendData(res, null); }
    if (method === 'POST') {
      const fault = parseFault(body);
      if (typeof fault === 'string') return sendError(res, 400, fault);
      if (fault.type === 'stuck-lock' && !state.vms.has(fault.vmid)) return sendError(res, 404, `no VM ${fault.vmid}`);
      applyFault(ctx, fault);
      return sendData(res, fault);
    }
  }
  if (what === 'tasks' && method === 'GET' && parts.length === 1) return sendData(res, state.tasks);
  if (what === 'vms') {
    if (parts.length === 1 && method === 'GET') return sendData(res, [...state.vms.values()].map((vm) => state.describeVm(vm)));
    const vm = state.vms.get(Number(idText));
    if (!vm) return sendError(res, 404, `no VM ${idText}`);
    if (parts.length === 2 && method === 'GET') return sendData(res, state.describeVm(vm));
    const obj = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    if (action === 'disk' && parts.length === 3 && (method === 'POST' || method === 'PUT')) {
      state.setDisk(vm.vmid, obj, method === 'POST');
      return sendData(res, vm.disk);
    }
    if (action === 'lock' && parts.length === 3 && method === 'POST') {
      if (typeof obj.lock !== 'string' || !obj.lock) return sendError(res, 400, 'lock must be a non-empty string');
      state.setLock(vm.vmid, obj.lock);
      return sendData(res, null);
    }
    if (action === 'unlock' && parts.length === 3 && method === 'POST') { state.setLock(vm.vmid, undefined); return sendData(res, null); }
    if (action === 'power' && parts.length === 3 && method === 'POST') {
      if (obj.status !== 'running' && obj.status !== 'stopped') return sendError(res, 400, "status must be 'running' or 'stopped'");
      state.setPower(vm, obj.status);
      return sendData(res, null);
    }
  }
  return sendError(res, 404, `no admin route ${method} /_sim/${parts.join('/')}`);
}
