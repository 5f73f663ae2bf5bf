// deploy/systemd/: the controller and worker units as shipped. `systemd-analyze verify` loads them the
// way systemd would (no running systemd is needed: it starts a private manager in test mode), with
// ExecStart's node pointed at this node binary because verify checks that the program exists; any
// warning about the files fails the test. `systemd-analyze security --offline=true` scores the
// sandbox from the files alone. The settings the brief of each unit depends on are then read from
// the files: the compiled build, the example environment file (which loadConfig must accept), the
// stop budget against E2EPOOL_SHUTDOWN_GRACE_SECONDS and the hardening.
import { describe, it, type TestContext } from 'vitest';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../temporal/tool-paths.js';
import { CONFIG_PREFIX, configSchema, loadConfig } from '../../src/config.js';

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const UNITS_DIR = path.join(repoRoot, 'deploy', 'systemd');
const UNITS = { 'e2epool.service': 'serve', 'e2epool-worker.service': 'worker' } as const;
const NODE = '/usr/bin/node';
/** Highest exposure score `systemd-analyze security` may give (0 = locked down, 10 = exposed). */
const MAX_EXPOSURE = 2.0;

type Unit = Record<string, Record<string, string[]>>;

/** Section -> key -> every value in file order (systemd keys may repeat; an empty value resets). */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      unit[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(eq > 0 && section, `not a key=value line in a section: ${line}`);
    ((unit[section]![line.slice(0, eq)] ??= []) as string[]).push(line.slice(eq + 1));
  }
  return unit;
}

const last = (unit: Unit, key: string, section = 'Service'): string | undefined => unit[section]?.[key]?.at(-1);

/** systemd time span in seconds (90, 90s, 1min 30s, 2min). */
function seconds(span: string): number {
  let total = 0;
  const re = /(\d+)\s*(min|s|m|h)?/g;
  for (let m = re.exec(span); m; m = re.exec(span)) total += Number(m[1]) * ({ h: 3600, min: 60, m: 60, s: 1 }[m[2] ?? 's'] ?? 1);
  return total;
}

function analyzeTool(t: TestContext): boolean {
  if (existsSync(SYSTEMD_ANALYZE)) return true;
  if (process.env.CI === 'true') throw new Error(`${SYSTEMD_ANALYZE} is missing: install Debian's systemd package (CI=true never skips)`);
  t.skip(`${SYSTEMD_ANALYZE} not installed (not CI)`);
  return false;
}

/** Both units copied to a fresh directory, ExecStart's node replaced by this process' node. */
function unitsForAnalysis(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-systemd-'));
  for (const name of Object.keys(UNITS)) {
    const text = readFileSync(path.join(UNITS_DIR, name), 'utf8');
    assert.ok(text.includes(`ExecStart=${NODE} `), `${name} starts ${NODE}`);
    writeFileSync(path.join(dir, name), text.replace(`ExecStart=${NODE} `, `ExecStart=${process.execPath} `));
  }
  return dir;
}

const analyzeEnv = { ...process.env, SYSTEMD_LOG_LEVEL: 'warning', SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0' };

function verify(dir: string, names: string[]): { status: number | null; problems: string[]; output: string } {
  const result = spawnSync(SYSTEMD_ANALYZE, ['verify', '--man=no', ...names.map((n) => path.join(dir, n))], { env: analyzeEnv, encoding: 'utf8', timeout: 60_000 });
  const output = `${result.stdout}${result.stderr}`;
  // Warnings about our files name the file (path:line) or the unit; other lines are the host's.
  const problems = output.split('\n').filter((line) => names.some((n) => line.includes(n)));
  return { status: result.status, problems, output };
}

describe('deploy/systemd units', () => {
  it('pass systemd-analyze verify without a warning', (t) => {
    if (!analyzeTool(t)) return;
    const dir = unitsForAnalysis();
    const result = verify(dir, Object.keys(UNITS));
    assert.equal(result.status, 0, result.output);
    assert.deepEqual(result.problems, [], result.output);

    // The check can fail: an unknown key and a bad value in a copy are reported.
    writeFileSync(path.join(dir, 'broken.service'), readFileSync(path.join(dir, 'e2epool.service'), 'utf8').replace('Restart=on-failure', 'Restart=sometimes').replace('[Install]', 'NoSuchKey=1\n[Install]'));
    const broken = verify(dir, ['broken.service']);
    assert.ok(broken.problems.some((l) => /restart specifier/i.test(l)), broken.output);
    assert.ok(broken.problems.some((l) => /Unknown key.*NoSuchKey/.test(l)), broken.output);
  });

  it(`score at most ${MAX_EXPOSURE} in systemd-analyze security --offline=true`, (t) => {
    if (!analyzeTool(t)) return;
    const dir = unitsForAnalysis();
    for (const name of Object.keys(UNITS)) {
      const result = spawnSync(SYSTEMD_ANALYZE, ['security', '--offline=true', '--no-pager', `--threshold=${MAX_EXPOSURE * 10}`, path.join(dir, name)], { env: analyzeEnv, encoding: 'utf8', timeout: 60_000 });
      const score = /Overall exposure level for \S+: (\d+\.\d+)/.exec(result.stdout);
      assert.ok(score, `${name}: ${result.stdout}${result.stderr}`);
      assert.equal(result.status, 0, `${name}: --threshold takes the score times ten`);
      assert.ok(Number(score[1]) <= MAX_EXPOSURE, `${name} exposure ${score[1]}:\n${result.stdout.split('\n').filter((l) => l.startsWith('✗')).join('\n')}`);
    }
  });

  for (const [name, command] of Object.entries(UNITS)) {
    describe(name, () => {
      const text = readFileSync(path.join(UNITS_DIR, name), 'utf8');
      const unit = parseUnit(text);

      it(`runs the compiled build's \`${command}\` as a dedicated user from the example environment file`, () => {
        const start = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).scripts.start as string;
        assert.equal(start, 'node dist/src/cli/main.js serve', 'package.json start is how the build runs');
        assert.match(last(unit, 'ExecStart') ?? '', new RegExp(`^${NODE} /\\S+/dist/src/cli/main\\.js ${command}$`));
        const user = last(unit, 'User');
        assert.ok(user && user !== 'root' && last(unit, 'DynamicUser') !== 'yes', `User=${user}`);
        assert.equal(last(unit, 'EnvironmentFile'), '/etc/e2epool/e2epool.env');
        assert.equal(last(unit, 'Restart'), 'on-failure');
        assert.equal(last(unit, 'Type') ?? 'simple', 'simple');
        assert.deepEqual(unit.Install?.WantedBy, ['multi-user.target']);
      });

      it('stops with SIGTERM and waits longer than the graceful stop takes', () => {
        assert.equal(last(unit, 'KillSignal'), 'SIGTERM');
        const grace = loadConfig({}).SHUTDOWN_GRACE_SECONDS;
        const example = exampleEnv().E2EPOOL_SHUTDOWN_GRACE_SECONDS;
        const budget = Math.max(grace, Number(example ?? 0));
        // docs/deployment.md: agent commands get the grace, then running activities get it again,
        // so the process needs twice the grace, plus a margin.
        assert.ok(seconds(last(unit, 'TimeoutStopSec') ?? '') >= 2 * budget + 20, `TimeoutStopSec=${last(unit, 'TimeoutStopSec')} for a grace of ${budget} s`);
      });

      it('is sandboxed: read-only system but the state directory, no capabilities, IP and Unix sockets only', () => {
        const expected: Record<string, string> = {
          NoNewPrivileges: 'yes',
          ProtectSystem: 'strict',
          ProtectHome: 'yes',
          PrivateTmp: 'yes',
          PrivateDevices: 'yes',
          ProtectKernelTunables: 'yes',
          ProtectKernelModules: 'yes',
          ProtectKernelLogs: 'yes',
          ProtectControlGroups: 'yes',
          ProtectClock: 'yes',
          ProtectHostname: 'yes',
          RestrictNamespaces: 'yes',
          RestrictRealtime: 'yes',
          RestrictSUIDSGID: 'yes',
          LockPersonality: 'yes',
          SystemCallArchitectures: 'native',
          RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
          CapabilityBoundingSet: '',
          AmbientCapabilities: '',
        };
        for (const [key, value] of Object.entries(expected)) assert.equal(last(unit, key), value, `${key}=`);
        assert.equal(unit.Service!.CapabilityBoundingSet!.length, 1, 'one empty CapabilityBoundingSet= (a later line would add capabilities back)');
        assert.equal(unit.Service!.SystemCallFilter![0], '@system-service');
        const state = last(unit, 'StateDirectory');
        assert.ok(state, 'a StateDirectory');
        assert.deepEqual(unit.Service!.ReadWritePaths, [`/var/lib/${state}`], 'only the state directory is writable');
        assert.equal(last(unit, 'WorkingDirectory'), `/var/lib/${state}`);
        // V8's JIT needs writable and executable memory: the key must stay off, and say why.
        assert.equal(unit.Service!.MemoryDenyWriteExecute, undefined);
        assert.match(text, /# MemoryDenyWriteExecute= stays off: V8's JIT/);
      });
    });
  }

  it('the example environment file is a configuration loadConfig accepts, with no unknown E2EPOOL_ key', () => {
    const env = exampleEnv();
    const known = new Set(Object.keys(configSchema.shape).map((k) => CONFIG_PREFIX + k));
    for (const key of Object.keys(env)) if (key.startsWith(CONFIG_PREFIX)) assert.ok(known.has(key), `${key} is not a setting (docs/configuration.md)`);
    const config = loadConfig(env);
    assert.match(config.DATABASE_URL, /^postgresql:\/\//, 'production uses PostgreSQL, not PGlite');
    assert.ok(config.TOKEN_PEPPER && config.ADMIN_TOKEN, 'the secrets serve refuses to start without');
    assert.equal(config.METRICS_HOST, '127.0.0.1', '/metrics stays off public interfaces');
    assert.equal(config.INVENTORY_REQUIRED, true);
  });
});

/** deploy/systemd/e2epool.env.example as systemd reads it (KEY=value lines, # comments). */
function exampleEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of readFileSync(path.join(UNITS_DIR, 'e2epool.env.example'), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    assert.ok(m, `not KEY=value: ${line}`);
    assert.doesNotMatch(m[2]!, /^["']|\$\{/, `${m[1]}: systemd does no quoting or expansion here`);
    env[m[1]!] = m[2]!;
  }
  return env;
}
