// Proxmox runners for bench and chaos runs: the Proxmox simulator in this process, one VM per
// runner, and each runner's simulated agent switched off and on with its VM (a rollback stops the
// VM, so the agent's session drops and a new one, with a new boot id, comes back after the start).
import { startProxmoxSimulator, type ProxmoxSimulator } from '../../sim/proxmox/index.js';
import type { SimAgent } from './sim-agents.js';
import { newToken } from './stack.js';

const USER = 'e2epool@pve';
const TOKEN_NAME = 'bench';
const TAG = 'e2epool-bench';

export interface ProxmoxBackend {
  sim: ProxmoxSimulator;
  vmidOf(runnerId: string): number;
  inventoryFields(runnerId: string): Record<string, unknown> & { backend: 'proxmox' };
  attachAgent(agent: SimAgent): void;
  /** When each VM last came up (ms), for the checker. */
  powerLog: Array<{ vmid: number; status: string; at: number }>;
  stop(): Promise<void>;
}

export async function startProxmoxBackend(runnerIds: string[], opts: { profile: 'fast' | 'realistic'; bootMs?: number; firstVmid?: number }): Promise<ProxmoxBackend> {
  const secret = newToken();
  const firstVmid = opts.firstVmid ?? 1000;
  const vmids = new Map(runnerIds.map((id, i) => [id, firstVmid + i]));
  const sim = await startProxmoxSimulator({
    https: true,
    profile: opts.profile,
    tokens: [{ tokenId: `${USER}!${TOKEN_NAME}`, secret }],
    vms: runnerIds.map((id) => ({ node: 'pve1', vmid: vmids.get(id)!, name: id, tags: [TAG], disk: { workspace: 'clean' } })),
  });
  const agents = new Map<number, SimAgent>();
  const powerLog: ProxmoxBackend['powerLog'] = [];
  const bootMs = opts.bootMs ?? (opts.profile === 'realistic' ? 2000 : 200);
  sim.onVmPowerChange((vmid, status) => {
    powerLog.push({ vmid, status, at: Date.now() });
    const agent = agents.get(vmid);
    if (!agent) return;
    if (status === 'running') agent.powerOn(bootMs);
    else agent.powerOff();
  });
  return {
    sim,
    powerLog,
    vmidOf: (id) => vmids.get(id)!,
    inventoryFields: (id) => ({
      backend: 'proxmox',
      proxmox_host: sim.httpsUrl!,
      proxmox_user: USER,
      proxmox_token_name: TOKEN_NAME,
      proxmox_token_value: secret,
      proxmox_node: 'pve1',
      proxmox_vmid: vmids.get(id)!,
      proxmox_required_tag: TAG,
      proxmox_fingerprint: sim.fingerprint!,
    }),
    attachAgent: (agent) => {
      agents.set(vmids.get(agent.runnerId)!, agent);
    },
    stop: () => sim.stop(),
  };
}
