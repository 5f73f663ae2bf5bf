// `npm run build` compiles the controller and bundles the workflow code once; `serve` from dist/
// then starts with no TypeScript runtime and no webpack (no module of either is ever loaded),
// answers its health checks and stops cleanly.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { repoRoot } from '../../temporal/tool-paths.js';
import { startDevServerEnv } from '../helpers/temporal.js';

const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-build-'));

/** Starts `serve` from dist/ with `node` (and its extra flags); resolves with its URL once it listens. */
function startCompiledServe(node: string, flags: string[], temporalAddress: string, database: string) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('E2EPOOL_')));
  const proc = spawn(node, [...flags, path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'serve', '--port', '0'], {
    cwd: dir,
    env: {
      ...clean,
      E2EPOOL_DATABASE_URL: `pglite:${path.join(dir, database)}`,
      E2EPOOL_TEMPORAL_ADDRESS: temporalAddress,
      E2EPOOL_TOKEN_PEPPER: 'pepper-for-the-compiled-build-test',
      E2EPOOL_ADMIN_TOKEN: 'admin-token-for-the-compiled-build-test',
      E2EPOOL_INVENTORY_PATH: path.join(dir, 'inventory.yml'),
      E2EPOOL_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { text: '' };
  proc.stdout!.on('data', (d) => (output.text += d));
  proc.stderr!.on('data', (d) => (output.text += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve on ${node} did not start:\n${output.text}`)), 120_000);
    proc.stdout!.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(output.text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => reject(new Error(`serve on ${node} exited ${code}:\n${output.text}`)));
  });
  return { proc, output, exited, listening };
}

describe('compiled build', { timeout: 300_000 }, () => {
  let env: TestWorkflowEnvironment;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    env = await startDevServerEnv();
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await env?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds dist/ with the workflow bundle, and serve runs from it without tsx or webpack', async () => {
    const build = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts', 'build.ts')], { cwd: repoRoot, encoding: 'utf8', timeout: 240_000 });
    assert.equal(build.status, 0, build.stderr + build.stdout);
    assert.ok(existsSync(path.join(repoRoot, 'dist', 'workflow-bundle.js')));
    assert.ok(existsSync(path.join(repoRoot, 'dist', 'db', 'migrations', '0000_initial.sql')));

    // Records every CommonJS module the process loaded (webpack and tsx's loaders are CommonJS).
    const preload = path.join(dir, 'record-modules.cjs');
    const loaded = path.join(dir, 'loaded.json');
    writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(loaded)}, JSON.stringify(Object.keys(require.cache))));\n`);
    const started = Date.now();
    const serve = startCompiledServe(process.execPath, ['--require', preload], (env as unknown as { address: string }).address, 'pglite');
    child = serve.proc;
    const url = await serve.listening;
    const startMs = Date.now() - started;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const health = (await (await fetch(`${url}/health`)).json()) as { temporal: { reachable: boolean } };
    assert.equal(health.temporal.reachable, true);
    child.kill('SIGTERM');
    assert.equal(await serve.exited, 0, serve.output.text);
    child = undefined;
    const modules = JSON.parse(readFileSync(loaded, 'utf8')) as string[];
    const offending = modules.filter((m) => /[\\/]node_modules[\\/](tsx|esbuild|typescript|swc-loader|@swc)[\\/]/.test(m));
    assert.deepEqual(offending, [], 'no TypeScript runtime or compiler loaded');
    // @temporalio/worker requires webpack's index, whose exports are lazy getters; the bundler
    // itself (webpack.js, Compiler.js and the thousand modules behind them) must never load.
    const webpack = modules.filter((m) => /[\\/]node_modules[\\/]webpack[\\/]/.test(m));
    assert.ok(webpack.every((m) => /webpack[\\/]lib[\\/](index|util[\\/]memoize)\.js$/.test(m)), `webpack modules loaded: ${webpack.join(', ')}`);
    process.stdout.write(`# compiled serve: listening after ${startMs} ms; ${modules.length} CommonJS modules, none of tsx, esbuild or typescript, ${webpack.length} of webpack (its lazy index)\n`);
  });

  it('runs from dist/ on Node.js 22 too (the Dockerfile\'s line)', async () => {
    const node22 = path.join(repoRoot, '.tools', 'node22', 'bin', 'node');
    if (!existsSync(node22)) {
      if (process.env.CI === 'true') throw new Error(`${node22} is missing: scripts/install-tools.sh installs it`);
      return;
    }
    assert.ok(existsSync(path.join(repoRoot, 'dist', 'workflow-bundle.js')), 'the build of the test above');
    assert.match(spawnSync(node22, ['--version'], { encoding: 'utf8' }).stdout, /^v22\./);
    const serve = startCompiledServe(node22, [], (env as unknown as { address: string }).address, 'pglite-node22');
    child = serve.proc;
    const url = await serve.listening;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^e2epool_build_info\{version="[^"]+",node="v22\./m);
    assert.match(metrics, /^temporal_worker_task_slots_available\{/m, 'the SDK core runs on Node 22');
    child.kill('SIGTERM');
    assert.equal(await serve.exited, 0, serve.output.text);
    child = undefined;
  });
});
