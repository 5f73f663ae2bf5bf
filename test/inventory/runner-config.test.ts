import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { toValidationDetail } from '../../src/inventory/issues.js';
import {
  apiRuleMessage,
  checkRunnerRules,
  inventoryRuleMessage,
  parseRunnerOptions,
  runnerInputSchema,
  runnerWarnings,
  toRunnerConfig,
  type RunnerInput,
} from '../../src/inventory/runner-config.js';

const proxmox = {
  runner_id: 'p1',
  backend: 'proxmox',
  proxmox_host: 'h',
  proxmox_user: 'u',
  proxmox_token_name: 'n',
  proxmox_token_value: 'v',
  proxmox_node: 'node',
  proxmox_vmid: 100,
};

function input(fields: Record<string, unknown>): RunnerInput {
  return runnerInputSchema.parse(fields);
}

describe('runner rules (scenarios 72-74)', () => {
  it("rejects backends other than proxmox and bare_metal, including ''", () => {
    for (const backend of ['docker', '']) {
      const v = checkRunnerRules({ ...input({ runner_id: 'r', backend: 'x' }), backend });
      assert.deepEqual(v, { rule: 'invalid_backend', backend });
    }
    assert.equal(apiRuleMessage({ rule: 'invalid_backend', backend: 'docker' }), "Invalid backend 'docker'. Must be 'proxmox' or 'bare_metal'.");
    assert.equal(
      inventoryRuleMessage('r1', { rule: 'invalid_backend', backend: 'docker' }),
      "Invalid backend 'docker' for runner 'r1'. Must be 'proxmox' or 'bare_metal'.",
    );
  });

  it('bare_metal needs a non-empty reset_cmd', () => {
    assert.deepEqual(checkRunnerRules(input({ runner_id: 'b', backend: 'bare_metal' })), { rule: 'bare_metal_reset_cmd' });
    assert.deepEqual(checkRunnerRules(input({ runner_id: 'b', backend: 'bare_metal', reset_cmd: '' })), { rule: 'bare_metal_reset_cmd' });
    assert.equal(checkRunnerRules(input({ runner_id: 'b', backend: 'bare_metal', reset_cmd: 'r' })), null);
    assert.equal(apiRuleMessage({ rule: 'bare_metal_reset_cmd' }), "bare_metal backend requires 'reset_cmd'.");
  });

  it('proxmox needs all six fields, named in order; vmid 0 and empty strings are missing', () => {
    const none = checkRunnerRules(input({ runner_id: 'p', backend: 'proxmox' }));
    assert.ok(none && none.rule === 'proxmox_missing_fields');
    assert.equal(
      apiRuleMessage(none),
      'proxmox backend is missing required fields: proxmox_host, proxmox_user, proxmox_token_name, proxmox_token_value, proxmox_node, proxmox_vmid',
    );
    const noVmid = checkRunnerRules(input({ ...proxmox, proxmox_vmid: null }));
    assert.deepEqual(noVmid, { rule: 'proxmox_missing_fields', fields: ['proxmox_vmid'] });
    assert.deepEqual(checkRunnerRules(input({ ...proxmox, proxmox_vmid: 0, proxmox_user: '' })), {
      rule: 'proxmox_missing_fields',
      fields: ['proxmox_user', 'proxmox_vmid'],
    });
    assert.equal(checkRunnerRules(input(proxmox)), null);
  });

  it("success_action 'cleanup' needs a cleanup_cmd", () => {
    const v = checkRunnerRules(input({ runner_id: 'b', backend: 'bare_metal', reset_cmd: 'r', success_action: 'cleanup' }));
    assert.deepEqual(v, { rule: 'cleanup_without_cleanup_cmd' });
    assert.equal(apiRuleMessage(v!), "success_action 'cleanup' requires 'cleanup_cmd'.");
  });
});

describe('runner defaults', () => {
  it('reset_mode: proxmox always reboots (with a warning when told otherwise); bare metal defaults to auto', () => {
    const pve = input({ ...proxmox, reset_mode: 'in_place' });
    assert.equal(toRunnerConfig(pve).options.resetMode, 'reboot');
    assert.ok(runnerWarnings(pve).some((w) => w.includes("reset_mode 'in_place' does not apply to proxmox runners")));
    assert.equal(toRunnerConfig(input({ runner_id: 'b', backend: 'bare_metal', reset_cmd: 'r' })).options.resetMode, 'auto');
    assert.equal(toRunnerConfig(input({ runner_id: 'b', backend: 'bare_metal', reset_cmd: 'r', reset_mode: 'in_place' })).options.resetMode, 'in_place');
  });

  it('success_action: cleanup when cleanup_cmd is set, else reset; an explicit value wins', () => {
    const base = { runner_id: 'b', backend: 'bare_metal', reset_cmd: 'r' };
    assert.equal(toRunnerConfig(input(base)).options.successAction, 'reset');
    assert.equal(toRunnerConfig(input({ ...base, cleanup_cmd: 'c' })).options.successAction, 'cleanup');
    assert.equal(toRunnerConfig(input({ ...base, cleanup_cmd: 'c', success_action: 'reset' })).options.successAction, 'reset');
  });

  it('Proxmox TLS and snapshot options default to verify on, no vmstate', () => {
    const o = toRunnerConfig(input(proxmox)).options;
    assert.equal(o.proxmoxVerifyTls, true);
    assert.equal(o.snapshotVmstate, false);
    assert.equal(o.proxmoxFingerprint, null);
    const custom = toRunnerConfig(
      input({
        ...proxmox,
        proxmox_verify_tls: 'no',
        snapshot_vmstate: true,
        proxmox_ca_file: '/etc/pve-ca.pem',
        proxmox_fingerprint: 'AB:'.repeat(31) + 'AB',
        proxmox_required_tag: 'e2epool',
        proxmox_pool: 'ci',
      }),
    ).options;
    assert.deepEqual(
      [custom.proxmoxVerifyTls, custom.snapshotVmstate, custom.proxmoxCaFile, custom.proxmoxRequiredTag, custom.proxmoxPool],
      [false, true, '/etc/pve-ca.pem', 'e2epool', 'ci'],
    );
  });

  it('options read back from a row fall back to the defaults when absent or invalid', () => {
    assert.deepEqual(parseRunnerOptions({}, 'bare_metal', null), {
      resetMode: 'auto',
      successAction: 'reset',
      gitlabUrl: null,
      gitlabToken: null,
      proxmoxVerifyTls: true,
      proxmoxCaFile: null,
      proxmoxFingerprint: null,
      proxmoxRequiredTag: null,
      proxmoxPool: null,
      snapshotVmstate: false,
      allowInsecureTransport: false,
    });
    assert.equal(parseRunnerOptions({ resetMode: 'in_place' }, 'proxmox', null).resetMode, 'reboot');
    assert.equal(parseRunnerOptions({ successAction: 'bogus' }, 'bare_metal', 'c').successAction, 'cleanup');
  });
});

describe('request schema and FastAPI-style details', () => {
  it('runner_id: required, 1-255, pattern ^[\\w.\\-]+$ with Unicode letters (scenario 64)', () => {
    for (const ok of ['runner-01', 'a.b_c', 'länder-1', 'x'.repeat(255)]) assert.ok(runnerInputSchema.safeParse({ runner_id: ok, backend: 'b' }).success, ok);
    const cases: Array<[unknown, string, string]> = [
      [undefined, 'missing', 'Field required'],
      ['', 'string_too_short', 'String should have at least 1 character'],
      ['x'.repeat(256), 'string_too_long', 'String should have at most 255 characters'],
      ['bad runner!', 'string_pattern_mismatch', "String should match pattern '^[\\w.\\-]+$'"],
    ];
    for (const [runnerId, type, msg] of cases) {
      const body = { runner_id: runnerId, backend: 'bare_metal' };
      const parsed = runnerInputSchema.safeParse(body);
      assert.ok(!parsed.success);
      const detail = toValidationDetail(parsed.error, body, 'body');
      assert.deepEqual(
        detail.map((d) => [d.type, d.loc, d.msg]),
        [[type, ['body', 'runner_id'], msg]],
      );
      assert.equal(detail[0]!.input, runnerId === undefined ? null : runnerId);
    }
  });

  it('type errors carry pydantic types and messages', () => {
    const body = { runner_id: 'r', backend: 'bare_metal', proxmox_vmid: 1.5, gitlab_runner_id: 'x', tags: 'e2e', reset_cmd: true, snapshot_vmstate: 'maybe' };
    const parsed = runnerInputSchema.safeParse(body);
    assert.ok(!parsed.success);
    // In schema order, as pydantic reports them.
    assert.deepEqual(
      toValidationDetail(parsed.error, body, 'body').map((d) => [d.type, d.loc.join('.'), d.msg]),
      [
        ['int_from_float', 'body.proxmox_vmid', 'Input should be a valid integer, got a number with a fractional part'],
        ['string_type', 'body.reset_cmd', 'Input should be a valid string'],
        ['int_parsing', 'body.gitlab_runner_id', 'Input should be a valid integer, unable to parse string as an integer'],
        ['list_type', 'body.tags', 'Input should be a valid list'],
        ['bool_type', 'body.snapshot_vmstate', 'Input should be a valid boolean'],
      ],
    );
  });

  it('a body that is not an object is model_attributes_type at loc [body]', () => {
    const parsed = runnerInputSchema.safeParse([1]);
    assert.ok(!parsed.success);
    assert.deepEqual(toValidationDetail(parsed.error, [1], 'body')[0], {
      type: 'model_attributes_type',
      loc: ['body'],
      msg: 'Input should be a valid dictionary or object to extract fields from',
      input: [1],
    });
  });

  it('digit strings are accepted for integers, like pydantic lax mode', () => {
    const parsed = runnerInputSchema.parse({ ...proxmox, proxmox_vmid: '101', gitlab_runner_id: '42' });
    assert.equal(parsed.proxmox_vmid, 101);
    assert.equal(parsed.gitlab_runner_id, 42);
  });

  it('rejects a malformed fingerprint and a gitlab_url that is not http(s)', () => {
    const parsed = runnerInputSchema.safeParse({ ...proxmox, proxmox_fingerprint: 'abc', gitlab_url: 'ftp://x' });
    assert.ok(!parsed.success);
    const detail = toValidationDetail(parsed.error, {}, 'body');
    assert.deepEqual(
      detail.map((d) => [d.loc[1], d.type]),
      [
        ['gitlab_url', 'value_error'],
        ['proxmox_fingerprint', 'value_error'],
      ],
    );
  });
});
