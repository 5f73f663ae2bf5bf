// Backend activities: snapshot, guard, stop, rollback, start and delete of a runner's VM. Proxmox
// steps are idempotent across retries (they attach to tasks started since the activity's first
// attempt) and limited per node by database leases; bare-metal runners have no VM, and their reset
// point is the checkpoint row itself.
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { E2epoolError } from '../src/domain/errors.js';
import { assertTransportAllowed } from '../src/integrations/transport-policy.js';
import type { Logger } from '../src/logger.js';
import type { Db } from '../src/store/database.js';
import type { Runner, RunnerRegistry } from '../src/inventory/registry.js';
import { ProxmoxClient, type ProxmoxTlsOptions } from '../src/integrations/proxmox/client.js';
import { ProxmoxOperations, type OperationContext, type VmTarget } from '../src/integrations/proxmox/operations.js';
import { NodeLeases } from './node-leases.js';
import type { BackendActivities, CheckpointRef } from './types.js';

export interface BackendDeps {
  registry: Pick<RunnerRegistry, 'getRunner'>;
  db: Db;
  logger: Logger;
  /** Timeout of one Proxmox API call. */
  httpTimeoutMs: number;
  /** Concurrent Proxmox operations per node across all instances; default 2. */
  nodeCap?: number;
  instanceId: string;
  tuning?: BackendTuning;
}

export interface BackendTuning {
  /** Task and power-state polling; default 1000 ms. */
  pollIntervalMs?: number;
  /** How long a finished stop/start may take to show; default 60 s. */
  powerStateTimeoutMs?: number;
  /** Node lease lifetime, renewed while held; default 120 s. */
  leaseTtlSeconds?: number;
  /** Pause between attempts while a node is at its cap; default 2000 ms. */
  leaseRetryMs?: number;
}

export const DEFAULT_NODE_CAP = 2;
const PROXMOX_DEFAULT_PORT = 8006;

/**
 * The Proxmox API base URL from `proxmox_host`: `host`, `host:port` (https, port 8006 by default)
 * or a full `https://` (or `http://`) URL.
 */
export function proxmoxBaseUrl(host: string): string {
  const text = host.trim();
  if (text.length === 0) throw new E2epoolError('validation', 'proxmox_host is empty');
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new E2epoolError('validation', `proxmox_host ${JSON.stringify(text.slice(0, 100))} is not a host, host:port or URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new E2epoolError('validation', 'proxmox_host must use https:// (or http://)');
  if (url.username || url.password || url.search || url.hash) throw new E2epoolError('validation', 'proxmox_host must not carry credentials, a query or a fragment');
  // A bare host means the Proxmox default port; a full URL keeps whatever it says.
  if (withScheme !== text && url.port === '') url.port = String(PROXMOX_DEFAULT_PORT);
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api2\/json$/, '');
  return `${url.protocol}//${url.host}${path}`;
}

/** TLS per runner: a pinned fingerprint, else a CA file, else insecure when verification is off. */
export function proxmoxTlsOptions(runner: Runner): ProxmoxTlsOptions {
  const o = runner.options;
  if (o.proxmoxFingerprint) return { fingerprint: o.proxmoxFingerprint };
  if (o.proxmoxCaFile) return { caFile: o.proxmoxCaFile };
  if (!o.proxmoxVerifyTls) return { insecure: true };
  return {};
}

interface ProxmoxRunner {
  runner: Runner;
  ops: ProxmoxOperations;
  target: VmTarget;
  /** Key of the node for the per-node cap: API endpoint plus node name. */
  nodeKey: string;
}

export function createBackendActivities(deps: BackendDeps): BackendActivities {
  const { registry, logger } = deps;
  const tuning = deps.tuning ?? {};
  const pollIntervalMs = tuning.pollIntervalMs ?? 1000;
  const leases = new NodeLeases(deps.db, deps.instanceId, {
    cap: deps.nodeCap ?? DEFAULT_NODE_CAP,
    ttlSeconds: tuning.leaseTtlSeconds ?? 120,
    retryMs: tuning.leaseRetryMs ?? 2000,
  });
  // One client per distinct connection setting: keeps TLS agents (and their sockets) shared.
  const clients = new Map<string, ProxmoxClient>();

  async function loadRunner(runnerId: string): Promise<Runner> {
    const runner = await registry.getRunner(runnerId);
    if (!runner) throw new E2epoolError('runner_not_found', `Runner '${runnerId}' is not registered or not active`);
    return runner;
  }

  function clientFor(runner: Runner): ProxmoxClient {
    const missing = (['proxmoxHost', 'proxmoxUser', 'proxmoxTokenName', 'proxmoxTokenValue', 'proxmoxNode'] as const).filter((k) => !runner[k]);
    if (missing.length > 0 || runner.proxmoxVmid === null) {
      throw new E2epoolError('validation', `Runner '${runner.runnerId}' lacks Proxmox settings: ${[...missing, ...(runner.proxmoxVmid === null ? ['proxmoxVmid'] : [])].join(', ')}`);
    }
    const baseUrl = proxmoxBaseUrl(runner.proxmoxHost!);
    assertTransportAllowed(baseUrl, `Runner '${runner.runnerId}': proxmox_host`, runner.options.allowInsecureTransport);
    const tokenId = `${runner.proxmoxUser}!${runner.proxmoxTokenName}`;
    const tls = proxmoxTlsOptions(runner);
    // The secret enters the cache key only as a hash.
    const key = JSON.stringify([baseUrl, tokenId, createHash('sha256').update(runner.proxmoxTokenValue!).digest('hex'), tls]);
    let client = clients.get(key);
    if (!client) {
      client = new ProxmoxClient({ baseUrl, tokenId, tokenSecret: runner.proxmoxTokenValue!, timeoutMs: deps.httpTimeoutMs, tls, logger });
      clients.set(key, client);
    }
    return client;
  }

  async function proxmoxRunner(ref: CheckpointRef, step: string): Promise<ProxmoxRunner | null> {
    const runner = await loadRunner(ref.runnerId);
    if (runner.backend !== 'proxmox') return null;
    const client = clientFor(runner);
    const target = { node: runner.proxmoxNode!, vmid: runner.proxmoxVmid! };
    const ops = new ProxmoxOperations(client, tuning.powerStateTimeoutMs !== undefined ? { powerStateTimeoutMs: tuning.powerStateTimeoutMs } : {});
    logger.debug({ runnerId: ref.runnerId, checkpoint: ref.name, step, node: target.node, vmid: target.vmid }, 'proxmox step');
    return { runner, ops, target, nodeKey: `${client.baseUrl}|${target.node}` };
  }

  /** The activity's Proxmox context: `since` is the first attempt's scheduling time. */
  function operationContext(): OperationContext {
    const ctx = Context.current();
    // Never later than now: a server clock ahead of ours must not hide the tasks we started.
    const since = new Date(Math.min(ctx.info.scheduledTimestampMs, Date.now()));
    const last = ctx.info.heartbeatDetails as { upid?: unknown } | undefined;
    const previousUpid = typeof last?.upid === 'string' ? last.upid : undefined;
    return { since, pollIntervalMs, heartbeat: (details) => ctx.heartbeat(details), signal: ctx.cancellationSignal, ...(previousUpid ? { previousUpid } : {}) };
  }

  /** Runs `op` holding a lease on the runner's node, waiting (heartbeating) for a free slot. */
  async function withNodeLease<T>(pr: ProxmoxRunner, ref: CheckpointRef, step: string, op: (ctx: OperationContext) => Promise<T>): Promise<T> {
    const ctx = Context.current();
    const opCtx = operationContext();
    let waited = false;
    const lease = await leases.acquire(pr.nodeKey, `${ref.name}:${step}`, {
      onWait: ({ holders }) => {
        if (!waited) logger.info({ runnerId: ref.runnerId, checkpoint: ref.name, step, node: pr.target.node, holders }, 'waiting for a free Proxmox slot on the node');
        waited = true;
        ctx.heartbeat({ op: step, waitingForNodeSlot: pr.target.node });
      },
      sleep: (ms) => ctx.sleep(ms),
    });
    try {
      return await op(opCtx);
    } finally {
      await lease.release().catch((err: unknown) => logger.warn({ runnerId: ref.runnerId, node: pr.target.node, err: String(err) }, 'could not release the node lease; it expires by itself'));
    }
  }

  function notForBareMetal(ref: CheckpointRef, step: string): never {
    throw new E2epoolError('bad_request', `Runner '${ref.runnerId}' is bare metal: it has no VM to ${step}`);
  }

  function logDone(ref: CheckpointRef, step: string, pr: ProxmoxRunner, outcome: { outcome: string; upid?: string }) {
    logger.info({ runnerId: ref.runnerId, checkpoint: ref.name, workflowId: ref.name, node: pr.target.node, vmid: pr.target.vmid, step, outcome: outcome.outcome, upid: outcome.upid }, `proxmox ${step}: ${outcome.outcome}`);
  }

  return {
    async takeSnapshot(ref) {
      const pr = await proxmoxRunner(ref, 'snapshot');
      if (!pr) return { vmid: null }; // bare metal: the checkpoint row is the reset point
      const vmstate = pr.runner.options.snapshotVmstate;
      const result = await withNodeLease(pr, ref, 'snapshot', (ctx) => pr.ops.ensureSnapshot(pr.target, ref.name, { vmstate }, ctx));
      logDone(ref, 'snapshot', pr, result);
      return { vmid: pr.target.vmid };
    },

    async deleteSnapshot(input) {
      const ref = { name: input.name, runnerId: input.runnerId };
      const pr = await proxmoxRunner(ref, 'delete_snapshot');
      if (!pr) return;
      const opts = input.snapshotTasksSinceMs !== undefined ? { snapshotTasksSince: new Date(input.snapshotTasksSinceMs) } : {};
      const result = await withNodeLease(pr, ref, 'delete_snapshot', (ctx) => pr.ops.deleteSnapshot(pr.target, ref.name, ctx, opts));
      logDone(ref, 'delete_snapshot', pr, result);
    },

    async assertVmUnchanged(input) {
      const runner = await loadRunner(input.runnerId);
      if (runner.backend !== 'proxmox') {
        if (input.vmid === null) notForBareMetal(input, 'check');
        throw new E2epoolError('config_changed', `Runner '${input.runnerId}' is no longer a Proxmox runner; the checkpoint was taken on VM ${input.vmid}`);
      }
      if (input.vmid === null) {
        throw new E2epoolError('config_changed', `Runner '${input.runnerId}' is a Proxmox runner now, but the checkpoint recorded no VM`);
      }
      const pr = (await proxmoxRunner(input, 'assert_vm'))!;
      const o = pr.runner.options;
      await pr.ops.assertVmMatches(pr.target, {
        vmid: input.vmid,
        ...(o.proxmoxRequiredTag ? { requiredTag: o.proxmoxRequiredTag } : {}),
        ...(o.proxmoxPool ? { requiredPool: o.proxmoxPool } : {}),
      });
    },

    async stopVm(ref) {
      const pr = await proxmoxRunner(ref, 'stop');
      if (!pr) notForBareMetal(ref, 'stop');
      logDone(ref, 'stop', pr, await withNodeLease(pr, ref, 'stop', (ctx) => pr.ops.stopVm(pr.target, ctx)));
    },

    async rollbackVm(ref) {
      const pr = await proxmoxRunner(ref, 'rollback');
      if (!pr) notForBareMetal(ref, 'roll back');
      // Rollback only: the workflow runs stop, rollback and start as three activities.
      logDone(ref, 'rollback', pr, await withNodeLease(pr, ref, 'rollback', (ctx) => pr.ops.rollbackToSnapshot(pr.target, ref.name, ctx)));
    },

    async startVm(ref) {
      const pr = await proxmoxRunner(ref, 'start');
      if (!pr) notForBareMetal(ref, 'start');
      logDone(ref, 'start', pr, await withNodeLease(pr, ref, 'start', (ctx) => pr.ops.startVm(pr.target, ctx)));
    },
  };
}
