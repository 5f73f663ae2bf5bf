// The simulated Proxmox API routes under /api2/json: the paths the controller calls, parameter
// checks with Proxmox's messages, privilege checks per token, and the VM and task operations.
import type { SimFaults, SimOperation } from './faults.js';
import { taskOperations } from './faults.js';
import { ApiFailure } from './http-envelope.js';
import type { SimState, SimVm } from './state.js';
import { may, type SimPrivilege, type SimToken } from './tokens.js';

const SNAPNAME_PATTERN = /^[a-z][a-z0-9_-]+$/i;
const privilegeOf: Record<SimOperation, SimPrivilege | undefined> = {
  'status': 'VM.Audit', 'config': 'VM.Audit', 'snapshot-list': 'VM.Audit', 'snapshot-create': 'VM.Snapshot',
  'snapshot-rollback': 'VM.Snapshot.Rollback', 'snapshot-delete': 'VM.Snapshot', 'stop': 'VM.PowerMgmt', 'start': 'VM.PowerMgmt',
  'task-status': undefined, 'task-log': undefined, 'task-list': undefined, 'cluster-resources': undefined,
};

export interface Route {
  op: SimOperation;
  node?: string;
  vmidText?: string;
  snapname?: string;
  upid?: string;
}

export function matchRoute(method: string, apiPath: string): Route | undefined {
  const parts = apiPath.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  const [a, node, b, vmidText, c, d, e] = parts;
  if (method === 'GET' && parts.length === 2 && a === 'cluster' && node === 'resources') return { op: 'cluster-resources' };
  if (a !== 'nodes' || node === undefined) return undefined;
  if (b === 'tasks') {
    if (parts.length === 3 && method === 'GET') return { op: 'task-list', node };
    if (parts.length === 5 && method === 'GET' && c === 'status') return { op: 'task-status', node, upid: vmidText! };
    if (parts.length === 5 && method === 'GET' && c === 'log') return { op: 'task-log', node, upid: vmidText! };
    return undefined;
  }
  if (b !== 'qemu' || vmidText === undefined) return undefined;
  const vm = { node, vmidText };
  if (c === 'status' && parts.length === 6) {
    if (method === 'GET' && d === 'current') return { op: 'status', ...vm };
    if (method === 'POST' && d === 'stop') return { op: 'stop', ...vm };
    if (method === 'POST' && d === 'start') return { op: 'start', ...vm };
  }
  if (c === 'config' && parts.length === 5 && method === 'GET') return { op: 'config', ...vm };
  if (c === 'snapshot') {
    if (parts.length === 5 && method === 'GET') return { op: 'snapshot-list', ...vm };
    if (parts.length === 5 && method === 'POST') return { op: 'snapshot-create', ...vm };
    if (parts.length === 6 && method === 'DELETE') return { op: 'snapshot-delete', ...vm, snapname: d! };
    if (parts.length === 7 && method === 'POST' && e === 'rollback') return { op: 'snapshot-rollback', ...vm, snapname: d! };
  }
  return undefined;
}

function parseBoolean(params: Record<string, string>, name: string, errors: Record<string, string>): boolean {
  const v = params[name];
  if (v === undefined) return false;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  errors[name] = `type check ('boolean') failed - got '${v}'`;
  return false;
}

function checkSnapname(name: string | undefined, errors: Record<string, string>): void {
  if (name === undefined || name === '') errors.snapname = 'property is missing and it is not optional';
  else if (name.length > 40) errors.snapname = 'value may only be 40 characters long';
  else if (!SNAPNAME_PATTERN.test(name)) errors.snapname = `invalid format - invalid configuration ID '${name}'`;
  else if (name === 'current' || name.toLowerCase() === 'pending') errors.snapname = `unable to use snapshot name '${name}' (reserved name)`;
}

export type ApiHandler = (route: Route, params: Record<string, string>, token: SimToken) => unknown;

/** The API's answers over this simulator's VMs, tasks and faults. */
export function createApiHandler(state: SimState, faults: SimFaults): ApiHandler {
  const vmOn = (node: string, vmid: number): SimVm => {
    const vm = state.vms.get(vmid);
    if (!vm || vm.node !== node) throw new ApiFailure(500, `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
    return vm;
  };

  const checkLock = (vm: SimVm): void => {
    if (vm.lock !== undefined) throw new ApiFailure(500, `VM ${vm.vmid} is locked (${vm.lock})`);
  };

  const taskOptions = (op: SimOperation, vmid: number): { durationMs?: number; failWith?: string } => {
    if (!(taskOperations as readonly string[]).includes(op)) return {};
    const slow = faults.take(['slow'], op, vmid);
    const fail = faults.take(['task-fail'], op, vmid);
    return { ...(slow ? { durationMs: slow.durationMs } : {}), ...(fail ? { failWith: fail.exitstatus } : {}) };
  };

  const taskVisible = (token: SimToken, task: { user: string; id: string }): boolean =>
    task.user === token.tokenId || may(token, 'Sys.Audit') || (task.id !== '' && may(token, 'VM.Audit', Number(task.id)));

  const handleApi: ApiHandler = (route, params, token) => {
    const errors: Record<string, string> = {};
    let vmid: number | undefined;
    if (route.vmidText !== undefined) {
      if (!/^\d+$/.test(route.vmidText)) errors.vmid = `type check ('integer') failed - got '${route.vmidText}'`;
      else vmid = Number(route.vmidText);
    }
    if (route.op === 'snapshot-create') checkSnapname(params.snapname, errors);
    if (route.snapname !== undefined) checkSnapname(route.snapname, errors);
    const vmstate = parseBoolean(params, 'vmstate', errors);
    const start = parseBoolean(params, 'start', errors);
    if (Object.keys(errors).length) throw new ApiFailure(400, 'Parameter verification failed.', errors);

    const privilege = privilegeOf[route.op];
    if (privilege && vmid !== undefined) {
      if (!may(token, privilege, vmid)) throw new ApiFailure(403, `Permission check failed (/vms/${vmid}, ${privilege})`);
      if (route.op === 'snapshot-rollback' && start && !may(token, 'VM.PowerMgmt', vmid)) throw new ApiFailure(403, `Permission check failed (/vms/${vmid}, VM.PowerMgmt)`);
    }
    const user = token.tokenId;
    const node = route.node!;

    switch (route.op) {
      case 'cluster-resources':
        return [...state.vms.values()].filter((vm) => may(token, 'VM.Audit', vm.vmid)).map((vm) => ({
          id: `qemu/${vm.vmid}`, type: 'qemu', vmid: vm.vmid, node: vm.node, name: vm.name, status: vm.status,
          ...(vm.pool !== undefined ? { pool: vm.pool } : {}), ...(vm.tags.length ? { tags: vm.tags.join(';') } : {}),
        }));
      case 'task-list': {
        const source = params.source ?? 'archive';
        if (!['archive', 'active', 'all'].includes(source)) throw new ApiFailure(400, 'Parameter verification failed.', { source: `value '${source}' does not have a value in the enumeration 'archive, active, all'` });
        const since = params.since === undefined ? undefined : Number(params.since);
        const limit = params.limit === undefined ? 50 : Number(params.limit);
        return state.tasks
          .filter((t) => t.node === node && taskVisible(token, t))
          .filter((t) => source === 'all' || (source === 'active') === (t.status === 'running'))
          .filter((t) => params.vmid === undefined || t.id === params.vmid)
          .filter((t) => params.typefilter === undefined || t.type === params.typefilter)
          .filter((t) => since === undefined || t.starttime >= since)
          .sort((x, y) => y.starttime - x.starttime || y.pid - x.pid)
          .slice(0, limit)
          .map((t) => ({
            upid: t.upid, node: t.node, pid: t.pid, pstart: t.pstart, starttime: t.starttime, type: t.type, id: t.id, user: t.user,
            ...(t.status === 'stopped' ? { status: t.exitstatus, endtime: t.endtime } : {}),
          }));
      }
      case 'task-status':
      case 'task-log': {
        if (!route.upid!.startsWith('UPID:')) throw new ApiFailure(400, 'Parameter verification failed.', { upid: 'unable to parse worker upid' });
        const task = state.findTask(route.upid!);
        if (!task || task.node !== node) throw new ApiFailure(400, 'Parameter verification failed.', { upid: 'no such task' });
        if (!taskVisible(token, task)) throw new ApiFailure(403, `Permission check failed (/nodes/${node}, Sys.Audit)`);
        if (route.op === 'task-log') {
          const lines = task.log.length ? task.log : ['(running)'];
          return lines.map((t, i) => ({ n: i + 1, t }));
        }
        return {
          upid: task.upid, node: task.node, pid: task.pid, pstart: task.pstart, starttime: task.starttime, type: task.type, id: task.id,
          user: task.user, status: task.status, ...(task.exitstatus !== undefined ? { exitstatus: task.exitstatus } : {}),
        };
      }
      default:
        break;
    }

    const vm = vmOn(node, vmid!);
    switch (route.op) {
      case 'status':
        return {
          vmid: vm.vmid, name: vm.name, status: vm.status, ...(vm.status === 'running' ? { qmpstatus: 'running', pid: 10_000 + vm.vmid, uptime: Math.floor((Date.now() - (vm.uptimeSince ?? Date.now())) / 1000) } : { qmpstatus: 'stopped', uptime: 0 }),
          ...(vm.lock !== undefined ? { lock: vm.lock } : {}), cpu: 0, cpus: 2, mem: 0, maxmem: 4_294_967_296, maxdisk: 34_359_738_368, netin: 0, netout: 0, diskread: 0, diskwrite: 0, ha: { managed: 0 }, agent: 1,
        };
      case 'config':
        return {
          name: vm.name, digest: 'sim', cores: 2, memory: '4096', agent: '1',
          ...(vm.tags.length ? { tags: vm.tags.join(';') } : {}), ...(vm.lock !== undefined ? { lock: vm.lock } : {}), ...(vm.parent !== undefined ? { parent: vm.parent } : {}),
        };
      case 'snapshot-list':
        return state.snapshotList(vm);
      case 'snapshot-create': {
        checkLock(vm);
        const description = params.description ?? '';
        return state.createSnapshot(vm, user, params.snapname!, { vmstate, description }, taskOptions(route.op, vm.vmid)).upid;
      }
      case 'snapshot-rollback':
        checkLock(vm);
        return state.rollback(vm, user, route.snapname!, { start }, taskOptions(route.op, vm.vmid)).upid;
      case 'snapshot-delete':
        checkLock(vm);
        return state.deleteSnapshot(vm, user, route.snapname!, taskOptions(route.op, vm.vmid)).upid;
      case 'stop':
        checkLock(vm);
        return state.stop(vm, user, taskOptions(route.op, vm.vmid)).upid;
      case 'start':
        checkLock(vm);
        return state.start(vm, user, taskOptions(route.op, vm.vmid)).upid;
      default:
        throw new ApiFailure(501, `Method not implemented`);
    }
  };
  return handleApi;
}
