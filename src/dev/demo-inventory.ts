// The demo runners of `e2epool dev`: which runners exist (Proxmox VMs on the simulator and
// bare-metal hosts), the commands their agents declare, and the inventory.yml the controller loads.
// Every run generates new runner tokens; they only ever appear in files under the data directory.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';

export type DemoBackend = 'proxmox' | 'bare_metal';

export interface DemoRunner {
  runnerId: string;
  backend: DemoBackend;
  /** Bearer token of the runner (inventory and agent config only). */
  token: string;
  /** The runner's id in the GitLab simulator. */
  gitlabRunnerId: number;
  /** The simulated VM of a Proxmox runner. */
  vm?: { node: string; vmid: number };
  /** The host's own directory: its workspace and, for bare metal, the reboot request marker. */
  hostDir: string;
  /** Where CI jobs write; cleanup empties it. */
  workspaceDir: string;
  /** Bare metal: the reset command touches it and the host supervisor "reboots" the agent. */
  rebootMarker?: string;
  /** Commands the agent declares (name → shell command). */
  commands: Record<string, string>;
}

export interface ProxmoxEndpoint {
  /** `https://127.0.0.1:<port>` (or http://). */
  url: string;
  /** SHA-256 fingerprint to pin (HTTPS only). */
  fingerprint?: string;
  user: string;
  tokenName: string;
  tokenValue: string;
  /** Tag every demo VM carries; the controller refuses to touch a VM without it. */
  requiredTag: string;
}

export const DEMO_PROXMOX_NODE = 'pve1';
export const DEMO_VM_TAG = 'e2epool';
const FIRST_VMID = 101;

/** Quotes a value for POSIX sh. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Plans `count` runners: every third one is bare metal, the rest Proxmox VMs (3 → two VMs and one
 * bare-metal host). Host directories live under `devDir/hosts`.
 */
export function planDemoRunners(count: number, devDir: string): DemoRunner[] {
  if (!Number.isInteger(count) || count < 1 || count > 50) throw new Error(`the number of demo runners must be from 1 to 50, got ${count}`);
  const runners: DemoRunner[] = [];
  let vms = 0;
  let hosts = 0;
  for (let i = 0; i < count; i++) {
    const backend: DemoBackend = i % 3 === 2 ? 'bare_metal' : 'proxmox';
    const runnerId = backend === 'proxmox' ? `pve-runner-${++vms}` : `bm-runner-${++hosts}`;
    const hostDir = path.join(devDir, 'hosts', runnerId);
    const workspaceDir = path.join(hostDir, 'workspace');
    const ws = shellQuote(workspaceDir);
    const commands: Record<string, string> = {
      cleanup: `rm -rf ${ws} && mkdir -p ${ws}`,
      readiness: `test -d ${ws}`,
    };
    let rebootMarker: string | undefined;
    if (backend === 'bare_metal') {
      rebootMarker = path.join(hostDir, 'reboot-requested');
      // Wipes the workspace, then asks the host supervisor to restart the agent: a new session
      // after the reset is what the controller's readiness check must see.
      commands.reset = `sleep 1 && rm -rf ${ws} && mkdir -p ${ws} && touch ${shellQuote(rebootMarker)}`;
    }
    runners.push({
      runnerId,
      backend,
      token: generateToken(),
      gitlabRunnerId: i + 1,
      ...(backend === 'proxmox' ? { vm: { node: DEMO_PROXMOX_NODE, vmid: FIRST_VMID + vms - 1 } } : {}),
      hostDir,
      workspaceDir,
      ...(rebootMarker ? { rebootMarker } : {}),
      commands,
    });
  }
  return runners;
}

/** The inventory.yml entries (e2epool fields plus ours) for the planned runners. */
export function demoInventoryDocument(runners: DemoRunner[], proxmox: ProxmoxEndpoint): { runners: Array<Record<string, unknown>> } {
  return {
    runners: runners.map((r) => {
      const common = {
        runner_id: r.runnerId,
        backend: r.backend,
        token: r.token,
        gitlab_runner_id: r.gitlabRunnerId,
        cleanup_cmd: r.commands.cleanup,
        readiness_cmd: r.commands.readiness,
        tags: ['demo', r.backend],
      };
      if (r.backend === 'bare_metal') {
        // The reset restarts the agent, so the session always drops: say so rather than guess.
        return { ...common, reset_cmd: r.commands.reset, reset_mode: 'reboot' };
      }
      return {
        ...common,
        proxmox_host: proxmox.url,
        proxmox_user: proxmox.user,
        proxmox_token_name: proxmox.tokenName,
        proxmox_token_value: proxmox.tokenValue,
        proxmox_node: r.vm!.node,
        proxmox_vmid: r.vm!.vmid,
        proxmox_required_tag: proxmox.requiredTag,
        ...(proxmox.fingerprint ? { proxmox_fingerprint: proxmox.fingerprint } : {}),
      };
    }),
  };
}

/** Writes inventory.yml (mode 0600: it holds tokens) and creates every host's workspace. */
export async function writeDemoInventory(file: string, runners: DemoRunner[], proxmox: ProxmoxEndpoint): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  for (const r of runners) await mkdir(r.workspaceDir, { recursive: true });
  const header = '# Generated by `e2epool dev` at every start; edits are lost. Holds runner tokens.\n';
  await writeFile(file, header + toYaml(demoInventoryDocument(runners, proxmox)), { mode: 0o600 });
}
