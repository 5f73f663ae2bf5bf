#!/usr/bin/env node
// Runs the test suite with node's test runner through tsx. Arguments narrow it to folders or files.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function collect(target, out) {
  const st = statSync(target);
  if (st.isFile()) { if (target.endsWith('.test.ts')) out.push(target); return out; }
  for (const entry of readdirSync(target).sort()) collect(path.join(target, entry), out);
  return out;
}

const roots = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const files = (roots.length ? roots : ['test']).flatMap((r) => collect(r, []));
if (files.length === 0) { console.error('no test files found'); process.exit(1); }
const concurrency = process.env.E2EPOOL_TEST_CONCURRENCY ?? '2';
// The timeout applies to each file as a whole: the short chaos run takes about three minutes alone
// and longer on a loaded CI machine; tests set tighter timeouts of their own.
const result = spawnSync(process.execPath, [
  '--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', '--test-timeout=420000', ...flags, ...files,
], { stdio: 'inherit', env: process.env });
process.exit(result.status ?? 1);
