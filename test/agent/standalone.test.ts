// The agent ships alone to runner hosts: it imports no controller code, and its one-file bundle
// runs with plain Node from an empty directory (no node_modules, no tsx).
import { test, afterAll } from 'vitest';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildStandalone } from '../../agent/packaging/build-standalone.js';
import { FakeController } from '../helpers/agent-fake-controller.js';

const agentDir = fileURLToPath(new URL('../../agent/', import.meta.url));
const allowedPackages = new Set(['ws', 'yaml', 'zod', 'pino', 'yargs', 'yargs/helpers']);
const controllers: FakeController[] = [];
afterAll(async () => Promise.all(controllers.map((c) => c.stop())));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

test('agent/ imports only agent/ files, node built-ins and its few packages', () => {
  const files = sourceFiles(agentDir);
  assert.ok(files.length > 5);
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\()\s*'([^']+)'/g)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) continue;
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec);
        assert.ok(target.startsWith(agentDir), `${path.relative(agentDir, file)} imports ${spec} outside agent/`);
        continue;
      }
      const build = file.endsWith(path.join('packaging', 'build-standalone.ts')) && spec === 'esbuild';
      assert.ok(allowedPackages.has(spec) || build, `${path.relative(agentDir, file)} imports package ${spec}`);
    }
  }
});

test('the one-file bundle runs the agent and the CLI with plain node from an empty directory', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-standalone-'));
  const bundle = await buildStandalone(path.join(dir, 'e2epool.mjs'));
  const token = 'tok-standalone-77aa';
  const ctl = new FakeController('r9', token);
  await ctl.start();
  controllers.push(ctl);
  ctl.answers.create = (m) => ({ id: m.id, status: 'ok', data: { name: `job-${m.payload.job_id}-1700000000-00aa11bb` }, error: null });
  const socket = path.join(dir, 'agent.sock');
  const config = path.join(dir, 'agent.yml');
  writeFileSync(config, `controller_url: ${ctl.url}\nrunner_id: r9\ntoken: ${token}\nsocket_path: ${socket}\nsocket_group: none\ncommands:\n  reset: "true"\n`, { mode: 0o600 });
  const env = { PATH: process.env.PATH };
  const agent = spawn(process.execPath, [bundle, 'agent', '--config', config], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  agent.stdout.on('data', (c) => (out += c));
  agent.stderr.on('data', (c) => (out += c));
  try {
    const session = await ctl.waitForSessions(1, 8000);
    assert.deepEqual(session.received.find((m) => m.type === 'hello')!.payload.commands, ['reset']);
    while (!existsSync(socket)) await new Promise((r) => setTimeout(r, 20));
    const created = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(process.execPath, [bundle, 'create', '--job-id', '55', '--socket', socket], { cwd: dir, env }, (err, stdout) =>
        resolve({ code: err ? ((err as any).code as number) : 0, stdout }),
      ),
    );
    assert.deepEqual(created, { code: 0, stdout: 'job-55-1700000000-00aa11bb\n' });
  } finally {
    const exited = once(agent, 'exit');
    agent.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, out);
  }
  assert.equal(out.includes(token), false);
});
