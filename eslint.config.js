// Lint rules that guard correctness: floating promises, a deterministic workflow sandbox, and the
// layers (each folder imports only the layers below it; docs/architecture.md draws them).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);
const ioModules = ['pg', 'got', 'ws', 'express', 'pino', 'yaml', 'drizzle-orm', '@electric-sql/pglite', '@temporalio/client', '@temporalio/worker', '@temporalio/activity', '@temporalio/testing'];
const deterministic = nodeBuiltins.concat(ioModules).map((name) => ({ name, message: 'Workflow and domain code must stay deterministic: do I/O in activities.' }));

// Layers, lowest first. Imports are relative, so a folder is recognised by its name in the import
// path (every name below is unique in the repository); top-level files by their file name.
const dirs = (...names) => names.map((name) => `(^|/)${name}/`);
const files = (...names) => names.map((name) => `(^|/)${name}\\.js$`);
const entryPoints = [...dirs('cli', 'dev'), ...files('controller', 'checkpoint-worker', 'checkpoint-queue-worker')];
const aboveServices = [...dirs('api', 'metrics'), ...entryPoints];
const aboveActivities = [...dirs('services', 'alerts'), ...aboveServices];
const aboveAdapters = [...dirs('activities'), ...aboveActivities];
// Only the workflow's message definitions are shared with the code that signals and starts it.
const workflowsExceptMessages = String.raw`(^|/)workflows/(?!messages\.js$)`;
// Only the dev environment and the CLI start simulators.
const simulators = dirs('sim');
const layerPattern = (layer, regexes) => ({
  regex: regexes.join('|'),
  message: `${layer} may import only the layers below it (docs/architecture.md, "Layers").`,
});
const layerRule = (layer, filesOfLayer, forbidden) => ({
  files: filesOfLayer,
  rules: { 'no-restricted-imports': ['error', { patterns: [layerPattern(layer, forbidden)] }] },
});
const layerRules = [
  layerRule('Foundation code (util, logger, redaction, config, db)', ['src/util/**/*.ts', 'src/logger.ts', 'src/redaction.ts', 'src/config.ts', 'src/config-reference.ts', 'db/**/*.ts'], [
    ...dirs('store', 'integrations', 'inventory', 'gateway', 'webhooks', 'temporal', 'workflows'), ...aboveAdapters, ...simulators,
  ]),
  // The store reads the runner schema (pure parsing) from inventory/runner-config.ts.
  layerRule('src/store', ['src/store/**/*.ts'], [
    String.raw`(^|/)inventory/(?!runner-config\.js$)`, ...dirs('integrations', 'gateway', 'webhooks', 'temporal', 'workflows'), ...aboveAdapters, ...simulators,
  ]),
  // Adapters sit side by side over the store and do not import one another, except that any of
  // them may use the integrations' helpers.
  layerRule('src/integrations', ['src/integrations/**/*.ts'], [...dirs('inventory', 'gateway', 'webhooks', 'temporal', 'workflows'), ...aboveAdapters, ...simulators]),
  layerRule('src/inventory', ['src/inventory/**/*.ts'], [...dirs('gateway', 'webhooks', 'temporal', 'workflows'), ...aboveAdapters, ...simulators]),
  layerRule('src/gateway', ['src/gateway/**/*.ts'], [...dirs('inventory', 'webhooks', 'temporal', 'workflows'), ...aboveAdapters, ...simulators]),
  layerRule('src/webhooks', ['src/webhooks/**/*.ts'], [...dirs('inventory', 'gateway', 'temporal'), workflowsExceptMessages, ...aboveAdapters, ...simulators]),
  layerRule('temporal/', ['temporal/**/*.ts'], [...dirs('inventory', 'gateway', 'webhooks', 'workflows'), ...aboveAdapters, ...simulators]),
  layerRule('activities/', ['activities/**/*.ts'], [...dirs('workflows'), ...aboveActivities, ...simulators]),
  // Besides the messages, the services may name a workflow function as a type (a typed start).
  {
    files: ['src/services/**/*.ts', 'src/alerts/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          layerPattern('src/services and src/alerts', [...aboveServices, ...simulators]),
          { ...layerPattern('src/services and src/alerts', [workflowsExceptMessages]), allowTypeImports: true },
        ],
      }],
    },
  },
  layerRule('src/api and src/metrics', ['src/api/**/*.ts', 'src/metrics/**/*.ts'], [workflowsExceptMessages, ...entryPoints, ...simulators]),
  // The agent runs on runner hosts and is built on its own: nothing from the controller.
  layerRule('agent/', ['agent/**/*.ts'], dirs('src', 'activities', 'workflows', 'temporal', 'db', 'sim', 'bench', 'scripts')),
];

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', '.tools/**', 'db/migrations/**', 'dist/**', 'tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no I/O libraries,
    // and activities are imported as types only. Besides itself it may use the domain and the
    // search attribute keys, nothing else from the controller.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: deterministic,
        patterns: [
          { group: ['**/activities/*', '**/activities', '!**/activities/types*'], message: 'Import activity types only (import type ...).', allowTypeImports: true },
          layerPattern('workflows', [String.raw`(^|/)src/(?!domain/)`, String.raw`(^|/)temporal/(?!search-attributes\.js$)`, ...dirs('db', 'sim', 'agent', 'bench', 'scripts')]),
        ],
      }],
    },
  },
  {
    // The domain is pure: it imports nothing but itself.
    files: ['src/domain/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: deterministic, patterns: [layerPattern('src/domain', [String.raw`^\.\./`])] }] },
  },
  ...layerRules,
  {
    files: ['**/*.js'],
    ignores: ['src/dashboard/**'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // The dashboard's browser script: a classic script (inlined into the page), browser globals only.
    files: ['src/dashboard/**/*.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'script',
      globals: Object.fromEntries(['window', 'document', 'location', 'history', 'navigator', 'sessionStorage', 'fetch', 'AbortController', 'TextDecoder', 'URL', 'URLSearchParams', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'console'].map((name) => [name, 'readonly'])),
    },
    rules: { strict: ['error', 'global'] },
  },
);
