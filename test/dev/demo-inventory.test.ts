// The generated demo inventory is one the real loader accepts (rules, pinned TLS, tokens), and the
// dev log lines are compact and keep the logger's redaction.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, test } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { loadInventoryFile } from '../../src/inventory/inventory-file.js';
import { planDemoRunners, shellQuote, writeDemoInventory } from '../../src/dev/demo-inventory.js';
import { formatLogLine, lineLogDestination } from '../../src/dev/log-lines.js';

const fingerprint = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').slice(-2).toUpperCase()).join(':');
const endpoint = { url: 'https://127.0.0.1:18006', fingerprint, user: 'e2epool@pve', tokenName: 'dev', tokenValue: 'pve-secret', requiredTag: 'e2epool' };

describe('dev demo inventory', () => {
  const dir = mkdtempSync(path.join(tmpdir(), "e2epool-dev-inv-it's-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('three runners are two Proxmox VMs and one bare-metal host with distinct ids, VMs and tokens', () => {
    const runners = planDemoRunners(3, dir);
    assert.deepEqual(runners.map((r) => [r.runnerId, r.backend, r.vm?.vmid, r.gitlabRunnerId]), [
      ['pve-runner-1', 'proxmox', 101, 1],
      ['pve-runner-2', 'proxmox', 102, 2],
      ['bm-runner-1', 'bare_metal', undefined, 3],
    ]);
    assert.equal(new Set(runners.map((r) => r.token)).size, 3);
    assert.ok(runners[2]!.commands.reset?.includes(shellQuote(runners[2]!.rebootMarker!)), 'the bare-metal reset asks for a reboot');
    assert.equal(runners[0]!.commands.reset, undefined, 'a Proxmox VM is reset through the API, not the agent');
    assert.equal(planDemoRunners(7, dir).filter((r) => r.backend === 'bare_metal').length, 2);
    assert.throws(() => planDemoRunners(0, dir), /from 1 to 50/);
  });

  test('the written inventory loads without problems: Proxmox fields with the pinned fingerprint, reboot reset for bare metal', async () => {
    const runners = planDemoRunners(3, dir);
    const file = path.join(dir, 'inventory.yml');
    await writeDemoInventory(file, runners, endpoint);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the file holds tokens');
    for (const r of runners) assert.ok(statSync(r.workspaceDir).isDirectory());

    const inventory = await loadInventoryFile(file, { env: {} });
    assert.deepEqual(inventory.warnings, []);
    const [vm, , metal] = inventory.runners;
    assert.equal(vm!.runnerId, 'pve-runner-1');
    assert.equal(vm!.token, runners[0]!.token);
    assert.equal(vm!.proxmoxHost, endpoint.url);
    assert.equal(vm!.proxmoxVmid, 101);
    assert.equal(vm!.gitlabRunnerId, 1);
    assert.equal(vm!.options.proxmoxFingerprint, fingerprint);
    assert.equal(vm!.options.proxmoxRequiredTag, 'e2epool');
    assert.equal(vm!.options.successAction, 'cleanup');
    assert.equal(metal!.backend, 'bare_metal');
    assert.equal(metal!.options.resetMode, 'reboot');
    // Commands with a quote in the path survive YAML and are not expanded by the loader.
    assert.equal(metal!.resetCmd, runners[2]!.commands.reset);
    assert.ok(metal!.resetCmd!.includes("it'\\''s"));
  });

  test('log lines: time, level, component, message and fields; secrets stay redacted', () => {
    const line = formatLogLine(JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 0, 1), pid: 1, name: 'x', component: 'agents', msg: 'agent exited', runnerId: 'pve-runner-1', code: 1, note: 'two words' }));
    assert.match(line, /^\d\d:\d\d:\d\d WARN {2}\[agents\] agent exited runnerId=pve-runner-1 code=1 note="two words"$/);
    assert.equal(formatLogLine('not json'), 'not json');

    const lines: string[] = [];
    const out = { write: (chunk: string) => (lines.push(chunk), true) } as unknown as NodeJS.WritableStream;
    const logger = createLogger({ level: 'info', destination: lineLogDestination(out) });
    logger.info({ token: 'very-secret-token', runnerId: 'r1' }, 'hello');
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0]!, /very-secret-token/);
    assert.match(lines[0]!, /INFO {2}hello token=\*\*\* runnerId=r1\n$/);
  });
});
