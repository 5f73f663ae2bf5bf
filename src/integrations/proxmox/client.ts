// Typed Proxmox VE API client (QEMU snapshots, power, tasks) on got. The only code that knows the
// Proxmox URLs and the token header. The token secret never appears in errors or logs.
import got, { RequestError, type Got, type Response } from 'got';
import { z } from 'zod';
import { E2epoolError } from '../../domain/errors.js';
import type { Logger } from '../../logger.js';
import { ProxmoxApiError, codeFromHttp } from './errors.js';
import { createHttpsSettings, isCertificateError, type ProxmoxTlsOptions } from './tls.js';
import { isUpid } from './upid.js';

export type { ProxmoxTlsOptions } from './tls.js';

export interface ProxmoxClientOptions {
  /** `https://host:8006`; the client appends `/api2/json`. */
  baseUrl: string;
  /** `USER@REALM!TOKENID` */
  tokenId: string;
  tokenSecret: string;
  timeoutMs?: number;
  tls?: ProxmoxTlsOptions;
  logger?: Logger;
}

export const vmStatusSchema = z.looseObject({
  status: z.enum(['running', 'stopped']),
  vmid: z.coerce.number().optional(),
  name: z.string().optional(),
  lock: z.string().optional(),
  qmpstatus: z.string().optional(),
  uptime: z.number().optional(),
});
export type VmStatus = z.infer<typeof vmStatusSchema>;

export const snapshotEntrySchema = z.looseObject({
  name: z.string(),
  description: z.string().optional(),
  snaptime: z.number().optional(),
  vmstate: z.union([z.number(), z.boolean()]).optional(),
  parent: z.string().optional(),
  snapstate: z.string().optional(),
  running: z.number().optional(),
  digest: z.string().optional(),
});
export type SnapshotEntry = z.infer<typeof snapshotEntrySchema>;

export const taskStatusSchema = z.looseObject({
  upid: z.string(),
  node: z.string(),
  type: z.string(),
  id: z.string().optional(),
  user: z.string().optional(),
  starttime: z.number(),
  status: z.enum(['running', 'stopped']),
  exitstatus: z.string().optional(),
});
export type TaskStatus = z.infer<typeof taskStatusSchema>;

export const taskListEntrySchema = z.looseObject({
  upid: z.string(),
  node: z.string().optional(),
  type: z.string(),
  id: z.string().optional(),
  user: z.string().optional(),
  starttime: z.number(),
  endtime: z.number().optional(),
  /** For finished tasks: the exit status text. */
  status: z.string().optional(),
});
export type TaskListEntry = z.infer<typeof taskListEntrySchema>;

export const vmConfigSchema = z.looseObject({
  name: z.string().optional(),
  tags: z.string().optional(),
  digest: z.string().optional(),
  lock: z.string().optional(),
});
export type VmConfig = z.infer<typeof vmConfigSchema> & { tagList: string[] };

export const vmResourceSchema = z.looseObject({
  id: z.string(),
  type: z.string(),
  vmid: z.coerce.number().optional(),
  node: z.string().optional(),
  pool: z.string().optional(),
  name: z.string().optional(),
  status: z.string().optional(),
});
export type VmResource = z.infer<typeof vmResourceSchema>;

export interface ListTasksQuery {
  vmid?: number;
  typefilter?: string;
  /** Only tasks started at or after this time (second resolution). */
  since?: Date;
  source?: 'archive' | 'active' | 'all';
  limit?: number;
}

const NODE_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$/;
const TOKEN_ID_PATTERN = /^[^\s@!:=]+@[^\s@!:=]+![A-Za-z][A-Za-z0-9._-]*$/;

function checkNode(node: string): string {
  if (!NODE_PATTERN.test(node)) throw new E2epoolError('validation', `invalid Proxmox node name ${JSON.stringify(node)}`);
  return node;
}

function checkVmid(vmid: number): number {
  if (!Number.isInteger(vmid) || vmid < 100 || vmid > 999_999_999) throw new E2epoolError('validation', `invalid Proxmox VM id ${JSON.stringify(vmid)}`);
  return vmid;
}

function checkName(what: string, value: string): string {
  if (value.length === 0 || value.length > 200 || /[\s/]/.test(value)) throw new E2epoolError('validation', `invalid ${what} ${JSON.stringify(value.slice(0, 60))}`);
  return encodeURIComponent(value);
}

export function parseTags(tags: string | undefined): string[] {
  return (tags ?? '').split(/[;,\s]+/).filter((t) => t.length > 0);
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Params = Record<string, string | number | boolean | undefined>;

function toForm(params: Params): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
  }
  return out;
}

export class ProxmoxClient {
  private readonly http: Got;
  readonly baseUrl: string;
  /** `USER@REALM!TOKENID`: the user Proxmox records on the tasks this client starts. */
  readonly tokenId: string;

  constructor(opts: ProxmoxClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new E2epoolError('validation', 'Proxmox base URL is not a valid URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new E2epoolError('validation', 'Proxmox base URL must be http(s)');
    if (url.username || url.password || url.search) throw new E2epoolError('validation', 'Proxmox base URL must not carry credentials or a query');
    if (!TOKEN_ID_PATTERN.test(opts.tokenId)) throw new E2epoolError('validation', 'Proxmox token id must look like USER@REALM!TOKENID');
    if (!opts.tokenSecret || /[\s]/.test(opts.tokenSecret)) throw new E2epoolError('validation', 'Proxmox token secret is empty or contains whitespace');
    this.tokenId = opts.tokenId;
    this.baseUrl = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    const https = url.protocol === 'https:' ? createHttpsSettings(this.baseUrl, opts.tls ?? {}, opts.logger) : undefined;
    this.http = got.extend({
      prefixUrl: `${this.baseUrl}/api2/json`,
      headers: { authorization: `PVEAPIToken=${opts.tokenId}=${opts.tokenSecret}`, accept: 'application/json' },
      timeout: { request: opts.timeoutMs ?? 30_000 },
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      responseType: 'text',
      ...(https
        ? {
          agent: { https: https.agent },
          https: { rejectUnauthorized: https.rejectUnauthorized, ...(https.certificateAuthority ? { certificateAuthority: https.certificateAuthority } : {}) },
        }
        : {}),
    });
  }

  private vmPath(node: string, vmid: number): string {
    return `nodes/${checkNode(node)}/qemu/${checkVmid(vmid)}`;
  }

  /** One API call; returns `data` parsed with the schema, or throws ProxmoxApiError. */
  private async call<T>(method: Method, path: string, schema: z.ZodType<T>, params: Params = {}): Promise<T> {
    const info = { method, path: `/${path}` };
    let response: Response<string>;
    try {
      const form = toForm(params);
      response = await this.http(path, {
        method,
        ...(method === 'GET' || method === 'DELETE'
          ? { searchParams: form }
          : { form }),
      });
    } catch (err) {
      // got's error carries the request options (and so the token header): keep only its code and text.
      const code = err instanceof RequestError ? err.code : undefined;
      const what = err instanceof RequestError && err.name === 'TimeoutError' ? 'timed out' : (code ?? 'request failed');
      const certificate = isCertificateError(code);
      throw new ProxmoxApiError(
        certificate ? 'proxmox_auth' : 'proxmox_unavailable',
        certificate ? `Proxmox ${method} ${info.path}: server certificate not trusted (${code})` : `Proxmox ${method} ${info.path}: ${what}`,
        info,
      );
    }
    const reason = response.statusMessage ?? '';
    let body: any;
    try {
      body = response.body.length ? JSON.parse(response.body) : undefined;
    } catch {
      body = undefined;
    }
    if (response.statusCode >= 400) {
      const message = typeof body?.message === 'string' ? body.message.replace(/\n+$/, '') : undefined;
      const errors = body?.errors && typeof body.errors === 'object' ? Object.fromEntries(Object.entries(body.errors).map(([k, v]) => [k, String(v).replace(/\n+$/, '')])) : undefined;
      const text = [reason, message, errors ? Object.values(errors).join('; ') : ''].filter(Boolean).join(' | ');
      const code = codeFromHttp(response.statusCode, text);
      const paramText = errors ? ` (${Object.entries(errors).map(([k, v]) => `${k}: ${v}`).join('; ')})` : '';
      throw new ProxmoxApiError(code, `Proxmox ${method} ${info.path}: ${response.statusCode} ${message ?? reason}${paramText}`, {
        ...info, status: response.statusCode, reason, ...(message !== undefined ? { message } : {}), ...(errors ? { errors } : {}),
      });
    }
    if (body === undefined || typeof body !== 'object' || body === null || !('data' in body)) {
      throw new ProxmoxApiError('proxmox_unavailable', `Proxmox ${method} ${info.path}: ${response.statusCode} answer is not a Proxmox JSON envelope`, { ...info, status: response.statusCode, reason });
    }
    const parsed = schema.safeParse(body.data);
    if (!parsed.success) {
      throw new ProxmoxApiError('proxmox_bad_request', `Proxmox ${method} ${info.path}: unexpected answer: ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`, { ...info, status: response.statusCode, reason });
    }
    return parsed.data;
  }

  private static readonly upidSchema = z.string().refine(isUpid, 'not a UPID');

  vmStatus(node: string, vmid: number): Promise<VmStatus> {
    return this.call('GET', `${this.vmPath(node, vmid)}/status/current`, vmStatusSchema);
  }

  async getVmConfig(node: string, vmid: number): Promise<VmConfig> {
    const config = await this.call('GET', `${this.vmPath(node, vmid)}/config`, vmConfigSchema);
    return { ...config, tagList: parseTags(config.tags) };
  }

  listSnapshots(node: string, vmid: number): Promise<SnapshotEntry[]> {
    return this.call('GET', `${this.vmPath(node, vmid)}/snapshot`, z.array(snapshotEntrySchema));
  }

  /** Starts a `qmsnapshot` task; returns its UPID. */
  createSnapshot(node: string, vmid: number, name: string, opts: { vmstate?: boolean; description?: string } = {}): Promise<string> {
    checkName('snapshot name', name);
    return this.call('POST', `${this.vmPath(node, vmid)}/snapshot`, ProxmoxClient.upidSchema, { snapname: name, vmstate: opts.vmstate, description: opts.description });
  }

  /** Starts a `qmrollback` task; returns its UPID. */
  rollbackSnapshot(node: string, vmid: number, name: string, opts: { start?: boolean } = {}): Promise<string> {
    return this.call('POST', `${this.vmPath(node, vmid)}/snapshot/${checkName('snapshot name', name)}/rollback`, ProxmoxClient.upidSchema, { start: opts.start });
  }

  /** Starts a `qmdelsnapshot` task; returns its UPID. */
  deleteSnapshot(node: string, vmid: number, name: string, opts: { force?: boolean } = {}): Promise<string> {
    return this.call('DELETE', `${this.vmPath(node, vmid)}/snapshot/${checkName('snapshot name', name)}`, ProxmoxClient.upidSchema, { force: opts.force });
  }

  /** Hard stop; starts a `qmstop` task. */
  stopVm(node: string, vmid: number, opts: { timeout?: number } = {}): Promise<string> {
    return this.call('POST', `${this.vmPath(node, vmid)}/status/stop`, ProxmoxClient.upidSchema, { timeout: opts.timeout });
  }

  /** Starts a `qmstart` task. */
  startVm(node: string, vmid: number, opts: { timeout?: number } = {}): Promise<string> {
    return this.call('POST', `${this.vmPath(node, vmid)}/status/start`, ProxmoxClient.upidSchema, { timeout: opts.timeout });
  }

  taskStatus(node: string, upid: string): Promise<TaskStatus> {
    return this.call('GET', `nodes/${checkNode(node)}/tasks/${checkName('UPID', upid)}/status`, taskStatusSchema);
  }

  taskLog(node: string, upid: string, opts: { start?: number; limit?: number } = {}): Promise<Array<{ n: number; t: string }>> {
    return this.call('GET', `nodes/${checkNode(node)}/tasks/${checkName('UPID', upid)}/log`, z.array(z.looseObject({ n: z.number(), t: z.string() })), { start: opts.start, limit: opts.limit });
  }

  /** `GET /nodes/{node}/tasks`; newest first as Proxmox returns them. */
  listTasks(node: string, query: ListTasksQuery = {}): Promise<TaskListEntry[]> {
    return this.call('GET', `nodes/${checkNode(node)}/tasks`, z.array(taskListEntrySchema), {
      vmid: query.vmid === undefined ? undefined : checkVmid(query.vmid),
      typefilter: query.typefilter,
      since: query.since === undefined ? undefined : Math.floor(query.since.getTime() / 1000),
      source: query.source,
      limit: query.limit,
    });
  }

  /** `GET /cluster/resources?type=vm`: where each VM runs and which pool holds it. */
  listVmResources(): Promise<VmResource[]> {
    return this.call('GET', 'cluster/resources', z.array(vmResourceSchema), { type: 'vm' });
  }
}
