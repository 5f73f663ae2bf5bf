// Renders docs/configuration.md from the config schema, so the reference never drifts.
import { configSchema, CONFIG_PREFIX, SECRET_KEYS } from './config.js';

function describeDefault(field: any): string {
  const parsed = field.safeParse(undefined);
  if (!parsed.success || parsed.data === undefined) return '(unset)';
  return `\`${String(parsed.data)}\``;
}

function typeName(field: any): string {
  const schema = field.toJSONSchema({ io: 'input', unrepresentable: 'any' });
  const variants: any[] = [schema, ...(schema.anyOf ?? [])];
  const values = variants.flatMap((v) => v.enum ?? []);
  if (values.length) return values.map((v: string) => `\`${v}\``).join(' \\| ');
  if (variants.some((v) => v.type === 'integer')) return 'integer';
  if (variants.some((v) => v.type === 'number')) return 'number';
  return 'string';
}

export function renderConfigurationReference(): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config.ts by `npm run docs:config`. Do not edit by hand: a test fails when this file is stale. -->',
    '',
    `Every setting is an environment variable with the prefix \`${CONFIG_PREFIX}\`. An empty value counts as unset.`,
    'A bad value stops the controller at start with one message naming every bad key, exit code 1.',
    'Secrets are never logged, returned by the API, shown on the dashboard or put into Temporal payloads.',
    '',
    '| Variable | Type | Default | Meaning |',
    '|---|---|---|---|',
  ];
  for (const [key, field] of Object.entries(configSchema.shape)) {
    const secret = (SECRET_KEYS as readonly string[]).includes(key) ? ' **Secret.**' : '';
    const description = ((field as any).description ?? '').replace(/\|/g, '\\|');
    lines.push(`| \`${CONFIG_PREFIX}${key}\` | ${typeName(field)} | ${describeDefault(field)} | ${description}${secret} |`);
  }
  lines.push('');
  return lines.join('\n');
}
