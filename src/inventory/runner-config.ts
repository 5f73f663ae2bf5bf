// One runner's configuration: the zod schema shared by inventory.yml and the admin API, e2epool's
// business rules with their exact error texts, and the defaults of the options e2epool did not have.
import { z } from 'zod';
import { isPlaintextToNetwork } from '../integrations/transport-policy.js';

export const BACKENDS = ['proxmox', 'bare_metal'] as const;
export type Backend = (typeof BACKENDS)[number];
export const RESET_MODES = ['reboot', 'in_place', 'auto'] as const;
export type ResetMode = (typeof RESET_MODES)[number];
export const SUCCESS_ACTIONS = ['cleanup', 'reset'] as const;
export type SuccessAction = (typeof SUCCESS_ACTIONS)[number];

/** Required for the proxmox backend, in the order e2epool names them in its error text. */
export const PROXMOX_REQUIRED_FIELDS = [
  'proxmox_host',
  'proxmox_user',
  'proxmox_token_name',
  'proxmox_token_value',
  'proxmox_node',
  'proxmox_vmid',
] as const;

/** e2epool's runner id pattern `^[\w.\-]+$`, with Python's Unicode-aware `\w`. */
export const RUNNER_ID_PATTERN = /^[\p{L}\p{N}_.-]+$/u;
export const RUNNER_ID_PATTERN_TEXT = '^[\\w.\\-]+$';

const INT32_MAX = 2_147_483_647;

// YAML gives numbers where a string is meant (`proxmox_node: 1`) and `${ENV}` expansion gives
// strings where a number is meant (`proxmox_vmid: ${VMID}`): both are accepted.
const textOfAtMost = (max: number) => z.preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string().max(max).nullish());
const optionalText = textOfAtMost(255);
/** Shell command lines and file paths. */
const longText = textOfAtMost(4096);
const optionalInt = z.preprocess(
  (v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
  z.number().int().min(0).max(INT32_MAX).nullish(),
);
const optionalBool = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off'].includes(s)) return false;
  return v;
}, z.boolean().nullish());
const tagList = z.preprocess(
  (v) => (Array.isArray(v) ? v.map((t) => (typeof t === 'number' ? String(t) : t)) : v),
  z.array(z.string().max(100)).max(50).nullish(),
);
const fingerprint = z
  .string()
  .regex(/^(?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$/, {
    message: 'Value error, proxmox_fingerprint must be a SHA-256 fingerprint: 64 hex digits, optionally colon-separated',
  })
  .nullish();
const httpUrl = z
  .string()
  .max(2048)
  .regex(/^https?:\/\/[^\s/]+/, { message: 'Value error, gitlab_url must be an http:// or https:// URL' })
  .nullish();

/**
 * Every key a runner may have; everything else is warned about by the loader and ignored. The
 * descriptions are the inventory reference (docs/inventory.md is generated from them).
 */
export const runnerFieldsShape = {
  runner_id: z.preprocess(
    (v) => (typeof v === 'number' ? String(v) : v),
    // `abort`: report only the first broken constraint, as pydantic does.
    z.string().min(1, { abort: true }).max(255, { abort: true }).regex(RUNNER_ID_PATTERN, { message: `String should match pattern '${RUNNER_ID_PATTERN_TEXT}'` }),
  ).describe('Unique id of the runner: letters, digits, `_`, `.` and `-`. The agent names it in its `agent.yml`; the admin API uses it in its paths.'),
  backend: z.string().min(1).max(50).describe('`proxmox` (a VM rolled back to its snapshot) or `bare_metal` (a host reset by its reset command).'),
  proxmox_host: optionalText.describe('Proxmox VE API address: `host`, `host:port` (port 8006 when omitted) or an `https://` URL.'),
  proxmox_user: optionalText.describe('User that owns the API token, `user@realm` (for example `e2epool@pve`).'),
  proxmox_token_name: optionalText.describe('Id of the API token (the part after `!` in `user@realm!id`).'),
  proxmox_token_value: longText.describe('Secret of the API token, shown once when Proxmox creates it; write `${VAR}` rather than the secret. Never logged nor returned by the API.'),
  proxmox_node: optionalText.describe('Node the VM runs on.'),
  proxmox_vmid: optionalInt.describe('Id of the VM. Recorded at each create and checked again before the rollback.'),
  reset_cmd: longText.describe('Command that resets the host after a failed, canceled or timed-out job. Legacy agents are sent it; current agents run the `reset` command their own `agent.yml` declares. Not expanded (`${...}` reaches the host\'s shell).'),
  cleanup_cmd: longText.describe('Command run on the runner after a successful job when `success_action` is `cleanup`. Not expanded.'),
  readiness_cmd: longText.describe('Command that must succeed on the agent\'s fresh session before the runner is unpaused after a reset. Without it only the agent reconnecting proves readiness (a warning at load). Not expanded.'),
  gitlab_runner_id: optionalInt.describe('The runner\'s id in GitLab: it is paused before a reset and unpaused afterwards, and job webhooks are matched to it. Without it GitLab cannot pause the runner (a warning at load).'),
  tags: tagList.describe('Free labels (up to 50, each up to 100 characters), returned by the admin API.'),
  // Ours: per-runner CI settings (e2epool's docs had them, its loader dropped them).
  ci_adapter: optionalText.describe('CI system of the runner. Only `gitlab` is supported; another value is warned about and GitLab is used.'),
  gitlab_url: httpUrl.describe('GitLab base URL of this runner (no `/api/v4`), instead of `E2EPOOL_GITLAB_URL`. A GitLab on another origin than the global one needs its own `gitlab_token`.'),
  gitlab_token: longText.describe('GitLab token for this runner, instead of `E2EPOOL_GITLAB_TOKEN` (scopes `read_api` and `manage_runner`). Secret: write `${VAR}`.'),
  reset_mode: z.enum(RESET_MODES).nullish().describe('How a reset ends: `reboot` (the host reboots; a new agent session proves it), `in_place` (no reboot; readiness is checked on the same session) or `auto` (after `E2EPOOL_RESET_SETTLE_SECONDS`, a dropped session counts as a reboot). Proxmox runners always reboot.'),
  success_action: z.enum(SUCCESS_ACTIONS).nullish().describe('What follows a successful job: `cleanup` (run `cleanup_cmd`, keep the machine as it is) or `reset` (the same reset as after a failure).'),
  proxmox_verify_tls: optionalBool.describe('Verify the Proxmox certificate against the system CAs. `false`, with neither `proxmox_fingerprint` nor `proxmox_ca_file`, turns verification off (a warning is logged): pin the certificate instead.'),
  proxmox_ca_file: longText.describe('PEM file of the CA that signed the Proxmox certificate (on a node: `/etc/pve/pve-root-ca.pem`), on the controller\'s file system.'),
  proxmox_fingerprint: fingerprint.describe('SHA-256 fingerprint of the Proxmox certificate: 64 hex digits, with or without colons. Pins that certificate; wins over `proxmox_ca_file`.'),
  proxmox_required_tag: optionalText.describe('A Proxmox tag the VM must carry; checked before every rollback (missing: needs attention, `config_changed`).'),
  proxmox_pool: optionalText.describe('A Proxmox pool the VM must belong to, on `proxmox_node`; checked before every rollback (otherwise needs attention, `config_changed`).'),
  snapshot_vmstate: optionalBool.describe('Include the VM\'s RAM in the snapshot, so a rolled-back VM resumes from the saved memory instead of booting. Slower and larger (in proportion to the RAM).'),
  // Ours: plain http to a non-loopback GitLab or Proxmox is refused unless this is true.
  allow_insecure_transport: optionalBool.describe('Allow plain `http://` to a GitLab or Proxmox that is not on this machine (credentials then travel in clear text).'),
};

/** Body of `POST /api/runners` (the token is generated, never supplied). */
export const runnerInputSchema = z.object(runnerFieldsShape);
export type RunnerInput = z.infer<typeof runnerInputSchema>;

/** One entry of inventory.yml: the same fields plus the runner's bearer token. */
export const inventoryRunnerSchema = z.object({
  ...runnerFieldsShape,
  token: z.string().min(1, { message: 'String should have at least 1 character' }).describe(
    'Bearer token of the runner\'s CI jobs (`/checkpoint/*`), and of its agent while it has no `agent_token`. 24 characters or more, unique per runner; stored only as an HMAC. Write `${VAR}`.',
  ),
  agent_token: z.string().min(1).nullish().describe(
    'The agent\'s own credential (24 characters or more, not equal to `token`). Once set, the runner token can no longer open an agent session. Write `${VAR}`.',
  ),
});

export const RUNNER_KEYS: ReadonlySet<string> = new Set([...Object.keys(runnerFieldsShape), 'token', 'agent_token']);

/** A runner's settings after validation, with the defaults applied. No token. */
export interface RunnerConfig {
  runnerId: string;
  backend: Backend;
  proxmoxHost: string | null;
  proxmoxUser: string | null;
  proxmoxTokenName: string | null;
  proxmoxTokenValue: string | null;
  proxmoxNode: string | null;
  proxmoxVmid: number | null;
  resetCmd: string | null;
  cleanupCmd: string | null;
  readinessCmd: string | null;
  gitlabRunnerId: number | null;
  tags: string[];
  options: RunnerOptions;
}

/** Settings without a column of their own: stored in `runners.options`. */
export interface RunnerOptions {
  resetMode: ResetMode;
  successAction: SuccessAction;
  gitlabUrl: string | null;
  /** Secret: never returned by the API nor logged. */
  gitlabToken: string | null;
  proxmoxVerifyTls: boolean;
  proxmoxCaFile: string | null;
  proxmoxFingerprint: string | null;
  proxmoxRequiredTag: string | null;
  proxmoxPool: string | null;
  snapshotVmstate: boolean;
  /** Plain http to a non-loopback GitLab or Proxmox is allowed (credentials travel in clear text). */
  allowInsecureTransport: boolean;
}

/** A broken business rule. The same rule reads differently in the loader and in the admin API. */
export type RuleViolation =
  | { rule: 'invalid_backend'; backend: string }
  | { rule: 'bare_metal_reset_cmd' }
  | { rule: 'proxmox_missing_fields'; fields: string[] }
  | { rule: 'cleanup_without_cleanup_cmd' }
  | { rule: 'insecure_transport'; field: 'gitlab_url' | 'proxmox_host' };

const truthy = (v: unknown) => v !== undefined && v !== null && v !== '' && v !== 0;

/** e2epool's checks in e2epool's order, then ours. */
export function checkRunnerRules(input: RunnerInput): RuleViolation | null {
  if (!(BACKENDS as readonly string[]).includes(input.backend)) return { rule: 'invalid_backend', backend: input.backend };
  if (input.backend === 'bare_metal' && !truthy(input.reset_cmd)) return { rule: 'bare_metal_reset_cmd' };
  if (input.backend === 'proxmox') {
    const missing = PROXMOX_REQUIRED_FIELDS.filter((f) => !truthy(input[f]));
    if (missing.length > 0) return { rule: 'proxmox_missing_fields', fields: missing };
  }
  if (input.success_action === 'cleanup' && !truthy(input.cleanup_cmd)) return { rule: 'cleanup_without_cleanup_cmd' };
  if (!input.allow_insecure_transport) {
    if (input.gitlab_url && isPlaintextToNetwork(input.gitlab_url)) return { rule: 'insecure_transport', field: 'gitlab_url' };
    if (input.proxmox_host && isPlaintextToNetwork(input.proxmox_host)) return { rule: 'insecure_transport', field: 'proxmox_host' };
  }
  return null;
}

/** The admin API's wording (422 string detail). */
export function apiRuleMessage(v: RuleViolation): string {
  switch (v.rule) {
    case 'invalid_backend':
      return `Invalid backend '${v.backend}'. Must be 'proxmox' or 'bare_metal'.`;
    case 'bare_metal_reset_cmd':
      return "bare_metal backend requires 'reset_cmd'.";
    case 'proxmox_missing_fields':
      return `proxmox backend is missing required fields: ${v.fields.join(', ')}`;
    case 'cleanup_without_cleanup_cmd':
      return "success_action 'cleanup' requires 'cleanup_cmd'.";
    case 'insecure_transport':
      return `${v.field} uses plain http to another host: use https, or set allow_insecure_transport: true.`;
  }
}

/** The inventory loader's wording, which names the runner. */
export function inventoryRuleMessage(runnerId: string, v: RuleViolation): string {
  switch (v.rule) {
    case 'invalid_backend':
      return `Invalid backend '${v.backend}' for runner '${runnerId}'. Must be 'proxmox' or 'bare_metal'.`;
    case 'bare_metal_reset_cmd':
      return `Runner '${runnerId}' with bare_metal backend requires 'reset_cmd'.`;
    case 'proxmox_missing_fields':
      return `Runner '${runnerId}' with proxmox backend is missing required fields: ${v.fields.join(', ')}`;
    case 'cleanup_without_cleanup_cmd':
      return `Runner '${runnerId}' has success_action 'cleanup' but no 'cleanup_cmd'.`;
    case 'insecure_transport':
      return `Runner '${runnerId}': ${v.field} uses plain http to another host: use https, or set allow_insecure_transport: true.`;
  }
}

/** Advice that does not stop the runner from loading (shown at load and on the dashboard). */
export function runnerWarnings(input: RunnerInput): string[] {
  const id = input.runner_id;
  const warnings: string[] = [];
  if (input.ci_adapter != null && input.ci_adapter !== 'gitlab') {
    warnings.push(`Runner '${id}': ci_adapter '${input.ci_adapter}' is not supported (only 'gitlab'); GitLab is used.`);
  }
  if (input.backend === 'proxmox' && input.reset_mode != null && input.reset_mode !== 'reboot') {
    warnings.push(`Runner '${id}': reset_mode '${input.reset_mode}' does not apply to proxmox runners, which always reboot.`);
  }
  if (!truthy(input.gitlab_runner_id)) {
    warnings.push(
      `Runner '${id}' has no gitlab_runner_id: GitLab cannot pause it before a reset ` +
        '(declare pause_runner/unpause_runner agent commands, or set gitlab_runner_id).',
    );
  }
  if (!truthy(input.readiness_cmd)) {
    warnings.push(`Runner '${id}' has no readiness_cmd: after a reset only the agent reconnecting proves readiness.`);
  }
  return warnings;
}

const orNull = <T>(v: T | null | undefined): T | null => (v === undefined || v === null ? null : v);

/** Applies defaults. Call only after `checkRunnerRules` returned null. */
export function toRunnerConfig(input: RunnerInput): RunnerConfig {
  const backend = input.backend as Backend;
  const cleanupCmd = orNull(input.cleanup_cmd);
  return {
    runnerId: input.runner_id,
    backend,
    proxmoxHost: orNull(input.proxmox_host),
    proxmoxUser: orNull(input.proxmox_user),
    proxmoxTokenName: orNull(input.proxmox_token_name),
    proxmoxTokenValue: orNull(input.proxmox_token_value),
    proxmoxNode: orNull(input.proxmox_node),
    proxmoxVmid: orNull(input.proxmox_vmid),
    resetCmd: orNull(input.reset_cmd),
    cleanupCmd,
    readinessCmd: orNull(input.readiness_cmd),
    gitlabRunnerId: orNull(input.gitlab_runner_id),
    tags: input.tags ?? [],
    options: {
      // A Proxmox rollback restarts the VM, so the agent session always drops.
      resetMode: backend === 'proxmox' ? 'reboot' : (input.reset_mode ?? 'auto'),
      successAction: input.success_action ?? (truthy(cleanupCmd) ? 'cleanup' : 'reset'),
      gitlabUrl: input.gitlab_url ? input.gitlab_url.replace(/\/+$/, '') : null,
      gitlabToken: orNull(input.gitlab_token),
      proxmoxVerifyTls: input.proxmox_verify_tls ?? true,
      proxmoxCaFile: orNull(input.proxmox_ca_file),
      proxmoxFingerprint: orNull(input.proxmox_fingerprint),
      proxmoxRequiredTag: orNull(input.proxmox_required_tag),
      proxmoxPool: orNull(input.proxmox_pool),
      snapshotVmstate: input.snapshot_vmstate ?? false,
      allowInsecureTransport: input.allow_insecure_transport ?? false,
    },
  };
}

/** Reads `runners.options` back, tolerating rows written before an option existed. */
export function parseRunnerOptions(raw: Record<string, unknown>, backend: string, cleanupCmd: string | null): RunnerOptions {
  const str = (k: string) => (typeof raw[k] === 'string' ? (raw[k] as string) : null);
  const resetMode = (RESET_MODES as readonly unknown[]).includes(raw.resetMode) ? (raw.resetMode as ResetMode) : 'auto';
  const successAction = (SUCCESS_ACTIONS as readonly unknown[]).includes(raw.successAction)
    ? (raw.successAction as SuccessAction)
    : truthy(cleanupCmd)
      ? 'cleanup'
      : 'reset';
  return {
    resetMode: backend === 'proxmox' ? 'reboot' : resetMode,
    successAction,
    gitlabUrl: str('gitlabUrl'),
    gitlabToken: str('gitlabToken'),
    proxmoxVerifyTls: raw.proxmoxVerifyTls !== false,
    proxmoxCaFile: str('proxmoxCaFile'),
    proxmoxFingerprint: str('proxmoxFingerprint'),
    proxmoxRequiredTag: str('proxmoxRequiredTag'),
    proxmoxPool: str('proxmoxPool'),
    snapshotVmstate: raw.snapshotVmstate === true,
    allowInsecureTransport: raw.allowInsecureTransport === true,
  };
}
