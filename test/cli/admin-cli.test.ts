// `e2epool admin` as an operator runs it: the real CLI process (node bin/e2epool.js admin …) against
// a real controller (startController on PostgreSQL and a Temporal dev server). Every verb with its
// table and --json shape, the exit codes (0 done, 1 refused, 2 usage or unreachable), where the URL
// and token come from (flags, environment, a 0600 config file; a readable one is refused), and that
// every timestamp the main API answers carries its zone.
// Over 400 lines on purpose: it checks one whole surface against one expensive set-up started once
// per file; split, each part would start it again.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { loadConfig } from '../../src/config.js';
import { startController, type Controller } from '../../src/controller.js';
import { createLogger } from '../../src/logger.js';
import { startTemporalDevServer } from '../../temporal/dev-server.js';
import { findFreePort } from '../../temporal/free-port.js';
import { createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { bundleWorkflowsOnce, quietTemporalRuntime, requireTemporalBinaries } from '../helpers/temporal.js';
import { AGENT_VERSION } from '../../agent/version.js';
import { eventually } from '../helpers/eventually.js';

const repo = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-admin-cli-'));
const home = path.join(dir, 'home');
const logger = createLogger({ level: 'silent' });
const ADMIN_TOKEN = 'admin-token-for-the-admin-cli-test';
const RUNNER_TOKEN = 'bm-1-token-0123456789abcdef';
const ISO_WITH_ZONE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z$/;

let temporal: Awaited<ReturnType<typeof startTemporalDevServer>>;
let database: TestDatabase;
let controller: Controller;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as its own process, with a clean environment: no E2EPOOL_* of the caller, HOME of the test. */
function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const base: NodeJS.ProcessEnv = { HOME: home, PATH: process.env.PATH };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin/e2epool.js'), ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `e2epool admin <args>` with --url and --token. */
const admin = (...args: string[]) => cli(['admin', ...args, '--url', controller.url, '--token', ADMIN_TOKEN]);
const adminJson = async (...args: string[]) => {
  const r = await admin(...args, '--json');
  assert.equal(r.code, 0, `admin ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};

async function http(method: string, p: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${controller.url}${p}`, {
    method,
    headers: { authorization: `Bearer ${opts.token ?? ADMIN_TOKEN}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** The controller's workflows run on a real clock: give them long enough on a loaded machine. */
const SLOW = { timeoutMs: 90_000, intervalMs: 250 };

/** Every timestamp-looking string in an answer, with where it is. */
function timestampsIn(value: unknown, where: string, out: Array<{ where: string; value: string }> = []): Array<{ where: string; value: string }> {
  if (Array.isArray(value)) value.forEach((v, i) => timestampsIn(v, `${where}[${i}]`, out));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) timestampsIn(v, `${where}.${k}`, out);
  else if (typeof value === 'string' && /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d/.test(value)) out.push({ where, value });
  return out;
}

let checkpointName: string;

beforeAll(async () => {
  requireTemporalBinaries(['cli']);
  quietTemporalRuntime();
  temporal = await startTemporalDevServer({ logger, dbFile: path.join(dir, 'temporal.sqlite'), ui: false });
  database = await createPostgresDatabase('e2epool_admin_cli');
  writeFileSync(
    path.join(dir, 'inventory.yml'),
    ['runners:', '  - runner_id: bm-1', '    backend: bare_metal', `    token: ${RUNNER_TOKEN}`, '    reset_cmd: "true"', '    reset_mode: in_place'].join('\n'),
  );
  const config = loadConfig({
    E2EPOOL_DATABASE_URL: database.url,
    E2EPOOL_INVENTORY_PATH: path.join(dir, 'inventory.yml'),
    E2EPOOL_TEMPORAL_ADDRESS: temporal.address,
    E2EPOOL_TEMPORAL_REGISTER_SEARCH_ATTRIBUTES: 'true',
    E2EPOOL_TASK_QUEUE: 'admin-cli',
    E2EPOOL_PORT: '0',
    E2EPOOL_HOST: '127.0.0.1',
    E2EPOOL_LOG_LEVEL: 'silent',
    E2EPOOL_ADMIN_TOKEN: ADMIN_TOKEN,
    E2EPOOL_SHUTDOWN_GRACE_SECONDS: '1',
    E2EPOOL_FINALIZE_COOLDOWN_SECONDS: '0',
    E2EPOOL_AGENT_ROUTE_ATTEMPTS: '1',
    E2EPOOL_POLLER_ENABLED: 'false',
    E2EPOOL_INSTANCE_ID: 'admin-cli-test',
  });
  controller = await startController(config, { logger, workflowBundle: await bundleWorkflowsOnce() });

  // A checkpoint whose reset cannot run (no agent is connected): it ends in needs_attention.
  const created = await http('POST', '/checkpoint/create', { token: RUNNER_TOKEN, body: { runner_id: 'bm-1', job_id: '4711' } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  checkpointName = created.body.name;
  const finalized = await http('POST', '/checkpoint/finalize', { token: RUNNER_TOKEN, body: { checkpoint_name: checkpointName, status: 'failure' } });
  assert.equal(finalized.status, 202, JSON.stringify(finalized.body));
  await eventually('needs attention', async () => (await http('GET', `/api/checkpoints/${checkpointName}`)).body?.checkpoint?.state === 'needs_attention', SLOW);

  // An API runner (rotate-token and delete apply to those) and a webhook the dispatcher gave up on.
  assert.equal((await http('POST', '/api/runners', { body: { runner_id: 'api-1', backend: 'bare_metal', reset_cmd: 'true' } })).status, 201);
  await database.db.execute(
    sql`insert into webhook_inbox (event_id, provider, job_id, status, payload, attempts, outcome, last_error)
        values ('gitlab-given-up-1', 'gitlab', '4712', 'success', '{}'::jsonb, 20, 'gave_up', 'Error: Temporal unavailable')`,
  );
});

afterAll(async () => {
  await controller?.stop();
  await database?.drop();
  await temporal?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('e2epool admin against a real controller', { timeout: 300_000 }, () => {
  it('--version on the CLI and on the agent-only entry', async () => {
    const [full, agentOnly] = await Promise.all([
      cli(['--version']),
      new Promise<CliResult>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'agent/main.ts'), '--version'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      }),
    ]);
    assert.deepEqual(full, { code: 0, stdout: `${AGENT_VERSION}\n`, stderr: '' });
    assert.deepEqual(agentOnly, { code: 0, stdout: `${AGENT_VERSION}\n`, stderr: '' });
  });

  it('runners: list, show, drain, undrain, rotate-token, delete', async () => {
    const list = await admin('runners', 'list');
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^RUNNER\s+BACKEND\s+SOURCE\s+ACTIVE\s+DRAINED\s+CREDENTIAL\s+UPDATED$/);
    assert.ok(lines.some((l) => /^bm-1\s+bare_metal\s+inventory\s+yes\s+no\s+runner_token\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(l)), list.stdout);
    assert.ok(lines.some((l) => l.startsWith('api-1 ')), list.stdout);

    const listed = await adminJson('runners', 'list');
    assert.ok(Array.isArray(listed));
    assert.deepEqual(listed.map((r: any) => r.runner_id).sort(), ['api-1', 'bm-1']);
    assert.ok(!JSON.stringify(listed).includes(RUNNER_TOKEN), 'no secrets');

    const shown = await admin('runners', 'show', 'bm-1');
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^runner:\s+bm-1$/m);
    assert.match(shown.stdout, /^reset mode:\s+in_place$/m);
    assert.equal((await adminJson('runners', 'show', 'bm-1')).runner_id, 'bm-1');

    const drained = await admin('runners', 'drain', 'bm-1');
    assert.deepEqual(drained, { code: 0, stdout: 'Runner bm-1 drained: new creates on it are refused (409) until undrain.\n', stderr: '' });
    assert.equal((await adminJson('runners', 'show', 'bm-1')).drained, true);
    const undrained = await adminJson('runners', 'undrain', 'bm-1');
    assert.equal(undrained.drained, false);

    const rotated = await admin('runners', 'rotate-token', 'api-1');
    assert.equal(rotated.code, 0, rotated.stderr);
    const token = rotated.stdout.trimEnd().split('\n').at(-1)!;
    assert.match(rotated.stdout, /^New runner token of api-1 \(shown once/);
    assert.ok(token.length >= 24, rotated.stdout);
    const rotatedJson = await adminJson('runners', 'rotate-token', 'api-1');
    assert.equal(typeof rotatedJson.token, 'string');
    assert.notEqual(rotatedJson.token, token);

    const deleted = await admin('runners', 'delete', 'api-1');
    assert.deepEqual(deleted, { code: 0, stdout: "Runner 'api-1' deactivated\n", stderr: '' });
    assert.deepEqual((await adminJson('runners', 'list')).map((r: any) => r.runner_id), ['bm-1']);
    assert.ok((await adminJson('runners', 'list', '--all')).some((r: any) => r.runner_id === 'api-1' && r.is_active === false));
  });

  it('refusals exit 1 with the controller message; usage errors and an unreachable controller exit 2', async () => {
    const port = await findFreePort();
    const [unknownRunner, wrongToken, noVerb, badSince, noMessage, unreachable, notInAttention] = await Promise.all([
      admin('runners', 'drain', 'no-such-runner'),
      cli(['admin', 'runners', 'list', '--url', controller.url, '--token', 'wrong-token-of-the-right-length']),
      admin('runners'),
      admin('checkpoints', 'list', '--since', 'yesterday'),
      admin('maintenance', 'on'),
      cli(['admin', 'runners', 'list', '--url', `http://127.0.0.1:${port}`, '--token', ADMIN_TOKEN]),
      admin('retry-reset', 'job-none-1700000000-abcdef12'),
    ]);
    assert.deepEqual(unknownRunner, { code: 1, stdout: '', stderr: 'Error: Runner not found (HTTP 404)\n' });
    assert.deepEqual(wrongToken, { code: 1, stdout: '', stderr: 'Error: Invalid admin token (HTTP 403)\n' });
    assert.equal(noVerb.code, 2);
    assert.match(noVerb.stderr, /Name a runners verb/);
    assert.equal(badSince.code, 2);
    assert.match(badSince.stderr, /--since must be an ISO 8601 time .* or an age such as 30m, 24h, 7d; got 'yesterday'/);
    assert.equal(noMessage.code, 2);
    assert.match(noMessage.stderr, /maintenance on needs a message/);
    assert.equal(unreachable.code, 2);
    assert.equal(unreachable.stderr, `Error: cannot reach the controller at http://127.0.0.1:${port} (from --url): connect ECONNREFUSED 127.0.0.1:${port}\n`);
    assert.deepEqual(notInAttention, { code: 1, stdout: '', stderr: 'Error: Checkpoint not found (HTTP 404)\n' });
  });

  it('URL and token from the environment, or from a config file that must be mode 0600, ours and not a link', async () => {
    const env = { E2EPOOL_URL: controller.url, E2EPOOL_ADMIN_TOKEN: ADMIN_TOKEN };
    const fromEnv = await cli(['admin', 'maintenance', 'status'], env);
    assert.deepEqual(fromEnv, { code: 0, stdout: 'Maintenance is off: creates are accepted.\n', stderr: '' });

    const none = await cli(['admin', 'maintenance', 'status']);
    assert.equal(none.code, 2);
    assert.equal(none.stderr, `Error: no controller URL: pass --url, set E2EPOOL_URL, or put url: in ${path.join(home, '.config/e2epool/admin.yml')}\n`);

    // The default file, private: used.
    const file = path.join(home, '.config/e2epool/admin.yml');
    await import('node:fs/promises').then((fs) => fs.mkdir(path.dirname(file), { recursive: true }));
    writeFileSync(file, `url: ${controller.url}\ntoken: ${ADMIN_TOKEN}\n`);
    chmodSync(file, 0o600);
    const fromFile = await cli(['admin', 'maintenance', 'status', '--json']);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(JSON.parse(fromFile.stdout).enabled, false);

    // Readable by the group or others: refused, naming the path, before anything is sent.
    chmodSync(file, 0o644);
    const readable = await cli(['admin', 'maintenance', 'status']);
    assert.equal(readable.code, 2);
    assert.equal(readable.stderr, `Error: refusing to read ${file}: it holds the admin token but its mode is 0644 (group or others may read it); run: chmod 600 ${file}\n`);
    chmodSync(file, 0o640);
    assert.equal((await cli(['admin', 'maintenance', 'status'])).code, 2);

    // --config names another file; flags win over it.
    const other = path.join(dir, 'other.yml');
    writeFileSync(other, `url: http://127.0.0.1:9\ntoken: ${ADMIN_TOKEN}\n`, { mode: 0o600 });
    const flagWins = await cli(['admin', 'maintenance', 'status', '--config', other, '--url', controller.url]);
    assert.equal(flagWins.code, 0, flagWins.stderr);
    const missing = await cli(['admin', 'maintenance', 'status', '--config', path.join(dir, 'absent.yml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read the admin config .*absent\.yml: ENOENT/);
    // A symbolic link is refused (it could be pointed elsewhere between a check and the read).
    const link = path.join(dir, 'link.yml');
    symlinkSync(other, link);
    const linked = await cli(['admin', 'maintenance', 'status', '--config', link]);
    assert.equal(linked.code, 2);
    assert.equal(linked.stderr, `Error: refusing to read ${link}: it is a symbolic link (point --config at the file itself)\n`);
    rmSync(file);
  });

  it('checkpoints list and show, retry-reset, release', async () => {
    const listed = await admin('checkpoints', 'list', '--state', 'needs_attention', '--since', '1h');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^NAME\s+RUNNER\s+JOB\s+STATE\s+RESULT\s+REASON\s+CREATED$/m);
    assert.match(listed.stdout, new RegExp(`^${checkpointName}\\s+bm-1\\s+4711\\s+needs_attention\\s+failure\\s+\\S+\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`, 'm'));
    assert.match(listed.stdout, /^1 of 1$/m);
    const page = await adminJson('checkpoints', 'list', '--state', 'needs_attention');
    assert.deepEqual(Object.keys(page).sort(), ['items', 'nextCursor', 'total']);
    assert.equal(page.items[0].name, checkpointName);
    assert.equal((await adminJson('checkpoints', 'list', '--state', 'needs_attention', '--since', '2999-01-01T00:00:00Z')).total, 0);
    const badState = await admin('checkpoints', 'list', '--state', 'exploded');
    assert.equal(badState.code, 1);
    assert.match(badState.stderr, /^Error: query\.state: Value error, unknown state 'exploded'/);

    const shown = await admin('checkpoints', 'show', checkpointName);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^state:\s+needs_attention$/m);
    assert.match(shown.stdout, /^SEQ\s+AT\s+FROM\s+TO\s+EVENT\s+DETAIL$/m);
    const detail = await adminJson('checkpoints', 'show', checkpointName);
    assert.deepEqual(Object.keys(detail).sort(), ['checkpoint', 'temporalUiUrl', 'transitions']);

    const retried = await admin('retry-reset', checkpointName);
    assert.deepEqual(retried, { code: 0, stdout: `Reset retry requested: ${checkpointName} (follow it with: e2epool admin checkpoints show ${checkpointName})\n`, stderr: '' });
    // The retry fails again (still no agent) and comes back to needs attention.
    await eventually('back in needs attention', async () => {
      const d = (await http('GET', `/api/checkpoints/${checkpointName}`)).body;
      const events = d.transitions.map((t: any) => t.event);
      return events.includes('retry_reset') && events.lastIndexOf('step_failed') > events.indexOf('retry_reset') && d.checkpoint.state === 'needs_attention';
    }, SLOW);
    const released = await adminJson('release', checkpointName, '--delete-snapshot');
    assert.deepEqual(released, { detail: 'Release requested', checkpoint_name: checkpointName });
    await eventually('released', async () => (await http('GET', `/api/checkpoints/${checkpointName}`)).body.checkpoint.state === 'released', SLOW);
    const again = await admin('release', checkpointName);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is not in needs_attention \(state: released\) \(HTTP 409\)/);
  });

  it('maintenance on, status, off', async () => {
    const on = await admin('maintenance', 'on', 'Upgrading, back at 14:00');
    assert.deepEqual(on, { code: 0, stdout: 'Maintenance is ON: new creates answer 503 "Upgrading, back at 14:00".\n', stderr: '' });
    assert.deepEqual(await adminJson('maintenance', 'status'), { enabled: true, message: 'Upgrading, back at 14:00' });
    const refused = await http('POST', '/checkpoint/create', { token: RUNNER_TOKEN, body: { runner_id: 'bm-1', job_id: '4713' } });
    assert.deepEqual(refused, { status: 503, body: { detail: 'Upgrading, back at 14:00' } });
    assert.deepEqual(await admin('maintenance', 'off'), { code: 0, stdout: 'Maintenance is off: creates are accepted.\n', stderr: '' });
    const extra = await admin('maintenance', 'off', 'why');
    assert.equal(extra.code, 2);
  });

  it('cleanup (dry run and real) and the orphan audit', async () => {
    const dry = await admin('cleanup', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^Dry run: older than 90 days, these rows would be deleted:\nTABLE\s+ROWS\ncheckpoints\s+0\n/);
    const real = await adminJson('cleanup');
    assert.deepEqual(Object.keys(real).sort(), ['alerts', 'auditLog', 'checkpointTransitions', 'checkpoints', 'dryRun', 'retentionDays', 'webhookInbox']);
    assert.equal(real.dryRun, false);

    const orphans = await admin('orphans');
    assert.equal(orphans.code, 0, orphans.stderr);
    assert.match(orphans.stdout, /^0 orphan snapshot\(s\) on 0 checked runner\(s\); alert: \w+\n$/);
    assert.deepEqual(Object.keys(await adminJson('orphans')).sort(), ['alert', 'checkedRunners', 'orphans', 'unchecked']);
  });

  it('webhooks list and requeue', async () => {
    const listed = await admin('webhooks', 'list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^EVENT\s+PROVIDER\s+JOB\s+STATUS\s+ATTEMPTS\s+RECEIVED\s+LAST ERROR$/m);
    assert.match(listed.stdout, /^gitlab-given-up-1\s+gitlab\s+4712\s+success\s+20\s+\S+Z\s+Error: Temporal unavailable$/m);
    const listedJson = await adminJson('webhooks', 'list');
    assert.equal(listedJson.givenUp.length, 1);
    assert.deepEqual(Object.keys(listedJson.givenUp[0]).sort(), ['attempts', 'event_id', 'job_id', 'last_error', 'provider', 'received_at', 'status']);

    const requeued = await admin('webhooks', 'requeue', 'gitlab-given-up-1');
    assert.deepEqual(requeued, { code: 0, stdout: 'Webhook requeued: gitlab-given-up-1 (it had 20 failed attempts)\n', stderr: '' });
    // The dispatcher takes it at once: no active checkpoint for job 4712, so it is done.
    await eventually('delivered', async () => {
      const r: any = await database.db.execute(sql`select outcome from webhook_inbox where event_id = 'gitlab-given-up-1'`);
      return r.rows[0]?.outcome === 'no_active_checkpoint';
    }, { timeoutMs: 20_000, intervalMs: 250 });
    const twice = await admin('webhooks', 'requeue', 'gitlab-given-up-1');
    assert.deepEqual(twice, { code: 1, stdout: '', stderr: "Error: Webhook event 'gitlab-given-up-1' was not given up (it is already delivered) (HTTP 409)\n" });
    const unknown = await admin('webhooks', 'requeue', 'no-such-event');
    assert.deepEqual(unknown, { code: 1, stdout: '', stderr: "Error: Webhook event 'no-such-event' not found (HTTP 404)\n" });
    assert.deepEqual(await admin('webhooks', 'list'), { code: 0, stdout: 'No given-up webhook deliveries.\n', stderr: '' });
  });

  it('audit shows what the verbs above changed', async () => {
    const entries = (await adminJson('audit', '--since', '1h', '--limit', '1000')).entries as Array<{ action: string; target: string | null; actor: string }>;
    const actions = new Set(entries.map((e) => e.action));
    for (const action of ['runner.drain', 'runner.undrain', 'runner.rotate_token', 'runner.deactivate', 'checkpoint.retry_reset', 'checkpoint.release', 'maintenance.enable', 'maintenance.disable', 'housekeeping.cleanup', 'webhook.requeue']) {
      assert.ok(actions.has(action), `${action} in ${[...actions].join(', ')}`);
    }
    assert.ok(!actions.has('housekeeping.dry_run'));
    const table = await admin('audit', '--since', '1h');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^AT\s+ACTOR\s+ACTION\s+TARGET\s+DETAIL$/m);
    assert.match(table.stdout, /^\S+Z\s+admin\s+webhook\.requeue\s+gitlab-given-up-1\s+\{"previousAttempts":20\}$/m);
    assert.deepEqual((await adminJson('audit', '--since', '2999-01-01T00:00:00Z')).entries, []);
  });

  it('every verb has --help with examples', async () => {
    const verbs = [
      ['runners', 'list'],
      ['runners', 'show'],
      ['runners', 'drain'],
      ['runners', 'undrain'],
      ['runners', 'rotate-token'],
      ['runners', 'delete'],
      ['checkpoints', 'list'],
      ['checkpoints', 'show'],
      ['retry-reset'],
      ['release'],
      ['maintenance'],
      ['cleanup'],
      ['orphans'],
      ['webhooks', 'list'],
      ['webhooks', 'requeue'],
      ['audit'],
    ];
    const results = await Promise.all(verbs.map((v) => cli(['admin', ...v, '--help'])));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, `${verbs[i]!.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Examples:\n\s+e2epool admin /, verbs[i]!.join(' '));
    });
  });

  it('every timestamp of the main API answers is ISO 8601 with its zone', async () => {
    const runnerAuth = { token: RUNNER_TOKEN };
    const answers: Array<[string, { status: number; body: any }]> = [];
    for (const [method, p, opts] of [
      ['GET', '/api/runners?include_inactive=true', {}],
      ['GET', '/api/runners/bm-1', {}],
      ['POST', '/api/runners/bm-1/drain', {}],
      ['POST', '/api/runners/bm-1/undrain', {}],
      ['GET', '/api/checkpoints?limit=100', {}],
      ['GET', `/api/checkpoints/${checkpointName}`, {}],
      ['GET', `/checkpoint/status/${checkpointName}`, runnerAuth],
      ['GET', '/api/audit?limit=1000', {}],
      ['GET', '/api/admin/maintenance', {}],
      ['GET', '/api/admin/webhooks', {}],
      ['GET', '/api/stats/summary?days=2', {}],
      ['POST', '/api/admin/cleanup', { body: { dryRun: true } }],
      ['GET', '/api/admin/orphan-snapshots', {}],
      ['GET', '/health', {}],
      ['GET', '/healthz', {}],
    ] as const) {
      answers.push([`${method} ${p}`, await http(method, p, opts)]);
    }
    const problems: string[] = [];
    let seen = 0;
    for (const [what, answer] of answers) {
      assert.ok(answer.status < 300, `${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
      for (const t of timestampsIn(answer.body, what)) {
        seen++;
        if (!ISO_WITH_ZONE.test(t.value)) problems.push(`${t.where}: ${t.value}`);
      }
    }
    assert.ok(seen > 20, `only ${seen} timestamps found`);
    assert.deepEqual(problems, []);
  });

  it("runs every e2epool admin command the runbook shows: none is a usage error", async () => {
    const runbook = readFileSync(path.join(repo, 'docs', 'runbook.md'), 'utf8');
    const shown = new Set<string>();
    for (const m of runbook.matchAll(/`(e2epool admin [^`]+)`/g)) shown.add(m[1]!);
    for (const m of runbook.matchAll(/^```[a-z]*\n([\s\S]*?)^```/gm)) for (const line of m[1]!.split('\n')) if (line.startsWith('e2epool admin ')) shown.add(line.replace(/\s+#.*$/, '').trim());
    // Synopses (`[--all]`, `--state S`) describe a verb; the commands an operator types are the rest.
    const commands = [...shown].filter((c) => !/[[\]…]|\s(S|T|R)\b/.test(c));
    assert.ok(commands.length >= 15, `only ${commands.length} runbook commands found`);
    const placeholders: Record<string, string> = { '<name>': checkpointName, '<id>': 'bm-1', '<event id>': 'gitlab-given-up-1', '<message>': 'Runbook drill' };
    const ran: string[] = [];
    for (const command of commands) {
      const words = [...command.replace(/<[a-z ]+>/g, (p) => placeholders[p] ?? p).matchAll(/"([^"]*)"|(\S+)/g)].map((w) => w[1] ?? w[2]!);
      assert.deepEqual(words.slice(0, 2), ['e2epool', 'admin'], command);
      assert.equal(words.some((w) => w.startsWith('<')), false, `unknown placeholder in: ${command}`);
      const r = await admin(...words.slice(2));
      // 0 done; 1 the controller refused (a 4xx for this state of the pool); never 2 (usage).
      assert.ok(r.code === 0 || (r.code === 1 && /HTTP 4\d\d/.test(r.stderr)), `${command} → exit ${r.code}: ${r.stderr}`);
      ran.push(`${r.code} ${command}`);
    }
    process.stdout.write(`# runbook admin commands run: ${ran.length}\n${ran.map((l) => `#   ${l}`).join('\n')}\n`);
  });
});
