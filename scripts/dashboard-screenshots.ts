// `npx tsx scripts/dashboard-screenshots.ts`: renews the dashboard screenshots in docs/images/ that
// the runbook shows. It runs the dashboard's browser test (test/e2e/dashboard.test.ts: a Temporal
// dev server, the API on PGlite, a runner in needs attention, a stuck checkpoint and a day of
// history), which takes its screenshots in Chromium at 1366 px when DASHBOARD_SCREENSHOTS_DIR is set.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'docs', 'images');
const run = spawnSync(process.execPath, [path.join(root, 'scripts', 'run-tests.js'), 'test/e2e/dashboard.test.ts'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, DASHBOARD_SCREENSHOTS_DIR: out },
});
if (run.status !== 0) {
  console.error(`dashboard-screenshots: the dashboard test failed (exit ${run.status}); docs/images/ may be incomplete`);
  process.exit(1);
}
console.log(`dashboard-screenshots: dashboard-overview.png and dashboard-checkpoint.png written to ${path.relative(root, out)}/`);
