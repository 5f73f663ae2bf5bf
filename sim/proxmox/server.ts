// Proxmox VE API simulator on 127.0.0.1: the real paths, token header, envelope and error shapes
// (message in the HTTP reason phrase), UPID tasks, locks, snapshots, plus an admin API under /_sim
// for fault injection, VM state and call records. See sim/proxmox/README.md. This file serves both;
// the routes are api-routes.ts and admin-routes.ts, the envelope http-envelope.ts.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { applyFault, handleAdmin, type AdminContext } from './admin-routes.js';
import { createApiHandler, matchRoute } from './api-routes.js';
import { generateSelfSignedCertificate } from './certificate.js';
import { SimFaults, type SimFault, type SimOperation } from './faults.js';
import { ApiFailure, parseParams, readBody, sendData, sendError } from './http-envelope.js';
import { resolveDurations, type SimDurations, type SimProfile } from './profiles.js';
import { SimState, type PowerListener, type SimVmInit } from './state.js';
import { authenticate, checkTokenIds, defaultSimToken, type SimToken } from './tokens.js';

export { allSimPrivileges, defaultSimToken, type SimPrivilege, type SimToken } from './tokens.js';

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

export const defaultSimVms: SimVmInit[] = [{ node: 'pve1', vmid: 101, name: 'runner-101', tags: ['e2epool'] }];

export async function startProxmoxSimulator(opts: ProxmoxSimulatorOptions = {}): Promise<ProxmoxSimulator> {
  const host = opts.host ?? '127.0.0.1';
  const tokens = opts.tokens ?? [defaultSimToken];
  checkTokenIds(tokens);
  const state = new SimState(opts.vms ?? defaultSimVms, resolveDurations(opts.profile, opts.durations));
  const faults = new SimFaults();
  const calls: SimCall[] = [];
  const hanging = new Set<http.ServerResponse>();
  let seq = 0;

  const handleApi = createApiHandler(state, faults);
  const simulator = {} as ProxmoxSimulator;
  const admin: AdminContext = { simulator, state, faults, calls };

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
      return handleAdmin(admin, method, url.pathname.slice('/_sim/'.length).split('/').filter(Boolean), body, res);
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
    const auth = authenticate(tokens, req.headers.authorization);
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
    inject: (fault: SimFault | { type: 'stuck-lock'; vmid: number; lock: string }) => applyFault(admin, fault),
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
