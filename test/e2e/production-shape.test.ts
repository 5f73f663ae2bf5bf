// The production shape on one machine, every piece a real process started as an operator starts it:
// Debian's nginx loading deploy/nginx.conf as shipped (TLS, a throwaway certificate) in front of two
// `e2epool serve` instances, one fresh PostgreSQL database, a Temporal dev server, two runner-host
// agents connecting through nginx over wss:// with `ca_file`, and the CLI that CI jobs call. It
// checks the two checkpoint paths end to end (a success cleans up; a failure resets the host and
// proves readiness), the dashboard sign-in and its live stream through the proxy, that /metrics is
// not reachable through nginx, that nginx spreads the agents over both instances, and the README's
// GitLab pre_build_script against this controller in and out of maintenance mode.
// Over 400 lines on purpose: it checks one whole surface against one expensive set-up started once
// per file; split, each part would start it again.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { findFreePort } from '../../temporal/free-port.js';
import { startTemporalDevServer, type TemporalDevServer } from '../../temporal/dev-server.js';
import { isProcessGroupAlive, spawnInOwnGroup, type GroupChild } from '../../temporal/process-group.js';
import { repoRoot } from '../../temporal/tool-paths.js';
import { endStates } from '../../src/domain/checkpoint-states.js';
import { createEmptyPostgresDatabase, POSTGRES_ADMIN_URL } from '../helpers/databases.js';
import { eventually } from '../helpers/eventually.js';
import { makeLocalhostCertificate, NGINX, renderShippedSite, startNginx, type RunningNginx } from '../helpers/nginx.js';

const CI = process.env.CI === 'true';
const haveNginx = existsSync(NGINX);
const BIN = path.join(repoRoot, 'bin', 'e2epool.js');
const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-prod-'));
const ADMIN_TOKEN = `admin-${randomBytes(20).toString('hex')}`;
const MAINTENANCE_MESSAGE = 'Upgrading e2epool, back at 14:00';
const RUNNER_IDS = ['prod-metal-01', 'prod-metal-02'] as const;

interface Serve {
  name: string;
  group: GroupChild;
  url: string;
  instanceId: string;
  metricsPort: number;
  log: string;
}

interface Agent {
  runnerId: string;
  group: GroupChild;
  config: string;
  resets: string;
  cleanups: string;
  readiness: string;
  log: string;
}

const groups: GroupChild[] = [];
let temporal: TemporalDevServer | undefined;
let database: Awaited<ReturnType<typeof createEmptyPostgresDatabase>> | undefined;
let pgClient: pg.Client | undefined;
let nginx: RunningNginx | undefined;
let tls: { cert: string; key: string };
const serves: Serve[] = [];
const agents = new Map<string, Agent>();
const tokens = new Map<string, string>(RUNNER_IDS.map((id) => [id, randomBytes(24).toString('hex')]));

/** The last lines of every log we keep, for assertion messages. */
function logTails(): string {
  const files = [...serves.map((s) => s.log), ...[...agents.values()].map((a) => a.log), path.join(dir, 'nginx', 'error.log')];
  return files
    .filter((f) => existsSync(f))
    .map((f) => `--- ${path.basename(f)}\n${readFileSync(f, 'utf8').split('\n').slice(-15).join('\n')}`)
    .join('\n');
}

/** What `eventually` waits for, with the log tails as they are when it times out. */
const withLogs = (what: string) => () => `${what}\n${logTails()}`;

/** The environment without any E2EPOOL_* setting of the machine running the tests. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('E2EPOOL_')));
}

async function startServe(name: string, settings: Record<string, string>): Promise<Serve> {
  const metricsPort = await findFreePort();
  const log = path.join(dir, `${name}.log`);
  const fd = openSync(log, 'w');
  const env: NodeJS.ProcessEnv = { ...cleanEnv(), ...settings, E2EPOOL_METRICS_PORT: String(metricsPort), E2EPOOL_METRICS_HOST: '127.0.0.1' };
  const group = spawnInOwnGroup(process.execPath, [BIN, 'serve'], { cwd: dir, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  groups.push(group);
  let exited = false;
  void group.exited.then(() => (exited = true));
  const listening = () => /listening on (http:\/\/\S+) \(instance ([^)\s]+)\)/.exec(readFileSync(log, 'utf8'));
  // An exit ends the wait at once: there is nothing more to wait for.
  await eventually(withLogs(`${name} to listen`), () => exited || listening(), { timeoutMs: 120_000, intervalMs: 250 });
  const match = listening();
  assert.ok(match && !exited, `${name} exited while starting:\n${readFileSync(log, 'utf8')}`);
  return { name, group, url: match[1]!, instanceId: match[2]!, metricsPort, log };
}

/** What the runner host does, as both the inventory and the agent declare it: each leaves a mark. */
function hostCommands(runnerId: string): { reset: string; cleanup: string; readiness: string } {
  const mark = (what: string, file: string) => `echo ${what} >> ${path.join(dir, `${runnerId}.${file}`)}`;
  return { reset: mark('reset', 'resets'), cleanup: mark('cleanup', 'cleanups'), readiness: mark('ready', 'readiness') };
}

function startAgent(runnerId: string, nginxPort: number): Agent {
  const socket = path.join(dir, `${runnerId}.sock`);
  const resets = path.join(dir, `${runnerId}.resets`);
  const readiness = path.join(dir, `${runnerId}.readiness`);
  const cleanups = path.join(dir, `${runnerId}.cleanups`);
  const config = path.join(dir, `${runnerId}.agent.yml`);
  writeFileSync(
    config,
    stringify({
      controller_url: `wss://localhost:${nginxPort}/ws/agent`,
      ca_file: tls.cert,
      runner_id: runnerId,
      token: tokens.get(runnerId),
      socket_path: socket,
      socket_group: 'none',
      heartbeat_interval: 10,
      reconnect_max_delay: 5,
      commands: hostCommands(runnerId),
    }),
    { mode: 0o600 },
  );
  chmodSync(config, 0o600);
  const log = path.join(dir, `${runnerId}.agent.log`);
  const fd = openSync(log, 'w');
  const group = spawnInOwnGroup(process.execPath, [BIN, 'agent', '--config', config], { cwd: dir, env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  groups.push(group);
  const agent = { runnerId, group, config, resets, cleanups, readiness, log };
  agents.set(runnerId, agent);
  return agent;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a CI job runs it on the runner host: it finds the agent's socket through agent.yml. */
function cli(runnerId: string, args: string[]): Promise<Run> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, E2EPOOL_AGENT_CONFIG: agents.get(runnerId)!.config };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

/** The README's GitLab pre_build_script, then the job's own command, run by sh as gitlab-runner runs it. */
function gitlabJob(runnerId: string, snippet: string, jobId: string): Promise<Run> {
  const bin = path.join(dir, 'bin');
  const script = `${snippet}\necho "job ran with checkpoint=$(sh -c 'echo $CHECKPOINT')"`;
  const env = { PATH: `${bin}:/usr/bin:/bin`, HOME: process.env.HOME, CI_JOB_ID: jobId, CI_PROJECT_ID: '7', E2EPOOL_AGENT_CONFIG: agents.get(runnerId)!.config };
  return new Promise((resolve) => {
    execFile('sh', ['-c', script], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** HTTPS through nginx, verifying its certificate against the throwaway CA for the name localhost. */
function viaNginx(method: string, p: string, opts: { token?: string; body?: unknown; forwardedFor?: string; from?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = https.request(
      {
        // With a chosen local address, connect by IP (same family); the certificate is still checked for localhost.
        host: opts.from ? '127.0.0.1' : 'localhost',
        servername: 'localhost',
        port: nginx!.port,
        path: p,
        method,
        ...(opts.from ? { localAddress: opts.from } : {}),
        ca: readFileSync(tls.cert),
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.forwardedFor ? { 'x-forwarded-for': opts.forwardedFor } : {}),
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer through nginx`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Opens the dashboard's event stream through nginx and resolves with what arrived once a state block is complete. */
function firstStreamBlock(token: string, timeoutMs: number): Promise<{ status: number; contentType: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: 'localhost', port: nginx!.port, path: '/api/dashboard/events', ca: readFileSync(tls.cert), headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
          if (/^event: state\ndata: .*\n\n/m.test(text)) {
            clearTimeout(timer);
            req.destroy();
            resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text });
          }
        });
        res.on('end', () => reject(new Error(`the stream ended before a state block: ${res.statusCode} ${text}`)));
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no complete state block through nginx within ${timeoutMs} ms (buffered?)`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err); // a no-op once resolved (the destroy above)
    });
  });
}

async function checkpointRow(name: string): Promise<{ state: string; finalize_status: string | null } | undefined> {
  const r = await pgClient!.query<{ state: string; finalize_status: string | null }>('select state, finalize_status from checkpoints where name = $1', [name]);
  return r.rows[0];
}

async function transitionsOf(name: string): Promise<string[]> {
  const r = await pgClient!.query<{ to_state: string }>('select to_state from checkpoint_transitions where checkpoint_name = $1 order by seq', [name]);
  return r.rows.map((row) => row.to_state);
}

/** Waits for the checkpoint to end `state`; another end state fails at once (it will not change). */
async function ended(name: string, state: string, timeoutMs: number): Promise<{ state: string; finalize_status: string | null }> {
  const row = await eventually(
    withLogs(`${name} to end ${state}`),
    async () => {
      const r = await checkpointRow(name);
      return r && (r.state === state || [...endStates, 'needs_attention'].includes(r.state)) ? r : null;
    },
    { timeoutMs, intervalMs: 250 },
  );
  if (row.state !== state) assert.fail(`${name} ended ${row.state}, not ${state}; transitions ${(await transitionsOf(name)).join(' → ')}\n${logTails()}`);
  return row;
}

/** The agent's own view of its connection, from `e2epool status --json` on the host. */
async function agentSession(runnerId: string): Promise<{ connected: boolean; instance_id?: string; session_epoch?: number; controller_url?: string }> {
  const r = await cli(runnerId, ['status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('production shape: nginx (TLS) → two serve instances → PostgreSQL and Temporal, real agents and CLI', { timeout: 180_000 }, () => {
  beforeAll(async () => {
    if (!haveNginx) {
      if (CI) throw new Error(`${NGINX} is missing (CI=true: a missing nginx fails the run; scripts/install-tools.sh installs nginx-light)`);
      return;
    }
    const started = Date.now();
    // Throws when openssl is missing: never a skip.
    tls = makeLocalhostCertificate(dir);

    const noop = () => undefined;
    temporal = await startTemporalDevServer({ logger: { debug: noop, info: noop, warn: noop, error: (obj: unknown, msg?: string) => process.stderr.write(`temporal: ${msg ?? ''} ${JSON.stringify(obj)}\n`) } as never, ui: false, startTimeoutMs: 60_000 });

    database = await createEmptyPostgresDatabase('e2epool_prod');

    // The inventory as production writes it: tokens come from the environment (${VAR}).
    const inventory = path.join(dir, 'inventory', 'inventory.yml');
    const tokenEnv: Record<string, string> = {};
    const runners = RUNNER_IDS.map((id, i) => {
      const envName = `PROD_METAL_0${i + 1}_TOKEN`;
      tokenEnv[envName] = tokens.get(id)!;
      return {
        runner_id: id,
        backend: 'bare_metal',
        token: `\${${envName}}`,
        reset_cmd: hostCommands(id).reset,
        // A cleanup command makes a success clean up instead of resetting (success_action cleanup).
        cleanup_cmd: hostCommands(id).cleanup,
        readiness_cmd: hostCommands(id).readiness,
        reset_mode: 'in_place',
      };
    });
    mkdirSync(path.dirname(inventory), { recursive: true });
    writeFileSync(inventory, stringify({ runners }), { mode: 0o600 });

    const settings: Record<string, string> = {
      ...tokenEnv,
      E2EPOOL_DATABASE_URL: database.url,
      E2EPOOL_TEMPORAL_ADDRESS: temporal.address,
      E2EPOOL_TEMPORAL_NAMESPACE: 'default',
      E2EPOOL_TEMPORAL_REGISTER_SEARCH_ATTRIBUTES: 'true',
      E2EPOOL_ADMIN_TOKEN: ADMIN_TOKEN,
      E2EPOOL_TOKEN_PEPPER: randomBytes(32).toString('hex'),
      E2EPOOL_INVENTORY_PATH: inventory,
      E2EPOOL_INVENTORY_REQUIRED: 'true',
      E2EPOOL_HOST: '127.0.0.1',
      E2EPOOL_PORT: '0',
      E2EPOOL_LOG_LEVEL: 'info',
      E2EPOOL_SHUTDOWN_GRACE_SECONDS: '5',
      // nginx on this machine is the proxy; a low limit keeps the lock-out case short.
      E2EPOOL_TRUSTED_PROXIES: '127.0.0.1',
      E2EPOOL_AUTH_FAILURES_PER_MINUTE: '5',
    };
    // Both at once, as a rollout starts them: migrations run under an advisory lock.
    serves.push(...(await Promise.all([startServe('serve-a', settings), startServe('serve-b', settings)])));
    assert.notEqual(serves[0]!.instanceId, serves[1]!.instanceId);
    pgClient = new pg.Client({ connectionString: database.url });
    await pgClient.connect();

    const nginxDir = path.join(dir, 'nginx');
    const port = await findFreePort();
    const site = renderShippedSite({ tlsDir: dir, accessLog: path.join(nginxDir, 'access.log'), port, servers: serves.map((s) => new URL(s.url).host) });
    nginx = startNginx(nginxDir, site, port);
    groups.push(nginx.group);
    await eventually(withLogs('nginx to answer /healthz over TLS'), async () => (await viaNginx('GET', '/healthz')).status === 200, { timeoutMs: 20_000, intervalMs: 100 });

    // One agent, then the other once it is connected: consecutive connections through nginx's
    // round robin land on different instances.
    for (const id of RUNNER_IDS) {
      startAgent(id, port);
      await eventually(
        withLogs(`${id}'s agent to connect through nginx`),
        async () => {
          const r = await cli(id, ['status', '--json']); // exit 2 until the agent's socket exists
          return r.code === 0 && (JSON.parse(r.stdout) as { connected: boolean }).connected;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    }
    process.stdout.write(`# production shape: nginx, 2 serve instances, PostgreSQL, Temporal and 2 agents up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  });

  afterAll(async () => {
    // Agents first (they would reconnect), then nginx, the controllers, Temporal; each by its group.
    const stopAll = (list: GroupChild[]) => Promise.all(list.map((g) => g.stop({ timeoutMs: 15_000 }).catch(() => undefined)));
    await stopAll([...agents.values()].map((a) => a.group));
    await nginx?.stop().catch(() => undefined);
    await stopAll(serves.map((s) => s.group));
    await stopAll(groups);
    await temporal?.stop().catch(() => undefined);
    await pgClient?.end().catch(() => undefined);
    if (database) {
      await database.drop();
      const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await admin.connect();
      const left = await admin.query('select 1 from pg_database where datname = $1', [database.name]);
      await admin.end();
      assert.equal(left.rowCount, 0, 'the test database is dropped');
    }
    const alive = [...groups, ...(temporal ? [{ pgid: temporal.pgid }] : [])].filter((g) => g.pgid > 0 && isProcessGroupAlive(g.pgid));
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(alive.map((g) => g.pgid), [], 'every process this test started is gone');
  });

  it('nginx spreads the agents over both instances, and each session works through the proxy', async (t) => {
    if (!haveNginx) return t.skip('nginx not installed (not CI)');
    const sessions = await Promise.all(RUNNER_IDS.map((id) => agentSession(id)));
    for (const s of sessions) {
      assert.equal(s.connected, true);
      assert.match(s.controller_url ?? '', /^wss:\/\/localhost:\d+\/ws\/agent$/);
    }
    assert.deepEqual(sessions.map((s) => s.instance_id).sort(), serves.map((s) => s.instanceId).sort(), 'one agent on each instance');
    const presence = await pgClient!.query<{ runner_id: string; instance_id: string }>('select runner_id, instance_id from agent_presence order by runner_id');
    assert.deepEqual(
      presence.rows.map((r) => [r.runner_id, r.instance_id]),
      RUNNER_IDS.map((id, i) => [id, sessions[i]!.instance_id]),
      'the controllers record the same sessions',
    );
  });

  it('create → finalize success → the checkpoint is cleaned up, the host is not reset', async (t) => {
    if (!haveNginx) return t.skip('nginx not installed (not CI)');
    const runner = RUNNER_IDS[0];
    const created = await cli(runner, ['create', '--job-id', '8101', '--project-id', '7']);
    assert.equal(created.code, 0, created.stderr + logTails());
    const name = created.stdout.trim();
    assert.match(name, /^job-8101-\d+-[0-9a-f]+$/);
    const during = await cli(runner, ['status', '--checkpoint', name]);
    assert.equal(during.code, 0, during.stderr);
    assert.equal(during.stdout, `name:   ${name}\nstate:  created\n`);

    const fin = await cli(runner, ['finalize', '--checkpoint', name, '--status', 'success']);
    assert.deepEqual([fin.code, fin.stdout.trim()], [0, 'Finalize queued'], fin.stderr);
    await ended(name, 'deleted', 60_000);
    const status = await cli(runner, ['status', '--checkpoint', name]);
    assert.equal(status.stdout, `name:   ${name}\nstate:  deleted\nresult: success\n`, status.stderr);
    const path_ = await transitionsOf(name);
    assert.deepEqual(path_.slice(-2), ['cleaning', 'deleted'], `a success cleans up and never resets: ${path_.join(' → ')}`);
    assert.ok(!path_.includes('resetting'), `a success cleans up and never resets: ${path_.join(' → ')}`);
    assert.equal(readFileSync(agents.get(runner)!.cleanups, 'utf8'), 'cleanup\n', 'the cleanup command ran once on the host');
    assert.equal(existsSync(agents.get(runner)!.resets), false, 'the reset command never ran on the host');
    const again = await cli(runner, ['finalize', '--checkpoint', name, '--status', 'failure']);
    assert.deepEqual([again.code, again.stdout.trim()], [0, 'Already finalized'], again.stderr);
  });

  it('create → finalize failure → the host is reset, readiness is proven, the checkpoint ends reset', async (t) => {
    if (!haveNginx) return t.skip('nginx not installed (not CI)');
    const runner = RUNNER_IDS[1];
    const agent = agents.get(runner)!;
    const created = await cli(runner, ['create', '--job-id', '8201', '--project-id', '7']);
    assert.equal(created.code, 0, created.stderr + logTails());
    const name = created.stdout.trim();
    assert.equal(existsSync(agent.resets), false);
    const fin = await cli(runner, ['finalize', '--checkpoint', name, '--status', 'failed']);
    assert.deepEqual([fin.code, fin.stdout.trim()], [0, 'Finalize queued'], fin.stderr);
    await ended(name, 'reset', 90_000);
    assert.equal(readFileSync(agent.resets, 'utf8'), 'reset\n', 'the reset command ran once on the host');
    assert.ok(existsSync(agent.readiness), 'the readiness command ran on the host after the reset');
    assert.equal(existsSync(agent.cleanups), false, 'a failure never runs the success action');
    const path_ = await transitionsOf(name);
    assert.ok(path_.indexOf('resetting') >= 0 && path_.indexOf('resetting') < path_.indexOf('awaiting_readiness'), `reset, then readiness: ${path_.join(' → ')}`);
    assert.equal(path_.at(-1), 'reset');
    const status = await cli(runner, ['status', '--checkpoint', name]);
    assert.equal(status.stdout, `name:   ${name}\nstate:  reset\nresult: failure\n`, status.stderr);
    // The runner is usable again afterwards: its agent is still connected through nginx.
    assert.equal((await agentSession(runner)).connected, true);
  });

  it('the dashboard signs in through nginx over TLS, and its live stream is not buffered', async (t) => {
    if (!haveNginx) return t.skip('nginx not installed (not CI)');
    const page = await viaNginx('GET', '/dashboard');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    assert.match(String(page.headers.server), /^nginx/);
    assert.match(page.body, /Admin token/);
    assert.ok(!page.body.includes(ADMIN_TOKEN));

    // What the page's sign-in does: the state snapshot with the typed token.
    assert.equal((await viaNginx('GET', '/api/dashboard/state')).status, 401);
    const wrong = await viaNginx('GET', '/api/dashboard/state', { token: 'not-the-admin-token-at-all' });
    assert.deepEqual([wrong.status, JSON.parse(wrong.body)], [403, { detail: 'Invalid admin token' }]);
    const state = await viaNginx('GET', '/api/dashboard/state', { token: ADMIN_TOKEN });
    assert.equal(state.status, 200, state.body);
    const snapshot = JSON.parse(state.body) as { runners: Array<{ runnerId: string; agent: { online: boolean } }>; maintenance: { enabled: boolean } };
    assert.deepEqual(
      snapshot.runners.map((r) => [r.runnerId, r.agent.online]),
      RUNNER_IDS.map((id) => [id, true]),
    );
    assert.equal(snapshot.maintenance.enabled, false);
    for (const token of tokens.values()) assert.ok(!state.body.includes(token));

    const stream = await firstStreamBlock(ADMIN_TOKEN, 10_000);
    assert.equal(stream.status, 200);
    assert.match(stream.contentType, /^text\/event-stream/);
    assert.equal(JSON.parse(/^data: (.*)$/m.exec(stream.text)![1]!).runners.length, RUNNER_IDS.length);
  });

  it('a client whose logins fail is limited alone: others behind the same nginx still sign in, and a forged X-Forwarded-For changes nothing', async (t) => {
    if (!haveNginx) return t.skip('nginx not installed (not CI)');
    // Three clients on this machine: loopback addresses 127.0.0.2 and .3 connect to nginx; nginx
    // (from 127.0.0.1, the trusted proxy) states each one's address to the controllers.
    const lockedOut = '127.0.0.2';
    for (let i = 0; i < 12; i++) {
      await viaNginx('GET', '/api/dashboard/state', { token: `wrong-token-number-${i}-for-the-limit`, from: lockedOut, forwardedFor: `198.51.100.${i}` });
    }
    const blocked = await viaNginx('GET', '/api/dashboard/state', { token: ADMIN_TOKEN, from: lockedOut });
    assert.equal(blocked.status, 429, blocked.body);
    assert.equal((await viaNginx('GET', '/api/dashboard/state', { token: ADMIN_TOKEN, from: lockedOut, forwardedFor: '203.0.113.9' })).status, 429, 'claiming another address does not help');
    assert.equal((await viaNginx('GET', '/api/dashboard/state', { token: ADMIN_TOKEN, from: '127.0.0.3' })).status, 200, 'another client through the same nginx still gets in');
  });

  it('/metrics is not reachable through nginx, only on each instance\'s internal metrics port', async (t) => {
    if (!haveNginx) return t.skip('nginx not installed (not CI)');
    for (const variant of ['/metrics', '/METRICS', '/metrics/', '/metrics?format=text']) {
      const r = await viaNginx('GET', variant);
      assert.equal(r.status, 404, variant);
      // nginx answered itself (its HTML error page), the request never reached a controller.
      assert.match(r.body, /<center>nginx(\/[\d.]+)?<\/center>/, `${variant} is answered by nginx: ${r.body}`);
      assert.doesNotMatch(r.body, /e2epool_/, variant);
    }
    for (const s of serves) {
      const direct = await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`);
      assert.equal(direct.status, 200, `${s.name} serves /metrics on its metrics port`);
      assert.match(await direct.text(), /^# (HELP|TYPE) e2epool_/m);
      assert.equal((await fetch(`${s.url}/metrics`)).status, 404, `${s.name} does not serve /metrics on its API port`);
    }
    const log = readFileSync(path.join(dir, 'nginx', 'access.log'), 'utf8');
    assert.match(log, /"GET \/metrics" 404 /);
  });

  it("the README's pre_build_script stops the job in maintenance mode, and exports CHECKPOINT after it", async (t) => {
    if (!haveNginx) return t.skip('nginx not installed (not CI)');
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const snippet = /^pre_build_script = '(.*)'$/m.exec(readme)?.[1];
    assert.ok(snippet, "the README's GitLab snippet");
    const bin = path.join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(path.join(bin, 'e2epool'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`);
    chmodSync(path.join(bin, 'e2epool'), 0o755);
    const runner = RUNNER_IDS[0];
    // A create right after the runner's last finalize answers 429 (FINALIZE_COOLDOWN_SECONDS, 5 s):
    // let it pass, so what stops the job below is maintenance mode alone.
    await eventually(
      withLogs('the finalize cool-down of the runner'),
      async () => {
        const r = await pgClient!.query<{ age: number }>("select extract(epoch from now() - max(finalize_queued_at))::float as age from checkpoints where runner_id = $1", [runner]);
        return (r.rows[0]?.age ?? 0) > 6;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );

    const on = await viaNginx('POST', '/api/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: true, message: MAINTENANCE_MESSAGE } });
    assert.equal(on.status, 200, on.body);
    try {
      const stopped = await gitlabJob(runner, snippet, '8301');
      assert.notEqual(stopped.code, 0, 'the job stops');
      assert.doesNotMatch(stopped.stdout, /job ran/, "the job's commands did not run");
      assert.match(stopped.stderr, new RegExp(`Error: ${MAINTENANCE_MESSAGE}`));
      const none = await pgClient!.query('select 1 from checkpoints where job_id = $1', ['8301']);
      assert.equal(none.rowCount, 0, 'no checkpoint was created');
    } finally {
      const off = await viaNginx('POST', '/api/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: false } });
      assert.equal(off.status, 200, off.body);
    }

    const ran = await gitlabJob(runner, snippet, '8302');
    assert.equal(ran.code, 0, ran.stderr + logTails());
    const m = /^job ran with checkpoint=(job-8302-\d+-[0-9a-f]+)$/m.exec(ran.stdout);
    assert.ok(m, `CHECKPOINT reaches the job: ${ran.stdout}`);
    assert.equal((await checkpointRow(m[1]!))?.state, 'created');
    // The job's after_script: finalize, and the runner is clean again.
    const fin = await cli(runner, ['finalize', '--checkpoint', m[1]!, '--status', 'success']);
    assert.equal(fin.code, 0, fin.stderr);
    await ended(m[1]!, 'deleted', 60_000);
  });

  it('the agents stop cleanly; nginx logged both WebSocket sessions, without a token', async (t) => {
    if (!haveNginx) return t.skip('nginx not installed (not CI)');
    for (const agent of agents.values()) assert.deepEqual(await agent.group.stop({ timeoutMs: 15_000 }), { code: 0, signal: null }, `${agent.runnerId}'s agent exits 0 on SIGTERM`);
    // nginx writes a WebSocket's access log line when the session ends.
    const log = await eventually(
      withLogs('the WebSocket sessions in the access log'),
      () => {
        const text = readFileSync(path.join(dir, 'nginx', 'access.log'), 'utf8');
        return (text.match(/"GET \/ws\/agent" 101 /g)?.length ?? 0) >= RUNNER_IDS.length && text;
      },
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    assert.doesNotMatch(log, /\?token=|runner_id=/, 'no query string in the access log');
    for (const token of [...tokens.values(), ADMIN_TOKEN]) assert.ok(!log.includes(token), 'no token in the access log');
    const errors = readFileSync(path.join(dir, 'nginx', 'error.log'), 'utf8');
    assert.doesNotMatch(errors, /upstream|\[(error|crit|alert|emerg)\]/, `nginx reported no upstream error:\n${errors}`);
    await eventually(withLogs('the controllers to see both sessions end'), async () => (await pgClient!.query('select runner_id from agent_presence')).rowCount === 0, {
      timeoutMs: 15_000,
      intervalMs: 250,
    });
  });
});
