import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { InventoryError, expandEnv, loadInventoryFile, parseInventory } from '../../src/inventory/inventory-file.js';

const PROXMOX = `
runners:
  - runner_id: pve-runner-01
    backend: proxmox
    token: pve-runner-01-token-abcdef
    proxmox_host: 10.0.0.5
    proxmox_user: root@pam
    proxmox_token_name: e2epool
    proxmox_token_value: 11111111-2222-3333-4444-555555555555
    proxmox_node: pve1
    proxmox_vmid: 100
    cleanup_cmd: docker system prune -af
    gitlab_runner_id: 42
    tags: [e2e, proxmox]
`;

const BARE_METAL = `
runners:
  - runner_id: bm-runner-01
    backend: bare_metal
    token: bm-runner-01-token-abcdef
    reset_cmd: /opt/reset.sh
    cleanup_cmd: /opt/cleanup.sh
    readiness_cmd: systemctl is-active docker
    gitlab_runner_id: 43
    tags: [e2e, bare-metal, gpu]
`;

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InventoryError, `expected an InventoryError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected the inventory to be rejected');
}

describe('inventory file: e2epool format', () => {
  it('loads a proxmox runner with every field (scenario 85)', () => {
    const inv = parseInventory(PROXMOX);
    assert.equal(inv.runners.length, 1);
    const r = inv.runners[0]!;
    assert.equal(r.runnerId, 'pve-runner-01');
    assert.equal(r.backend, 'proxmox');
    assert.equal(r.token, 'pve-runner-01-token-abcdef');
    assert.equal(r.proxmoxHost, '10.0.0.5');
    assert.equal(r.proxmoxUser, 'root@pam');
    assert.equal(r.proxmoxTokenName, 'e2epool');
    assert.equal(r.proxmoxTokenValue, '11111111-2222-3333-4444-555555555555');
    assert.equal(r.proxmoxNode, 'pve1');
    assert.equal(r.proxmoxVmid, 100);
    assert.equal(r.cleanupCmd, 'docker system prune -af');
    assert.equal(r.resetCmd, null, 'proxmox runners need no reset_cmd (scenario 91)');
    assert.equal(r.gitlabRunnerId, 42);
    assert.deepEqual(r.tags, ['e2e', 'proxmox']);
    assert.equal(r.options.resetMode, 'reboot');
    assert.equal(r.options.successAction, 'cleanup', 'cleanup_cmd set: success cleans up');
  });

  it('loads a bare-metal runner (scenario 86) and several backends together (scenario 87)', () => {
    const inv = parseInventory(BARE_METAL);
    const r = inv.runners[0]!;
    assert.equal(r.resetCmd, '/opt/reset.sh');
    assert.equal(r.cleanupCmd, '/opt/cleanup.sh');
    assert.equal(r.readinessCmd, 'systemctl is-active docker');
    assert.equal(r.gitlabRunnerId, 43);
    assert.deepEqual(r.tags, ['e2e', 'bare-metal', 'gpu']);
    assert.equal(r.options.resetMode, 'auto');

    const both = parseInventory(PROXMOX + BARE_METAL.replace('runners:\n', ''));
    assert.deepEqual(
      both.runners.map((x) => [x.runnerId, x.backend]),
      [
        ['pve-runner-01', 'proxmox'],
        ['bm-runner-01', 'bare_metal'],
      ],
    );
  });

  it('a missing file is an error naming the path (scenario 88), or an empty inventory when allowed', async () => {
    const missing = path.join(tmpdir(), 'e2epool-no-such-dir', 'inventory.yml');
    await assert.rejects(loadInventoryFile(missing), (err: unknown) => {
      assert.ok(err instanceof InventoryError);
      assert.equal(err.code, 'inventory_not_found');
      assert.match(err.message, /Inventory file not found/);
      assert.ok(err.message.includes(missing));
      return true;
    });
    const empty = await loadInventoryFile(missing, { missingOk: true });
    assert.deepEqual(empty.runners, []);
    assert.ok(empty.warnings.some((w) => w.includes('Inventory file not found')));
  });

  it("rejects an unknown backend with e2epool's text (scenario 89)", () => {
    const problems = problemsOf(() => parseInventory('runners:\n  - {runner_id: r1, backend: docker, token: t-1234567890123456789012}'));
    assert.deepEqual(problems, ["Invalid backend 'docker' for runner 'r1'. Must be 'proxmox' or 'bare_metal'."]);
  });

  it('rejects bare_metal without reset_cmd, and with an empty one (scenario 90)', () => {
    for (const extra of ['', ', reset_cmd: ""']) {
      const problems = problemsOf(() => parseInventory(`runners:\n  - {runner_id: bm1, backend: bare_metal, token: t-1234567890123456789012${extra}}`));
      assert.deepEqual(problems, ["Runner 'bm1' with bare_metal backend requires 'reset_cmd'."]);
    }
  });

  it('lists the missing proxmox fields in order (scenario 95); vmid 0 counts as missing', () => {
    let problems = problemsOf(() =>
      parseInventory('runners:\n  - {runner_id: p1, backend: proxmox, token: t-1234567890123456789012, proxmox_host: h, proxmox_user: u}'),
    );
    assert.deepEqual(problems, [
      "Runner 'p1' with proxmox backend is missing required fields: proxmox_token_name, proxmox_token_value, proxmox_node, proxmox_vmid",
    ]);
    problems = problemsOf(() => parseInventory(PROXMOX.replace('proxmox_vmid: 100', 'proxmox_vmid: 0')));
    assert.deepEqual(problems, ["Runner 'pve-runner-01' with proxmox backend is missing required fields: proxmox_vmid"]);
  });

  it('treats `runners: []`, a missing runners key and an empty file as an empty inventory (scenario 92)', () => {
    for (const text of ['runners: []\n', 'other: 1\n', '', 'runners:\n']) {
      assert.deepEqual(parseInventory(text).runners, []);
    }
    assert.equal(parseInventory('').contentHash, parseInventory('runners: []').contentHash);
  });

  it('accepts the path as a string or as a file URL (scenario 93)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'e2epool-inv-'));
    try {
      const file = path.join(dir, 'inventory.yml');
      await writeFile(file, BARE_METAL);
      const a = await loadInventoryFile(file);
      const b = await loadInventoryFile(pathToFileURL(file));
      assert.equal(a.runners[0]!.runnerId, 'bm-runner-01');
      assert.equal(a.contentHash, b.contentHash);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('defaults omitted optionals: tags [] and null fields (scenario 94)', () => {
    const r = parseInventory('runners:\n  - {runner_id: bm1, backend: bare_metal, token: t-1234567890123456789012, reset_cmd: reset}').runners[0]!;
    assert.deepEqual(r.tags, []);
    for (const v of [r.proxmoxHost, r.proxmoxUser, r.proxmoxTokenName, r.proxmoxTokenValue, r.proxmoxNode, r.proxmoxVmid, r.cleanupCmd, r.readinessCmd, r.gitlabRunnerId]) {
      assert.equal(v, null);
    }
    assert.equal(r.options.successAction, 'reset', 'no cleanup_cmd: success resets, as e2epool always did');
  });

  it('warns about unknown keys and ignores them (scenario 96); never rejects for them', () => {
    const inv = parseInventory(`
defaults: {x: 1}
runners:
  - runner_id: bm1
    backend: bare_metal
    token: t-1234567890123456789012
    reset_cmd: reset
    readiness_cmd: ready
    gitlab_runner_id: 7
    ssh_host: 10.0.0.9
    ssh_user: ci
    ssh_key_path: /root/.ssh/id
    some_future_field: [1, 2]
`);
    assert.equal(inv.runners.length, 1);
    assert.deepEqual(inv.warnings, [
      "Unknown top-level key 'defaults' ignored.",
      "Runner 'bm1': unknown key 'ssh_host' ignored.",
      "Runner 'bm1': unknown key 'ssh_user' ignored.",
      "Runner 'bm1': unknown key 'ssh_key_path' ignored.",
      "Runner 'bm1': unknown key 'some_future_field' ignored.",
    ]);
    assert.ok(!('ssh_host' in inv.runners[0]!));
  });

  it('keeps the per-runner CI settings e2epool dropped, and warns about a ci_adapter other than gitlab', () => {
    const inv = parseInventory(`
runners:
  - runner_id: bm1
    backend: bare_metal
    token: t-1234567890123456789012
    reset_cmd: reset
    readiness_cmd: ready
    gitlab_runner_id: 7
    ci_adapter: github
    gitlab_url: https://gitlab.example.com/
    gitlab_token: glpat-secret
`);
    const r = inv.runners[0]!;
    assert.equal(r.options.gitlabUrl, 'https://gitlab.example.com');
    assert.equal(r.options.gitlabToken, 'glpat-secret');
    assert.deepEqual(inv.warnings, ["Runner 'bm1': ci_adapter 'github' is not supported (only 'gitlab'); GitLab is used."]);
  });

  it('flags runners without gitlab_runner_id or readiness_cmd', () => {
    const inv = parseInventory('runners:\n  - {runner_id: bm1, backend: bare_metal, token: a-token-of-24-characters, reset_cmd: reset}');
    assert.equal(inv.runners.length, 1);
    assert.ok(inv.warnings.some((w) => w.startsWith("Runner 'bm1' has no gitlab_runner_id")));
    assert.ok(inv.warnings.some((w) => w.startsWith("Runner 'bm1' has no readiness_cmd")));
  });

  it('refuses a token shorter than 24 characters, without printing it', () => {
    const problems = problemsOf(() => parseInventory('runners:\n  - {runner_id: bm1, backend: bare_metal, token: a-token-of-23-character, reset_cmd: reset}'));
    assert.deepEqual(problems, ["Runner 'bm1' has a token shorter than 24 characters; generate one with: openssl rand -hex 24"]);
  });

  it('reports every problem at once, naming entries without a runner_id', () => {
    const problems = problemsOf(() =>
      parseInventory(`
runners:
  - backend: bare_metal
    token: t-1234567890123456789012
    reset_cmd: r
  - just a string
  - {runner_id: bad id!, backend: bare_metal, token: t2-123456789012345678901, reset_cmd: r}
  - {runner_id: r4, backend: bare_metal, reset_cmd: r, proxmox_vmid: abc, tags: nope, reset_mode: fast}
`),
    );
    assert.deepEqual(problems, [
      'Runner entry #1: runner_id: Field required',
      'Runner entry #2 must be a mapping.',
      "Runner 'bad id!': runner_id: String should match pattern '^[\\w.\\-]+$'",
      "Runner 'r4': proxmox_vmid: Input should be a valid integer, unable to parse string as an integer",
      "Runner 'r4': tags: Input should be a valid list",
      "Runner 'r4': reset_mode: Input should be 'reboot', 'in_place' or 'auto'",
      "Runner 'r4': token: Field required",
    ]);
  });

  it('rejects duplicate runner ids and shared tokens without printing the token', () => {
    const problems = problemsOf(() =>
      parseInventory(`
runners:
  - {runner_id: a, backend: bare_metal, token: same-token-1234567890abcd, reset_cmd: r}
  - {runner_id: a, backend: bare_metal, token: other-token-1234567890abc, reset_cmd: r}
  - {runner_id: b, backend: bare_metal, token: same-token-1234567890abcd, reset_cmd: r}
`),
    );
    assert.deepEqual(problems, [
      "Runner 'a' is defined twice (entries #1 and #2).",
      "Runners 'a' and 'b' have the same token; each runner needs its own.",
    ]);
  });

  it('rejects a file that is not a mapping, a runners value that is not a list, and YAML errors without echoing lines', () => {
    assert.deepEqual(problemsOf(() => parseInventory('- a\n- b\n')), ["The file must be a mapping with a 'runners' list."]);
    assert.deepEqual(problemsOf(() => parseInventory('runners: {a: 1}\n')), ["'runners' must be a list."]);
    const problems = problemsOf(() => parseInventory('runners:\n  - runner_id: x\n    token: "supersecret-value\n'));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^YAML syntax error: /);
    assert.ok(!problems[0]!.includes('supersecret'), 'the offending line (maybe a token) is not echoed');
  });

  it('the content hash ignores formatting, comments and order but changes with any value', () => {
    const a = parseInventory(PROXMOX + BARE_METAL.replace('runners:\n', '')).contentHash;
    const reordered = parseInventory(BARE_METAL + PROXMOX.replace('runners:\n', '')).contentHash;
    const commented = parseInventory('# fleet\n' + PROXMOX + '# bare metal\n' + BARE_METAL.replace('runners:\n', '')).contentHash;
    const changed = parseInventory(PROXMOX.replace('pve1', 'pve2') + BARE_METAL.replace('runners:\n', '')).contentHash;
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.equal(a, reordered);
    assert.equal(a, commented);
    assert.notEqual(a, changed);
  });
});

describe('inventory file: ${ENV} references', () => {
  const env = { PVE_SECRET: 'pve-secret-value', VMID: '205', RUNNER_TOKEN: 'from-env-token-1234567890', VERIFY: 'false' };
  const withEnv = `
runners:
  - runner_id: p1
    backend: proxmox
    token: \${RUNNER_TOKEN}
    proxmox_host: pve.example.com
    proxmox_user: e2epool@pve
    proxmox_token_name: ctl
    proxmox_token_value: \${PVE_SECRET}
    proxmox_node: pve1
    proxmox_vmid: \${VMID}
    proxmox_verify_tls: \${VERIFY}
    readiness_cmd: test -d \${HOME}
    reset_cmd: echo $\${NOT_EXPANDED}
    gitlab_runner_id: 1
    tags: ["\${VMID}-tag"]
`;

  it('expands references in values and converts numbers and booleans', () => {
    const r = parseInventory(withEnv, { env }).runners[0]!;
    assert.equal(r.token, 'from-env-token-1234567890');
    assert.equal(r.proxmoxTokenValue, 'pve-secret-value');
    assert.equal(r.proxmoxVmid, 205);
    assert.equal(r.options.proxmoxVerifyTls, false);
    assert.deepEqual(r.tags, ['205-tag']);
  });

  it("leaves shell command lines to the runner's shell", () => {
    const r = parseInventory(withEnv, { env }).runners[0]!;
    assert.equal(r.readinessCmd, 'test -d ${HOME}');
    assert.equal(r.resetCmd, 'echo $${NOT_EXPANDED}');
  });

  it('a missing variable is an error naming the variable and the field, never a value', () => {
    const problems = problemsOf(() => parseInventory(withEnv, { env: { RUNNER_TOKEN: 'x-123456789012345', VMID: '1' } }));
    assert.deepEqual(problems, [
      "Runner 'p1': environment variable 'PVE_SECRET' (referenced by 'proxmox_token_value') is not set.",
      "Runner 'p1': environment variable 'VERIFY' (referenced by 'proxmox_verify_tls') is not set.",
    ]);
  });

  it('expandEnv: several references, $${ escapes, and names that are not references', () => {
    assert.deepEqual(expandEnv('${A}-${B}', { A: '1', B: '2' }), { value: '1-2', missing: [] });
    assert.deepEqual(expandEnv('$${A}', { A: '1' }), { value: '${A}', missing: [] });
    assert.deepEqual(expandEnv('${1A} ${A:-x} $A', { A: '1' }), { value: '${1A} ${A:-x} $A', missing: [] });
    assert.deepEqual(expandEnv('${EMPTY}', { EMPTY: '' }), { value: '', missing: [] });
    assert.deepEqual(expandEnv('${NOPE}', {}), { value: '${NOPE}', missing: ['NOPE'] });
  });

  it('existing files that use no references load unchanged with an empty environment', () => {
    const inv = parseInventory(PROXMOX, { env: {} });
    assert.equal(inv.runners[0]!.proxmoxTokenValue, '11111111-2222-3333-4444-555555555555');
  });
});

describe('inventory file on disk', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'e2epool-inv-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads through loadInventoryFile and keeps the path in errors', async () => {
    const file = path.join(dir, 'bad.yml');
    await writeFile(file, 'runners:\n  - {runner_id: r1, backend: docker, token: t-1234567890123456789012}\n');
    await assert.rejects(loadInventoryFile(file), (err: unknown) => {
      assert.ok(err instanceof InventoryError);
      assert.ok(err.message.startsWith(`Invalid inventory ${file}:`));
      assert.ok(err.message.includes("Invalid backend 'docker' for runner 'r1'. Must be 'proxmox' or 'bare_metal'."));
      return true;
    });
  });
});
