// `npm run build`: compiles the controller to dist/ (same layout as the sources, so relative paths
// to package.json and db/migrations hold) and bundles the workflow code once into
// dist/workflow-bundle.js, which compiled workers load instead of running webpack at start. Non-TS
// assets the code reads (migrations, the dashboard's files) are copied next to the compiled code.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const started = Date.now();

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
cpSync(path.join(root, 'package.json'), path.join(dist, 'package.json'));
mkdirSync(path.join(dist, 'db'), { recursive: true });
cpSync(path.join(root, 'db', 'migrations'), path.join(dist, 'db', 'migrations'), { recursive: true });
// Files tsc does not emit but the code reads at start: the dashboard page (HTML, CSS, browser JS).
cpSync(path.join(root, 'src', 'dashboard'), path.join(dist, 'src', 'dashboard'), { recursive: true });

const { code } = await bundleWorkflowCode({ workflowsPath: path.join(root, 'workflows', 'index.ts'), logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} } as never });
writeFileSync(path.join(dist, 'workflow-bundle.js'), code);
console.log(`build: dist/ compiled and dist/workflow-bundle.js (${Math.round(code.length / 1024)} KiB) written in ${((Date.now() - started) / 1000).toFixed(1)} s`);
