// The admin API's view of a runner (`RunnerResponse`): e2epool's fields, then ours, built field by
// field so no secret can slip in; timestamps as e2epool wrote them.
import { rowToRunner, type Runner, type RunnerRow } from '../inventory/registry.js';

/** `RunnerResponse` of the admin API: e2epool's fields, then ours. Never any secret. */
export interface RunnerResponse {
  runner_id: string;
  backend: string;
  proxmox_host: string | null;
  proxmox_user: string | null;
  proxmox_token_name: string | null;
  proxmox_node: string | null;
  proxmox_vmid: number | null;
  reset_cmd: string | null;
  cleanup_cmd: string | null;
  readiness_cmd: string | null;
  gitlab_runner_id: number | null;
  tags: string[];
  is_active: boolean;
  created_at: string;
  updated_at: string;
  source: Runner['source'];
  drained: boolean;
  reset_mode: string;
  success_action: string;
  gitlab_url: string | null;
  proxmox_verify_tls: boolean;
  proxmox_ca_file: string | null;
  proxmox_fingerprint: string | null;
  proxmox_required_tag: string | null;
  proxmox_pool: string | null;
  snapshot_vmstate: boolean;
  allow_insecure_transport: boolean;
  /** `agent_token`: the agent has its own credential; `runner_token`: legacy, CI's token opens agent sessions. */
  agent_credential: 'agent_token' | 'runner_token';
  /** Only in the answers that issue a token (create, rotate): shown once. */
  token?: string;
}

/** API timestamps as e2epool wrote them: ISO-8601 in UTC without an offset. */
function naiveUtc(d: Date): string {
  return d.toISOString().replace(/Z$/, '');
}

/** The admin API's view of a runner. Built field by field so no secret can slip in. */
export function runnerView(runner: Runner | RunnerRow, token?: string): RunnerResponse {
  const r = 'tokenHash' in runner ? rowToRunner(runner) : runner;
  const view: RunnerResponse = {
    runner_id: r.runnerId,
    backend: r.backend,
    proxmox_host: r.proxmoxHost,
    proxmox_user: r.proxmoxUser,
    proxmox_token_name: r.proxmoxTokenName,
    proxmox_node: r.proxmoxNode,
    proxmox_vmid: r.proxmoxVmid,
    reset_cmd: r.resetCmd,
    cleanup_cmd: r.cleanupCmd,
    readiness_cmd: r.readinessCmd,
    gitlab_runner_id: r.gitlabRunnerId,
    tags: [...r.tags],
    is_active: r.isActive,
    created_at: naiveUtc(r.createdAt),
    updated_at: naiveUtc(r.updatedAt),
    source: r.source,
    drained: r.drained,
    reset_mode: r.options.resetMode,
    success_action: r.options.successAction,
    gitlab_url: r.options.gitlabUrl,
    proxmox_verify_tls: r.options.proxmoxVerifyTls,
    proxmox_ca_file: r.options.proxmoxCaFile,
    proxmox_fingerprint: r.options.proxmoxFingerprint,
    proxmox_required_tag: r.options.proxmoxRequiredTag,
    proxmox_pool: r.options.proxmoxPool,
    snapshot_vmstate: r.options.snapshotVmstate,
    allow_insecure_transport: r.options.allowInsecureTransport,
    agent_credential: r.hasAgentCredential ? 'agent_token' : 'runner_token',
  };
  if (token !== undefined) view.token = token;
  return view;
}
