// `e2epool admin …`: the operator's verbs over the controller's admin HTTP API (never the database).
// Each verb is one or two HTTP calls; people get a table, scripts get `--json` (the API's answer).
// Exit codes: 0 done, 1 the controller refused (its message is shown), 2 usage error or no answer.
import type { Argv } from 'yargs';
import { resolveAdminConnection, type AdminConnection } from './connection.js';
import { AdminUsageError, isAdminError } from './errors.js';
import { adminRequest, type AdminRequest } from './http.js';
import { fields, json, shortTime, table } from './output.js';

export interface AdminGlobalArgs {
  url?: string;
  token?: string;
  config?: string;
  json: boolean;
  timeout?: number;
}

/** What a verb prints: `text` for people, `data` with --json. */
interface Printed {
  text: string;
  data: unknown;
}

type Call = <T = any>(req: Omit<AdminRequest, 'timeoutMs'> & { timeoutMs?: number }) => Promise<T>;

interface VerbContext {
  call: Call;
  connection: AdminConnection;
}

/** Short waits for reads and flags; housekeeping runs may take minutes (the API waits up to 10). */
const DEFAULT_TIMEOUT_MS = 30_000;
const HOUSEKEEPING_TIMEOUT_MS = 11 * 60_000;

export const globalOptions = (y: Argv) =>
  y
    .option('url', { type: 'string', describe: 'Controller base URL (default: E2EPOOL_URL, else url: of the config file)' })
    .option('token', { type: 'string', describe: 'Admin token (other users can see it in ps: prefer E2EPOOL_ADMIN_TOKEN or the config file)' })
    .option('config', { type: 'string', describe: 'YAML file with url: and token:, mode 0600 (default: ~/.config/e2epool/admin.yml)' })
    .option('json', { type: 'boolean', default: false, describe: "Print the API's JSON answer instead of a table" })
    .option('timeout', { type: 'number', describe: 'Seconds to wait for the controller (default 30; cleanup and orphans 660)' });

/** Runs one verb: resolves the connection, prints, sets the exit code. Never throws. */
function run<A extends AdminGlobalArgs>(verb: (ctx: VerbContext, args: A) => Promise<Printed>): (args: any) => Promise<void> {
  return async (args: A) => {
    try {
      if (args.timeout !== undefined && !(Number.isFinite(args.timeout) && args.timeout > 0)) throw new AdminUsageError('--timeout must be a positive number of seconds');
      const connection = resolveAdminConnection({ url: args.url, token: args.token, config: args.config });
      const call: Call = (req) => adminRequest(connection, { ...req, timeoutMs: args.timeout !== undefined ? args.timeout * 1000 : (req.timeoutMs ?? DEFAULT_TIMEOUT_MS) });
      const printed = await verb({ call, connection }, args);
      process.stdout.write(args.json ? json(printed.data) : printed.text);
      process.exitCode = 0;
    } catch (err) {
      if (!isAdminError(err)) throw err;
      process.stderr.write(`Error: ${err.message}\n`);
      process.exitCode = err.exitCode;
    }
  };
}

const enc = encodeURIComponent;

/** `--since`: an ISO 8601 time, or an age such as 30m, 24h, 7d (from now). */
export function parseSince(value: string | undefined, flag = '--since', now = Date.now()): string | undefined {
  if (value === undefined || value === '') return undefined;
  const age = /^(\d{1,6})([smhd])$/.exec(value.trim());
  if (age) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now - Number(age[1]) * unit).toISOString();
  }
  if (/^\d{4}-\d\d-\d\d/.test(value) && !Number.isNaN(new Date(value).getTime())) {
    // A time without a zone is UTC, as the API reads it.
    return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) || !value.includes('T') ? value : `${value}Z`).toISOString();
  }
  throw new AdminUsageError(`${flag} must be an ISO 8601 time (2026-12-01T00:00:00Z) or an age such as 30m, 24h, 7d; got '${value}'`);
}

// ---------------------------------------------------------------------------------------------
// runners

type RunnerView = Record<string, any>;

function runnerFields(r: RunnerView): string {
  return fields([
    ['runner', r.runner_id],
    ['backend', r.backend],
    ['source', r.source],
    ['active', r.is_active],
    ['drained', r.drained],
    ['credential', r.agent_credential],
    ['gitlab runner', r.gitlab_runner_id],
    ...(r.backend === 'proxmox' ? ([['proxmox', `${r.proxmox_host ?? '-'} node ${r.proxmox_node ?? '-'} vmid ${r.proxmox_vmid ?? '-'}`]] as Array<[string, string]>) : []),
    ['reset mode', r.reset_mode],
    ['success action', r.success_action],
    ['tags', Array.isArray(r.tags) && r.tags.length ? r.tags.join(', ') : null],
    ['created', shortTime(r.created_at)],
    ['updated', shortTime(r.updated_at)],
  ]);
}

type RunnerArgs = AdminGlobalArgs & { runner: string };
const runnerPositional = (y: Argv) => y.positional('runner', { type: 'string', demandOption: true, describe: 'Runner id' });

const runnersCommand = {
  command: 'runners',
  describe: 'List, show, drain, undrain, rotate the token of, or delete runners',
  builder: (y: Argv) =>
    y
      .command({
        command: 'list',
        describe: 'List the runners (active ones; --all adds deactivated ones)',
        builder: (b: Argv) =>
          b
            .option('all', { type: 'boolean', default: false, describe: 'Include deactivated runners' })
            .example('$0 admin runners list', 'Active runners as a table')
            .example('$0 admin runners list --all --json', 'Every runner, as JSON'),
        handler: run<AdminGlobalArgs & { all: boolean }>(async ({ call }, args) => {
          const list = await call<RunnerView[]>({ method: 'GET', path: '/api/runners', query: { include_inactive: args.all } });
          const rows = list.map((r) => [r.runner_id, r.backend, r.source, r.is_active, r.drained, r.agent_credential, shortTime(r.updated_at)]);
          return { data: list, text: list.length ? table(['RUNNER', 'BACKEND', 'SOURCE', 'ACTIVE', 'DRAINED', 'CREDENTIAL', 'UPDATED'], rows) : 'No runners.\n' };
        }),
      })
      .command({
        command: 'show <runner>',
        describe: "Show one runner's configuration (never its secrets)",
        builder: (b: Argv) => runnerPositional(b).example('$0 admin runners show pve-runner-1', 'One runner'),
        handler: run<RunnerArgs>(async ({ call }, args) => {
          const r = await call<RunnerView>({ method: 'GET', path: `/api/runners/${enc(args.runner)}` });
          return { data: r, text: runnerFields(r) };
        }),
      })
      .command({
        command: 'drain <runner>',
        describe: 'Drain a runner: it takes no new checkpoints; the one it has runs to its end',
        builder: (b: Argv) => runnerPositional(b).example('$0 admin runners drain pve-runner-1', 'Before maintenance of that host'),
        handler: run<RunnerArgs>(async ({ call }, args) => {
          const r = await call<RunnerView>({ method: 'POST', path: `/api/runners/${enc(args.runner)}/drain` });
          return { data: r, text: `Runner ${r.runner_id} drained: new creates on it are refused (409) until undrain.\n` };
        }),
      })
      .command({
        command: 'undrain <runner>',
        describe: 'Undrain a runner: it takes new checkpoints again',
        builder: (b: Argv) => runnerPositional(b).example('$0 admin runners undrain pve-runner-1', 'After maintenance'),
        handler: run<RunnerArgs>(async ({ call }, args) => {
          const r = await call<RunnerView>({ method: 'POST', path: `/api/runners/${enc(args.runner)}/undrain` });
          return { data: r, text: `Runner ${r.runner_id} undrained: it takes new checkpoints again.\n` };
        }),
      })
      .command({
        command: 'rotate-token <runner>',
        describe: 'Give an API runner a new runner token (shown once); its agent sessions are closed',
        builder: (b: Argv) =>
          runnerPositional(b)
            .example('$0 admin runners rotate-token api-runner-7', 'Prints the new token once')
            .example('$0 admin runners rotate-token api-runner-7 --json | jq -r .token', 'Only the token, for a secret store'),
        handler: run<RunnerArgs>(async ({ call }, args) => {
          const r = await call<RunnerView>({ method: 'POST', path: `/api/runners/${enc(args.runner)}/rotate-token` });
          return {
            data: r,
            text: `New runner token of ${r.runner_id} (shown once; the old one no longer works, its agent sessions were closed):\n${String(r.token)}\n`,
          };
        }),
      })
      .command({
        command: 'delete <runner>',
        describe: 'Deactivate an API runner (its records stay; inventory runners are removed from inventory.yml instead)',
        builder: (b: Argv) => runnerPositional(b).example('$0 admin runners delete api-runner-7', 'Deactivates the runner'),
        handler: run<RunnerArgs>(async ({ call }, args) => {
          const answer = await call<{ detail: string }>({ method: 'DELETE', path: `/api/runners/${enc(args.runner)}` });
          return { data: answer, text: `${answer.detail}\n` };
        }),
      })
      .demandCommand(1, 'Name a runners verb: list, show, drain, undrain, rotate-token, delete')
      .example('$0 admin runners list', '')
      .example('$0 admin runners drain pve-runner-1', ''),
  handler: () => undefined,
};

// ---------------------------------------------------------------------------------------------
// checkpoints

type CheckpointItem = Record<string, any>;

const checkpointsCommand = {
  command: 'checkpoints',
  describe: 'List checkpoints or show one with its transition log',
  builder: (y: Argv) =>
    y
      .command({
        command: 'list',
        describe: 'List checkpoints, newest first',
        builder: (b: Argv) =>
          b
            .option('state', { type: 'string', describe: 'Comma-separated states, or active / failed (e.g. needs_attention)' })
            .option('since', { type: 'string', describe: 'Created at or after: ISO 8601 time or an age (30m, 24h, 7d)' })
            .option('until', { type: 'string', describe: 'Created at or before: ISO 8601 time or an age' })
            .option('runner', { type: 'string', describe: 'Only this runner' })
            .option('limit', { type: 'number', describe: 'Items per page, 1 to 500 (default 50)' })
            .option('cursor', { type: 'string', describe: 'Next page: the cursor the previous page printed' })
            .example('$0 admin checkpoints list --state needs_attention', 'What needs an operator')
            .example('$0 admin checkpoints list --state failed --since 24h', 'Failures of the last day')
            .example('$0 admin checkpoints list --runner pve-runner-1 --json', 'One runner, as JSON'),
        handler: run<AdminGlobalArgs & { state?: string; since?: string; until?: string; runner?: string; limit?: number; cursor?: string }>(async ({ call }, args) => {
          const body = await call<{ total: number; items: CheckpointItem[]; nextCursor: string | null }>({
            method: 'GET',
            path: '/api/checkpoints',
            query: { state: args.state, since: parseSince(args.since), until: parseSince(args.until, '--until'), runner: args.runner, limit: args.limit, cursor: args.cursor },
          });
          if (body.items.length === 0) return { data: body, text: 'No checkpoints match.\n' };
          const rows = body.items.map((c) => [c.name, c.runner_id, c.job_id, c.state, c.finalize_status, c.needs_attention_reason, shortTime(c.created_at)]);
          let text = table(['NAME', 'RUNNER', 'JOB', 'STATE', 'RESULT', 'REASON', 'CREATED'], rows);
          text += `${body.items.length} of ${body.total}${body.nextCursor ? `; next page: --cursor ${body.nextCursor}` : ''}\n`;
          return { data: body, text };
        }),
      })
      .command({
        command: 'show <name>',
        describe: 'One checkpoint: its record, its transition log and its Temporal UI link',
        builder: (b: Argv) =>
          b.positional('name', { type: 'string', demandOption: true, describe: 'Checkpoint name' }).example('$0 admin checkpoints show job-4711-1767225600-0a1b2c3d', ''),
        handler: run<AdminGlobalArgs & { name: string }>(async ({ call }, args) => {
          const d = await call<{ checkpoint: CheckpointItem; transitions: Array<Record<string, any>>; temporalUiUrl: string }>({
            method: 'GET',
            path: `/api/checkpoints/${enc(args.name)}`,
          });
          const c = d.checkpoint;
          let text = fields([
            ['name', c.name],
            ['runner', c.runner_id],
            ['job', c.job_id],
            ['state', c.state],
            ['result', c.finalize_status],
            ['finalized by', c.finalize_source],
            ['reason', c.needs_attention_reason],
            ['detail', c.detail],
            ['created', shortTime(c.created_at)],
            ['finalized', shortTime(c.finalized_at)],
            ['ended', shortTime(c.ended_at)],
            ['temporal', d.temporalUiUrl],
          ]);
          text += '\n' + table(['SEQ', 'AT', 'FROM', 'TO', 'EVENT', 'DETAIL'], d.transitions.map((t) => [t.seq, shortTime(t.at), t.from, t.to, t.event, t.detail]));
          return { data: d, text };
        }),
      })
      .demandCommand(1, 'Name a checkpoints verb: list, show'),
  handler: () => undefined,
};

// ---------------------------------------------------------------------------------------------
// single verbs

const retryResetCommand = {
  command: 'retry-reset <name>',
  describe: 'Run the reset of a checkpoint in needs_attention again',
  builder: (y: Argv) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'Checkpoint name' })
      .example('$0 admin retry-reset job-4711-1767225600-0a1b2c3d', 'After fixing what made the reset fail'),
  handler: run<AdminGlobalArgs & { name: string }>(async ({ call }, args) => {
    const answer = await call<{ detail: string; checkpoint_name: string }>({ method: 'POST', path: `/api/checkpoints/${enc(args.name)}/retry-reset` });
    return { data: answer, text: `${answer.detail}: ${answer.checkpoint_name} (follow it with: e2epool admin checkpoints show ${answer.checkpoint_name})\n` };
  }),
};

const releaseCommand = {
  command: 'release <name>',
  describe: 'Give up on a checkpoint in needs_attention and free its runner without a reset',
  builder: (y: Argv) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'Checkpoint name' })
      .option('delete-snapshot', { type: 'boolean', default: false, describe: 'Also delete its snapshot (Proxmox)' })
      .example('$0 admin release job-4711-1767225600-0a1b2c3d', 'The host was repaired by hand; keep the snapshot')
      .example('$0 admin release job-4711-1767225600-0a1b2c3d --delete-snapshot', 'And delete the snapshot'),
  handler: run<AdminGlobalArgs & { name: string; 'delete-snapshot': boolean }>(async ({ call }, args) => {
    const answer = await call<{ detail: string; checkpoint_name: string }>({
      method: 'POST',
      path: `/api/checkpoints/${enc(args.name)}/release`,
      body: { deleteSnapshot: args['delete-snapshot'] },
    });
    return { data: answer, text: `${answer.detail}: ${answer.checkpoint_name}${args['delete-snapshot'] ? ' (snapshot deleted with it)' : ''}\n` };
  }),
};

type Maintenance = { enabled: boolean; message: string };
const maintenanceText = (m: Maintenance) => (m.enabled ? `Maintenance is ON: new creates answer 503 "${m.message}".\n` : 'Maintenance is off: creates are accepted.\n');

const maintenanceCommand = {
  command: 'maintenance <mode> [message]',
  describe: 'Turn maintenance mode on (new creates are refused with the message) or off, or show it',
  builder: (y: Argv) =>
    y
      .positional('mode', { type: 'string', choices: ['on', 'off', 'status'], demandOption: true, describe: 'on, off or status' })
      .positional('message', { type: 'string', describe: 'With on: what CI jobs are told (up to 500 characters)' })
      .example('$0 admin maintenance on "Upgrading, back at 14:00"', 'Refuse new creates with this message')
      .example('$0 admin maintenance off', 'Accept creates again')
      .example('$0 admin maintenance status --json', ''),
  handler: run<AdminGlobalArgs & { mode: 'on' | 'off' | 'status'; message?: string }>(async ({ call }, args) => {
    if (args.mode !== 'on' && args.message !== undefined) throw new AdminUsageError(`maintenance ${args.mode} takes no message`);
    if (args.mode === 'on' && !args.message?.trim()) throw new AdminUsageError('maintenance on needs a message for CI jobs, e.g. e2epool admin maintenance on "Upgrading, back at 14:00"');
    const state =
      args.mode === 'status'
        ? await call<Maintenance>({ method: 'GET', path: '/api/admin/maintenance' })
        : await call<Maintenance>({ method: 'POST', path: '/api/admin/maintenance', body: { enabled: args.mode === 'on', message: args.mode === 'on' ? args.message : null } });
    return { data: state, text: maintenanceText(state) };
  }),
};

const cleanupCommand = {
  command: 'cleanup',
  describe: 'Run the retention clean-up now (records older than E2EPOOL_RETENTION_DAYS); --dry-run only counts',
  builder: (y: Argv) =>
    y
      .option('dry-run', { type: 'boolean', default: false, describe: 'Count what would be deleted, delete nothing' })
      .example('$0 admin cleanup --dry-run', 'What the daily run would delete now')
      .example('$0 admin cleanup', 'Delete it now'),
  handler: run<AdminGlobalArgs & { 'dry-run': boolean }>(async ({ call }, args) => {
    const r = await call<Record<string, any>>({ method: 'POST', path: '/api/admin/cleanup', body: { dryRun: args['dry-run'] }, timeoutMs: HOUSEKEEPING_TIMEOUT_MS });
    const head = r.dryRun ? `Dry run: older than ${r.retentionDays} days, these rows would be deleted:` : `Deleted rows older than ${r.retentionDays} days:`;
    const rows: Array<[string, unknown]> = [
      ['checkpoints', r.checkpoints],
      ['transitions', r.checkpointTransitions],
      ['alerts', r.alerts],
      ['webhook inbox', r.webhookInbox],
      ['audit log', r.auditLog],
    ];
    return { data: r, text: `${head}\n${table(['TABLE', 'ROWS'], rows as Array<[string, number]>)}` };
  }),
};

const orphansCommand = {
  command: 'orphans',
  describe: 'Run the orphan snapshot audit now: e2epool snapshots on Proxmox that no checkpoint owns',
  builder: (y: Argv) => y.example('$0 admin orphans', 'Lists orphans and runners that could not be checked'),
  handler: run<AdminGlobalArgs>(async ({ call }) => {
    const r = await call<{ orphans: Array<Record<string, any>>; checkedRunners: number; unchecked: Array<Record<string, any>>; alert: string }>({
      method: 'GET',
      path: '/api/admin/orphan-snapshots',
      timeoutMs: HOUSEKEEPING_TIMEOUT_MS,
    });
    let text = `${r.orphans.length} orphan snapshot(s) on ${r.checkedRunners} checked runner(s); alert: ${r.alert}\n`;
    if (r.orphans.length) text += table(['RUNNER', 'VMID', 'SNAPSHOT'], r.orphans.map((o) => [o.runnerId, o.vmid, o.snapshot]));
    if (r.unchecked.length) text += `Not checked:\n${table(['RUNNER', 'ERROR'], r.unchecked.map((u) => [u.runnerId, u.code]))}`;
    return { data: r, text };
  }),
};

const webhooksCommand = {
  command: 'webhooks',
  describe: 'Webhook deliveries the controller gave up on: list them, requeue one',
  builder: (y: Argv) =>
    y
      .command({
        command: 'list',
        describe: 'List given-up webhook deliveries, newest first',
        builder: (b: Argv) =>
          b.option('limit', { type: 'number', describe: 'At most this many (1 to 1000, default 100)' }).example('$0 admin webhooks list', 'Given-up deliveries with their last error'),
        handler: run<AdminGlobalArgs & { limit?: number }>(async ({ call }, args) => {
          const body = await call<{ givenUp: Array<Record<string, any>> }>({ method: 'GET', path: '/api/admin/webhooks', query: { limit: args.limit } });
          const rows = body.givenUp.map((w) => [w.event_id, w.provider, w.job_id, w.status, w.attempts, shortTime(w.received_at), w.last_error]);
          return { data: body, text: rows.length ? table(['EVENT', 'PROVIDER', 'JOB', 'STATUS', 'ATTEMPTS', 'RECEIVED', 'LAST ERROR'], rows) : 'No given-up webhook deliveries.\n' };
        }),
      })
      .command({
        command: 'requeue <id>',
        describe: 'Deliver a given-up webhook again (attempts counted from zero), once Temporal is fine',
        builder: (b: Argv) =>
          b.positional('id', { type: 'string', demandOption: true, describe: 'Event id (from webhooks list)' }).example('$0 admin webhooks requeue gitlab-5f0c…', ''),
        handler: run<AdminGlobalArgs & { id: string }>(async ({ call }, args) => {
          const answer = await call<{ detail: string; event_id: string; previous_attempts: number }>({ method: 'POST', path: `/api/admin/webhooks/${enc(args.id)}/requeue` });
          return { data: answer, text: `${answer.detail}: ${answer.event_id} (it had ${answer.previous_attempts} failed attempts)\n` };
        }),
      })
      .demandCommand(1, 'Name a webhooks verb: list, requeue'),
  handler: () => undefined,
};

const auditCommand = {
  command: 'audit',
  describe: 'The audit log of operator actions, newest first',
  builder: (y: Argv) =>
    y
      .option('since', { type: 'string', describe: 'At or after: ISO 8601 time or an age (30m, 24h, 7d)' })
      .option('limit', { type: 'number', describe: 'At most this many entries (1 to 1000, default 100)' })
      .example('$0 admin audit --since 24h', 'What operators did in the last day')
      .example('$0 admin audit --json --limit 1000', ''),
  handler: run<AdminGlobalArgs & { since?: string; limit?: number }>(async ({ call }, args) => {
    const body = await call<{ entries: Array<Record<string, any>> }>({ method: 'GET', path: '/api/audit', query: { since: parseSince(args.since), limit: args.limit } });
    const rows = body.entries.map((e) => [shortTime(e.at), e.actor, e.action, e.target, e.detail && Object.keys(e.detail).length ? JSON.stringify(e.detail) : null]);
    return { data: body, text: rows.length ? table(['AT', 'ACTOR', 'ACTION', 'TARGET', 'DETAIL'], rows) : 'No audit entries.\n' };
  }),
};

/** The nested verbs, in the order `e2epool admin --help` lists them. */
export const adminSubcommands = [runnersCommand, checkpointsCommand, retryResetCommand, releaseCommand, maintenanceCommand, cleanupCommand, orphansCommand, webhooksCommand, auditCommand];
