// The demo hosts' agents as real `e2epool agent` processes: a Proxmox runner's agent dies when its
// simulated VM stops and comes back (a new process) when it starts; the bare-metal reset command
// "reboots" its host; a crashed agent is restarted; stop() leaves no process behind. The agents
// point at a closed port: what is tested here is their life cycle, not the controller.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { planDemoRunners, writeDemoInventory } from '../../src/dev/demo-inventory.js';
import { startGuestAgents, type GuestAgents } from '../../src/dev/guest-agents.js';
import { startProxmoxSimulator, type ProxmoxSimulator } from '../../sim/proxmox/index.js';
import { findFreePort } from '../../temporal/free-port.js';
import { repoRoot } from '../../temporal/tool-paths.js';
import { eventually } from '../helpers/eventually.js';
import { listProcesses } from '../helpers/process-table.js';

describe('dev guest agents', () => {
  let dir: string;
  let sim: ProxmoxSimulator;
  let agents: GuestAgents;

  const agentProcesses = (runnerId: string) => listProcesses().filter((p) => p.command.includes(path.join(dir, 'agents', `${runnerId}.yml`)));
  const pidOf = (runnerId: string) => agents.agents().find((a) => a.runnerId === runnerId)!.pid;
  const power = async (vmid: number, status: 'running' | 'stopped') => {
    const res = await fetch(`${sim.url}/_sim/vms/${vmid}/power`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status }) });
    assert.equal(res.status, 200, await res.text());
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'e2epool-dev-agents-'));
    const runners = planDemoRunners(3, dir);
    sim = await startProxmoxSimulator({ vms: runners.filter((r) => r.vm).map((r) => ({ node: r.vm!.node, vmid: r.vm!.vmid })) });
    await writeDemoInventory(path.join(dir, 'inventory.yml'), runners, { url: sim.url, user: 'e2epool@pve', tokenName: 'dev', tokenValue: 'x', requiredTag: 'e2epool' });
    agents = startGuestAgents({
      runners,
      controllerUrl: `ws://127.0.0.1:${await findFreePort()}/ws/agent`,
      devDir: dir,
      cliEntry: path.join(repoRoot, 'bin', 'e2epool.js'),
      proxmox: sim,
      bootDelayMs: 100,
      logger: createLogger({ level: 'silent' }),
    });
  });

  afterAll(async () => {
    await agents?.stop();
    await sim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every host gets its own agent in its own process group, serving its socket', async () => {
    await eventually(
      () => `one agent process per host: ${JSON.stringify(agents.agents())}`,
      () => ['pve-runner-1', 'pve-runner-2', 'bm-runner-1'].every((id) => agentProcesses(id).length === 1),
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    const groups = new Set(agents.agents().map((a) => agentProcesses(a.runnerId)[0]!.pgid));
    assert.equal(groups.size, 3);
    for (const a of agents.agents()) assert.equal(agentProcesses(a.runnerId)[0]!.pgid, a.pid, 'the agent leads its group');
    // The CLI reaches the agent through the socket (it is not connected to any controller).
    const socket = agents.socketPathOf('bm-runner-1');
    // A failing `e2epool status` throws; eventually retries and reports its last error on timeout.
    await eventually(
      'e2epool status through the agent socket',
      () => execFileSync(process.execPath, [path.join(repoRoot, 'bin', 'e2epool.js'), 'status', '--json', '--socket', socket], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).match(/"runner_id":\s*"bm-runner-1"/) !== null,
      { timeoutMs: 15_000, intervalMs: 250 },
    );
  });

  test('a VM stop kills its agent; a VM start runs a new agent process', async () => {
    const before = pidOf('pve-runner-1');
    assert.ok(before);
    await power(101, 'stopped');
    await eventually('agent of the stopped VM to be gone', () => agentProcesses('pve-runner-1').length === 0, { timeoutMs: 10_000, intervalMs: 50 });
    assert.ok(agentProcesses('pve-runner-2').length === 1, 'the other VM is untouched');
    await power(101, 'running');
    await eventually('agent back after the VM started', () => agentProcesses('pve-runner-1').length === 1, { timeoutMs: 10_000, intervalMs: 50 });
    assert.notEqual(agentProcesses('pve-runner-1')[0]!.pid, before);
  });

  test('the bare-metal reset command reboots the host: a new agent process', async () => {
    const before = pidOf('bm-runner-1');
    const starts = agents.agents().find((a) => a.runnerId === 'bm-runner-1')!.starts;
    const runner = planDemoRunners(3, dir)[2]!;
    execFileSync('sh', ['-c', runner.commands.reset!]);
    await eventually(
      () => `a new bm-runner-1 agent process: ${JSON.stringify(agents.agents())}`,
      () => {
        const [p] = agentProcesses('bm-runner-1');
        return p !== undefined && p.pid !== before;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    assert.equal(agents.agents().find((a) => a.runnerId === 'bm-runner-1')!.starts, starts + 1);
  });

  test('a crashed agent is restarted; stop() leaves no agent process', async () => {
    const [victim] = agentProcesses('pve-runner-2');
    process.kill(victim!.pid, 'SIGKILL');
    await eventually(
      'the crashed pve-runner-2 agent to be restarted',
      () => {
        const [p] = agentProcesses('pve-runner-2');
        return p !== undefined && p.pid !== victim!.pid;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    const groups = agents.agents().map((a) => a.pid!);
    await agents.stop();
    assert.deepEqual(listProcesses().filter((p) => p.command.includes(dir)), []);
    assert.ok(groups.every((g) => listProcesses().every((p) => p.pgid !== g)));
  });
});
