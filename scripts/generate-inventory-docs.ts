// Writes docs/inventory.md from the inventory's zod schema (src/inventory/runner-config.ts): every
// runner key per backend, with its type, whether it is required, its default and its description.
// The defaults are read from the code that applies them (toRunnerConfig), never typed in here.
// Run: npm run docs:inventory (test/docs/inventory-docs.test.ts fails when the
// committed file differs from what this renders).
import { realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MIN_TOKEN_LENGTH } from '../src/inventory/token-hash.js';
import {
  BACKENDS,
  checkRunnerRules,
  inventoryRunnerSchema,
  toRunnerConfig,
  type Backend,
  type RunnerConfig,
  type RunnerInput,
} from '../src/inventory/runner-config.js';

export const INVENTORY_DOC_PATH = new URL('../docs/inventory.md', import.meta.url);

type Field = (typeof inventoryRunnerSchema.shape)[keyof typeof inventoryRunnerSchema.shape];

/**
 * Keys that mean something for one backend only. Every `proxmox_*` key is Proxmox-only by its name;
 * the others are listed here. A key not named here applies to both backends.
 */
const ONE_BACKEND_ONLY: Readonly<Record<string, Backend>> = {
  snapshot_vmstate: 'proxmox',
  // A Proxmox runner is rolled back by the hypervisor and always reboots.
  reset_cmd: 'bare_metal',
  reset_mode: 'bare_metal',
};

function backendsOf(key: string): Backend[] {
  const only = ONE_BACKEND_ONLY[key] ?? (key.startsWith('proxmox_') ? 'proxmox' : undefined);
  return only ? [only] : [...BACKENDS];
}

/** The smallest entry of each backend that passes every rule: the base for required and default. */
const MINIMAL: Readonly<Record<Backend, Record<string, unknown>>> = {
  proxmox: {
    runner_id: 'vm-01',
    backend: 'proxmox',
    token: 'x'.repeat(MIN_TOKEN_LENGTH),
    proxmox_host: 'pve.example.net',
    proxmox_user: 'e2epool@pve',
    proxmox_token_name: 'controller',
    proxmox_token_value: 'secret',
    proxmox_node: 'pve1',
    proxmox_vmid: 100,
  },
  bare_metal: { runner_id: 'metal-01', backend: 'bare_metal', token: 'x'.repeat(MIN_TOKEN_LENGTH), reset_cmd: '/opt/e2e/reset.sh' },
};

function parsed(entry: Record<string, unknown>): RunnerInput {
  const result = inventoryRunnerSchema.safeParse(entry);
  if (!result.success) throw new Error(`generate-inventory-docs: sample entry does not parse: ${result.error.message}`);
  return result.data;
}

function isRequired(key: string, backend: Backend): boolean {
  const field = inventoryRunnerSchema.shape[key as keyof typeof inventoryRunnerSchema.shape] as Field;
  if (!field.safeParse(undefined).success) return true;
  const entry = { ...MINIMAL[backend] };
  if (!(key in entry)) return false;
  delete entry[key];
  return checkRunnerRules(parsed(entry)) !== null;
}

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** What the registry holds for `key` when the entry leaves it out; undefined when nothing is kept. */
function appliedValue(config: RunnerConfig, key: string): unknown {
  const name = camel(key);
  if (name in config) return (config as unknown as Record<string, unknown>)[name];
  if (name in config.options) return (config.options as unknown as Record<string, unknown>)[name];
  return undefined;
}

function formatValue(value: unknown): string {
  if (value === undefined || value === null) return '(none)';
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : `\`${JSON.stringify(value)}\``;
  return `\`${String(value)}\``;
}

function defaultOf(key: string, backend: Backend): string {
  const entry = MINIMAL[backend];
  if (key in entry) return '';
  const config = toRunnerConfig(parsed(entry));
  const plain = appliedValue(config, key);
  // A default that depends on another key: shown for both cases the code tells apart.
  const withCleanup = appliedValue(toRunnerConfig(parsed({ ...entry, cleanup_cmd: 'true' })), key);
  if (key !== 'cleanup_cmd' && JSON.stringify(withCleanup) !== JSON.stringify(plain)) {
    return `${formatValue(withCleanup)} when \`cleanup_cmd\` is set, else ${formatValue(plain)}`;
  }
  return formatValue(plain);
}

function typeOf(key: string, field: Field): string {
  // The schema takes any short string and the business rules check it against BACKENDS (so that
  // the error text is e2epool's); the reference shows the values that pass.
  if (key === 'backend') return BACKENDS.map((b) => `\`${b}\``).join(' \\| ');
  const schema: any = (field as any).toJSONSchema({ io: 'output', unrepresentable: 'any' });
  const variant: any = (schema.anyOf ?? [schema]).find((v: any) => v.type !== 'null') ?? schema;
  const types: string[] = Array.isArray(variant.type) ? variant.type.filter((t: string) => t !== 'null') : [variant.type];
  if (variant.enum) return variant.enum.map((v: string) => `\`${v}\``).join(' \\| ');
  if (types.includes('array')) return 'list of strings';
  if (types.includes('integer')) return 'integer';
  if (types.includes('boolean')) return 'boolean';
  if (variant.maxLength !== undefined) return `string (≤ ${variant.maxLength})`;
  return 'string';
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

const BACKEND_TITLES: Readonly<Record<Backend, string>> = {
  proxmox: '`proxmox` runners: a VM rolled back to its snapshot',
  bare_metal: '`bare_metal` runners: a host reset by its own command',
};

export function renderInventoryReference(): string {
  const keys = Object.keys(inventoryRunnerSchema.shape);
  for (const key of Object.keys(ONE_BACKEND_ONLY)) {
    if (!keys.includes(key)) throw new Error(`generate-inventory-docs: ONE_BACKEND_ONLY names '${key}', which the schema no longer has`);
  }
  const undocumented = keys.filter((k) => !(inventoryRunnerSchema.shape as Record<string, Field>)[k]!.description);
  if (undocumented.length > 0) throw new Error(`generate-inventory-docs: add .describe() to ${undocumented.join(', ')} in src/inventory/runner-config.ts`);

  const lines = [
    '# Inventory reference',
    '',
    '<!-- Generated from src/inventory/runner-config.ts by `npm run docs:inventory`. Do not edit by hand: a test fails when this file is stale. -->',
    '',
    'The inventory is a YAML file (`E2EPOOL_INVENTORY_PATH`, see [configuration.md](configuration.md)) with one',
    'top-level key, `runners`, a list of runner entries. The Python e2epool\'s files load unchanged; see',
    '`inventory.example.yml` for a commented example.',
    '',
    '- Values may name environment variables as `${NAME}` (`$${NAME}` stays a literal `${NAME}`); a variable',
    '  that is not set is an error. Commands (`reset_cmd`, `cleanup_cmd`, `readiness_cmd`) are not expanded:',
    '  the runner host\'s shell expands them.',
    '- Unknown keys, at the top level or in an entry, are warned about and ignored.',
    '- Every problem in the file is reported at once, naming the runner. At start an invalid file stops the',
    '  controller; a later edit that breaks it is logged and the last good inventory stays in force.',
    '- Edits are picked up without a restart. A runner removed from the file is deactivated.',
    `- Runner ids and tokens are unique across the file; tokens are ${MIN_TOKEN_LENGTH} characters or more`,
    '  (`openssl rand -hex 32`).',
    '- Booleans accept `true`/`false` and the strings `true`, `1`, `yes`, `on`, `false`, `0`, `no`, `off`;',
    '  numbers may be quoted (a `${VAR}` expands to text).',
    '- Runners created through the admin API (`POST /api/runners`) take the same keys except `token` and',
    '  `agent_token`: the API generates the token, and `POST /api/runners/<id>/rotate-agent-token` issues an',
    '  agent credential.',
    '',
    '## Required keys',
    '',
    `| Key | ${BACKENDS.map((b) => `\`${b}\``).join(' | ')} |`,
    `|---|${BACKENDS.map(() => '---').join('|')}|`,
  ];
  for (const key of keys) {
    const marks = BACKENDS.map((b) => (isRequired(key, b) ? 'required' : ''));
    if (marks.some((m) => m !== '')) lines.push(`| \`${key}\` | ${marks.join(' | ')} |`);
  }
  lines.push('', '`success_action: cleanup` also requires `cleanup_cmd`.');

  for (const backend of BACKENDS) {
    lines.push('', `## ${BACKEND_TITLES[backend]}`, '', '| Key | Required | Type | Default | Meaning |', '|---|---|---|---|---|');
    for (const key of keys.filter((k) => backendsOf(k).includes(backend))) {
      const field = (inventoryRunnerSchema.shape as Record<string, Field>)[key]!;
      const required = isRequired(key, backend) ? 'yes' : '';
      lines.push(`| \`${key}\` | ${required} | ${typeOf(key, field)} | ${required ? '' : defaultOf(key, backend)} | ${cell(field.description ?? '')} |`);
    }
  }

  const ignored = BACKENDS.map((b) => [b, keys.filter((k) => !backendsOf(k).includes(b))] as const).filter(([, list]) => list.length > 0);
  lines.push('', '## Keys of the other backend', '');
  for (const [backend, list] of ignored) {
    lines.push(`- A \`${backend}\` runner accepts and does not use ${list.map((k) => `\`${k}\``).join(', ')}.`);
  }
  lines.push('', 'On a `proxmox` runner a `reset_mode` other than `reboot` is warned about at load.');
  lines.push('');
  return lines.join('\n');
}

function runAsScript(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (runAsScript()) {
  writeFileSync(INVENTORY_DOC_PATH, renderInventoryReference());
  console.log('docs/inventory.md written');
}
