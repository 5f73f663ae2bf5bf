// Lint rules that guard correctness: floating promises, and a deterministic workflow sandbox.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);
const ioModules = ['pg', 'got', 'ws', 'express', 'pino', 'yaml', 'drizzle-orm', '@electric-sql/pglite', '@temporalio/client', '@temporalio/worker', '@temporalio/activity', '@temporalio/testing'];

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
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no I/O libraries,
    // and activities are imported as types only.
    files: ['workflows/**/*.ts', 'src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: nodeBuiltins.concat(ioModules).map((name) => ({ name, message: 'Workflow and domain code must stay deterministic: do I/O in activities.' })),
        patterns: [
          { group: ['**/activities/*', '**/activities', '!**/activities/types*'], message: 'Import activity types only (import type ...).', allowTypeImports: true },
          { group: ['**/src/integrations/**', '**/src/gateway/**', '**/src/api/**', '**/db/**', '**/src/config*'], message: 'Workflow and domain code must not import I/O modules.', allowTypeImports: true },
        ],
      }],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
