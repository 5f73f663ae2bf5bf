// Proxmox VE API simulator on 127.0.0.1: the real paths, token header, envelope and error shapes
// (message in the HTTP reason phrase), UPID tasks, locks, snapshots, plus an admin API under /_sim
// for fault injection, VM state and call records. See sim/proxmox/README.md.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { generateSelfSignedCertificate } from './certificate.js';
import { SimFaults, parseFault, taskOperations, type SimFault, type SimOperation } from './faults.js';
import { resolveDurations, type SimDurations, type SimProfile } from './profiles.js';
import { SimState, type PowerListener, type SimVm, type SimVmInit } from './state.js';

export type SimPrivilege = 'VM.Audit' | 'VM.Snapshot' | 'VM.Snapshot.Rollback' | 'VM.PowerMgmt' | 'Sys.Audit';
export const allSimPrivileges: SimPrivilege[] = ['VM.Audit', 'VM.Snapshot', 'VM.Snapshot.Rollback', 'VM.PowerMgmt', 'Sys.Audit'];

export interface SimToken {
  /** `USER@REALM!TOKENID` */
  tokenId: string;
  secret: string;
  /** VMs the token may act on; default every VM. */
  vms?: number[] | '*';
  /** Default: all of them. */
  privileges?: SimPrivilege[];
}

export interface ProxmoxSimulatorOptions {
  host?: string;
  /** HTTP port; 0 (default) lets the OS pick. */
  port?: number;
  /** Also serve HTTPS with a self-signed certificate made at start. */
  https?: boolean;
  httpsPort?: number;
  profile?: SimProfile;
  durations?: Partial<SimDurations>;
  tokens?: SimToken[];
  vms?: SimVmInit[];
}

export interface SimCall {
  seq: number;
  at: string;
  method: string;
  path: string;
  op?: SimOperation;
  node?: string;
  vmid?: number;
  /** Query and body parameters (never the Authorization header). */
  params: Record<string, string>;
  authOk: boolean;
  tokenId?: string;
  /** HTTP status answered; undefined while pending or when the call was left hanging. */
  status?: number;
}

export interface ProxmoxSimulator {
  /** `http://127.0.0.1:<port>`: the client appends `/api2/json`; the admin API is under `/_sim`. */
  url: string;
  httpsUrl?: string;
  port: number;
  httpsPort?: number;
  certPem?: string;
  /** SHA-256 fingerprint of the HTTPS certificate, `AA:BB:...`. */
  fingerprint?: string;
  state: SimState;
  faults: SimFaults;
  calls: SimCall[];
  onVmPowerChange(listener: PowerListener): () => void;
  /** Applies a fault; `stuck-lock` sets the VM's lock until `state.setLock(vmid, undefined)`. */
  inject(fault: SimFault | { type: 'stuck-lock'; vmid: number; lock: string }): void;
  /** Calls to one operation (optionally of one VM), for assertions. */
  callsTo(op: SimOperation, vmid?: number): SimCall[];
  /** Clears calls and faults and puts the VMs back as configured. */
  reset(): void;
  stop(): Promise<void>;
}

export const defaultSimToken: SimToken = { tokenId: 'e2epool@pve!ctl', secret: 'sim-secret' };
export const defaultSimVms: SimVmInit[] = [{ node: 'pve1', vmid: 101, name: 'runner-101', tags: ['e2epool'] }];

const SNAPNAME_PATTERN = /^[a-z][a-z0-9_-]+$/i;
const privilegeOf: Record<SimOperation, SimPrivilege | undefined> = {
  'status': 'VM.Audit', 'config': 'VM.Audit', 'snapshot-list': 'VM.Audit', 'snapshot-create': 'VM.Snapshot',
  'snapshot-rollback': 'VM.Snapshot.Rollback', 'snapshot-delete': 'VM.Snapshot', 'stop': 'VM.PowerMgmt', 'start': 'VM.PowerMgmt',
  'task-status': undefined, 'task-log': undefined, 'task-list': undefined, 'cluster-resources': undefined,
};

class ApiFailure extends Error {
  constructor(readonly status: number, message: string, readonly errors?: Record<string, string>) {
    super(message);
  }
}

interface Route {
  op: SimOperation;
  node?: string;
  vmidText?: string;
  snapname?: string;
  upid?: string;
}

function matchRoute(method: string, apiPath: string): Route | undefined {
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

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 1_000_000) {
        reject(new ApiFailure(413, 'request entity too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseParams(url: URL, body: string, contentType: string | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [k, v] of url.searchParams) params[k] = v;
  if (body.length === 0) return params;
  if (contentType?.includes('application/json')) {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object') for (const [k, v] of Object.entries(parsed)) params[k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
  } else {
    for (const [k, v] of new URLSearchParams(body)) params[k] = v;
  }
  return params;
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

/** Proxmox's error envelope: the reason phrase carries the message, the body repeats it. */
function sendError(res: http.ServerResponse, status: number, message: string, errors?: Record<string, string>): void {
  const reason = message.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, 400).trim() || 'error';
  const body = JSON.stringify({ data: null, message: `${message}\n`, ...(errors ? { errors } : {}) });
  res.writeHead(status, reason, { 'content-type': 'application/json;charset=UTF-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendData(res: http.ServerResponse, data: unknown, status = 200): void {
  const body = JSON.stringify({ data });
  res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function startProxmoxSimulator(opts: ProxmoxSimulatorOptions = {}): Promise<ProxmoxSimulator> {
  const host = opts.host ?? '127.0.0.1';
  const tokens = opts.tokens ?? [defaultSimToken];
  for (const t of tokens) {
    if (!/^[^\s@!]+@[^\s@!]+![A-Za-z][A-Za-z0-9._-]*$/.test(t.tokenId)) throw new Error(`simulator token id ${JSON.stringify(t.tokenId)} must look like USER@REALM!TOKENID`);
  }
  const state = new SimState(opts.vms ?? defaultSimVms, resolveDurations(opts.profile, opts.durations));
  const faults = new SimFaults();
  const calls: SimCall[] = [];
  const hanging = new Set<http.ServerResponse>();
  let seq = 0;

  const authenticate = (header: string | undefined): SimToken | 'missing' | 'invalid' => {
    if (!header) return 'missing';
    const m = /^PVEAPIToken=([^=\s]+)=(\S+)$/.exec(header.trim());
    if (!m) return 'invalid';
    const token = tokens.find((t) => t.tokenId === m[1]);
    return token && token.secret === m[2] ? token : 'invalid';
  };

  const may = (token: SimToken, privilege: SimPrivilege, vmid?: number): boolean => {
    const privileges = token.privileges ?? allSimPrivileges;
    if (!privileges.includes(privilege)) return false;
    if (vmid === undefined || token.vms === undefined || token.vms === '*') return true;
    return token.vms.includes(vmid);
  };

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

  function handleApi(route: Route, params: Record<string, string>, token: SimToken): unknown {
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
  }

  const simulator = {} as ProxmoxSimulator;

  function applyFault(input: SimFault | { type: 'stuck-lock'; vmid: number; lock: string }): void {
    if (input.type === 'stuck-lock') state.setLock(input.vmid, input.lock);
    else faults.add(input);
  }

  function handleAdmin(method: string, parts: string[], body: unknown, res: http.ServerResponse): void {
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
        applyFault(fault);
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

  async function onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://sim');
    let bodyText: string;
    try {
      bodyText = await readBody(req);
    } catch (err) {
      return sendError(res, err instanceof ApiFailure ? err.status : 400, err instanceof Error ? err.message : 'bad request');
    }
    if (url.pathname.startsWith('/_sim/')) {
      let body: unknown;
      try {
        body = bodyText ? JSON.parse(bodyText) : undefined;
      } catch {
        return sendError(res, 400, 'admin API bodies are JSON');
      }
      return handleAdmin(method, url.pathname.slice('/_sim/'.length).split('/').filter(Boolean), body, res);
    }
    if (!url.pathname.startsWith('/api2/json/')) return sendError(res, 404, 'not found');
    const apiPath = url.pathname.slice('/api2/json'.length);

    let params: Record<string, string>;
    try {
      params = parseParams(url, bodyText, req.headers['content-type']);
    } catch {
      return sendError(res, 400, 'unable to parse request body');
    }
    const route = matchRoute(method, apiPath);
    const auth = authenticate(req.headers.authorization);
    const token = typeof auth === 'string' ? undefined : auth;
    let vmid = route?.vmidText !== undefined && /^\d+$/.test(route.vmidText) ? Number(route.vmidText) : undefined;
    if (route?.upid) {
      const id = route.upid.split(':')[6];
      if (id && /^\d+$/.test(id)) vmid = Number(id);
    }
    const call: SimCall = {
      seq: ++seq, at: new Date().toISOString(), method, path: apiPath, params, authOk: token !== undefined,
      ...(route ? { op: route.op } : {}), ...(route?.node !== undefined ? { node: route.node } : {}),
      ...(vmid !== undefined ? { vmid } : {}), ...(token ? { tokenId: token.tokenId } : {}),
    };
    calls.push(call);
    res.on('finish', () => { call.status = res.statusCode; });

    if (!token) return sendError(res, 401, auth === 'missing' ? 'No ticket' : 'authentication failure');
    if (!route) return sendError(res, 501, `Method '${method} ${apiPath}' not implemented`);

    const fault = faults.take(['http-error', 'timeout'], route.op, vmid);
    if (fault?.type === 'timeout') {
      if (fault.afterHandling) {
        try {
          handleApi(route, params, token);
        } catch {
          // The caller never hears the outcome either way.
        }
      }
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    if (fault?.type === 'http-error') return sendError(res, fault.status ?? 500, fault.message ?? 'simulated server error');

    try {
      sendData(res, handleApi(route, params, token));
    } catch (err) {
      if (err instanceof ApiFailure) return sendError(res, err.status, err.message, err.errors);
      return sendError(res, 500, err instanceof Error ? err.message : String(err));
    }
  }

  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    onRequest(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, err instanceof Error ? err.message : 'internal error');
    });
  };

  const listen = (server: http.Server | https.Server, port: number) => new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });

  const httpServer = http.createServer(listener);
  const port = await listen(httpServer, opts.port ?? 0);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let httpsServer: https.Server | undefined;
  let httpsPort: number | undefined;
  let certificate: ReturnType<typeof generateSelfSignedCertificate> | undefined;
  if (opts.https) {
    certificate = generateSelfSignedCertificate();
    httpsServer = https.createServer({ cert: certificate.certPem, key: certificate.keyPem }, listener);
    try {
      httpsPort = await listen(httpsServer, opts.httpsPort ?? 0);
    } catch (err) {
      httpServer.close();
      throw err;
    }
  }

  const close = (server: http.Server | https.Server) => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });

  Object.assign(simulator, {
    url: `http://${urlHost}:${port}`,
    ...(httpsPort !== undefined ? { httpsUrl: `https://${urlHost}:${httpsPort}`, httpsPort } : {}),
    port,
    ...(certificate ? { certPem: certificate.certPem, fingerprint: certificate.fingerprint } : {}),
    state,
    faults,
    calls,
    onVmPowerChange: (l: PowerListener) => state.onPowerChange(l),
    inject: applyFault,
    callsTo: (op: SimOperation, id?: number) => calls.filter((c) => c.op === op && (id === undefined || c.vmid === id)),
    reset: () => {
      calls.length = 0;
      faults.clear();
      state.reset();
    },
    stop: async () => {
      state.cancelTimers();
      for (const res of hanging) res.destroy();
      hanging.clear();
      await Promise.all([close(httpServer), ...(httpsServer ? [close(httpsServer)] : [])]);
    },
  } satisfies ProxmoxSimulator);
  return simulator;
}
