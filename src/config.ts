// The one schema for every E2EPOOL_* setting. docs/configuration.md is generated from it.
import { trustedProxyList } from './util/client-address.js';
import { z } from 'zod';

const seconds = (def: number, what: string) =>
  z.coerce.number().int().min(0).default(def).describe(what);
const positiveSeconds = (def: number, what: string) =>
  z.coerce.number().int().min(1).default(def).describe(what);
const bool = (def: boolean, what: string) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes')
    .describe(what);
const optionalSecret = (what: string) => z.string().min(1).optional().describe(what);

export const configSchema = z.object({
  DATABASE_URL: z
    .string()
    .default('pglite:.data/pglite')
    .refine((v) => v.startsWith('pglite:') || /^postgres(ql)?:\/\//.test(v), {
      message: 'must be pglite:<dir> or a postgres:// / postgresql:// URL',
    })
    .describe('PostgreSQL URL, or pglite:<dir> for the embedded database (one process only).'),
  DB_POOL_SIZE: positiveSeconds(10, 'PostgreSQL connection pool size (ignored for PGlite).'),
  INVENTORY_PATH: z.string().default('inventory.yml').describe('Path of the inventory.yml runner file; a missing file means no inventory runners (unless INVENTORY_REQUIRED).'),
  INVENTORY_REQUIRED: bool(false, 'Refuse to start when INVENTORY_PATH does not exist, naming the path (a volume mounted wrong); the compose file sets it.'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080).describe('HTTP port of the API, agent gateway, dashboard and /metrics (0 picks a free port).'),
  HOST: z.string().default('0.0.0.0').describe('Address the HTTP server binds.'),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional().describe('Serve /metrics on this port only (on METRICS_HOST), not on PORT; unset serves it on PORT.'),
  METRICS_HOST: z.string().default('127.0.0.1').describe('Address of the separate /metrics listener (METRICS_PORT): keep it internal.'),
  METRICS_TOKEN: optionalSecret('When set, /metrics needs Authorization: Bearer <token> (configure it as the scrape job\'s bearer token).'),
  HTTP_HEADERS_TIMEOUT_SECONDS: positiveSeconds(10, 'A client must send its request headers within this many seconds.'),
  HTTP_REQUEST_TIMEOUT_SECONDS: positiveSeconds(30, 'A client must send its whole request (headers and body) within this many seconds; answers may take longer.'),
  HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: positiveSeconds(5, 'Idle keep-alive connections are closed after this many seconds.'),
  HTTP_MAX_CONNECTIONS: positiveSeconds(4096, 'Most open connections (HTTP and agent WebSockets together); more are refused.'),
  TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((u) => u.trim()).filter((u) => u.length > 0))
    .superRefine((entries, ctx) => {
      try {
        trustedProxyList(entries);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .describe('Comma-separated addresses or CIDR ranges of reverse proxies (nginx) whose X-Forwarded-For names the client, for the failed-authentication limit and logs. Empty: the socket address counts.'),
  AUTH_FAILURES_PER_MINUTE: seconds(30, 'Failed authentications one address may make per minute (HTTP and agent handshakes); past it 429 until the minute ends. 0 disables.'),
  INSTANCE_ID: z
    .string()
    .regex(/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/, 'must be 1 to 40 lowercase letters, digits and dashes (no dash first or last): it names a Temporal task queue')
    .optional()
    .describe('Stable id of this controller instance (e.g. the host name), so its agent task queue keeps its name across restarts (e2epool-gw-<id>). Unset: a random id per start. Never give two running instances the same id.'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level.'),

  TEMPORAL_ADDRESS: z.string().default('localhost:7233').describe('Temporal frontend host:port.'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default').describe('Temporal namespace.'),
  TASK_QUEUE: z.string().min(1).default('e2epool-checkpoints').describe('Task queue of the checkpoint workflows and their non-agent activities.'),
  TEMPORAL_UI_URL: z.string().default('http://localhost:8233').describe('Base URL of the Temporal Web UI, for links in the API and dashboard.'),
  TEMPORAL_TLS: bool(false, 'Speak TLS to the Temporal frontend (implied by any of the TLS files or an API key).'),
  TEMPORAL_TLS_CA_FILE: z.string().min(1).optional().describe('PEM file of the CA that signed the Temporal frontend\'s certificate (default: the system CAs).'),
  TEMPORAL_TLS_CERT_FILE: z.string().min(1).optional().describe('Client certificate (PEM) for a frontend that requires mTLS; with TEMPORAL_TLS_KEY_FILE.'),
  TEMPORAL_TLS_KEY_FILE: z.string().min(1).optional().describe('Private key (PEM) of TEMPORAL_TLS_CERT_FILE.'),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional().describe('Server name to verify in the frontend\'s certificate when it differs from the address.'),
  TEMPORAL_API_KEY: optionalSecret('API key for the Temporal frontend (Temporal Cloud and servers with API-key auth); implies TLS.'),
  TEMPORAL_REGISTER_SEARCH_ATTRIBUTES: bool(false, 'Register missing search attributes at start instead of refusing to start.'),

  ADMIN_TOKEN: optionalSecret('Bearer token of the admin API and dashboard; unset disables them (503).'),
  ADMIN_TOKENS_FILE: z.string().min(1).optional().describe('YAML file of named admin tokens (`alice: <token>` per line, 24+ characters each); re-read when it changes, so tokens rotate without a restart; the name is the actor in the audit log.'),
  TOKEN_PEPPER: optionalSecret('Secret key (24 characters or more) for HMAC-SHA256 of runner tokens. serve and worker refuse to start without it; only dev generates one.'),

  CHECKPOINT_TTL_SECONDS: positiveSeconds(1800, 'Age at which a checkpoint without a finalize is checked against its GitLab job.'),
  CHECKPOINT_MAX_TTL_SECONDS: positiveSeconds(86400, 'Hard maximum age; past it a still-running checkpoint needs attention instead of being extended.'),
  POLLER_ENABLED: bool(true, 'Watch the GitLab job as a fallback finalize source.'),
  POLLER_INTERVAL_SECONDS: positiveSeconds(20, 'Interval of the GitLab job watch.'),
  POLLER_MIN_AGE_SECONDS: seconds(120, 'Checkpoint age before the GitLab job watch starts.'),
  FINALIZE_COOLDOWN_SECONDS: seconds(5, 'A create within this many seconds of the previous finalize being queued answers 429.'),
  CREATE_TIMEOUT_SECONDS: positiveSeconds(300, 'Deadline of a create (claim + snapshot); the HTTP call waits up to this + 15 s.'),
  CREATE_RATE_LIMIT_PER_MINUTE: positiveSeconds(60, 'Per-runner creates per minute that may start a workflow (a token bucket; a real runner needs one per job).'),
  CREATE_RATE_LIMIT_BURST: positiveSeconds(10, 'Per-runner creates allowed at once before the per-minute rate applies.'),
  CREATE_WAIT_FOR_CLEANUP_SECONDS: seconds(60, 'How long a create waits for a previous checkpoint that is cleaning up on the success path.'),
  READINESS_TIMEOUT_SECONDS: positiveSeconds(120, 'Whole readiness budget after a reset: fresh agent session, stability, readiness command.'),
  READINESS_POLL_INTERVAL_SECONDS: positiveSeconds(5, 'Interval between readiness probes.'),
  READINESS_STABLE_SECONDS: seconds(5, 'A fresh agent session must stay up this long before the readiness command runs.'),
  RESET_SETTLE_SECONDS: seconds(10, 'reset_mode auto: wait after reset_cmd returns before deciding whether the host rebooted.'),
  OWN_JOB_GRACE_SECONDS: seconds(600, "Idle confirmation: how long to wait for the checkpoint's own job to leave the runner."),
  FOREIGN_JOB_GRACE_SECONDS: seconds(900, 'Idle confirmation: how long to wait for another job on the runner.'),
  AGENT_ROUTE_ATTEMPTS: positiveSeconds(6, 'Attempts to route an agent command to the instance holding the session.'),
  COMMAND_TIMEOUT_SECONDS: positiveSeconds(120, 'Timeout of reset, cleanup and readiness commands run by agents.'),

  AGENT_QUERY_TOKENS: bool(true, 'Accept the agent token in the WebSocket URL (?token=), as e2epool agents send it; turn off once every agent sends the Authorization header (ours do).'),
  WS_HEARTBEAT_INTERVAL: positiveSeconds(30, 'Seconds between WebSocket pings to agents.'),
  WS_HEARTBEAT_TIMEOUT: positiveSeconds(90, 'An agent silent this long is disconnected and marked offline.'),
  HTTPX_TIMEOUT: positiveSeconds(30, 'Timeout of outbound HTTP calls (GitLab, Proxmox) in seconds.'),
  SHUTDOWN_GRACE_SECONDS: seconds(30, 'Graceful stop: time given to in-flight work before sockets are closed.'),

  GITLAB_URL: z.url().optional().describe('GitLab base URL (no /api/v4); per-runner gitlab_url overrides it.'),
  GITLAB_TOKEN: optionalSecret('GitLab token with read_api and manage_runner; per-runner gitlab_token overrides it.'),
  GITLAB_WEBHOOK_SECRET: optionalSecret('Secret expected in X-Gitlab-Token; unset makes the GitLab webhook answer 403.'),
  GITHUB_WEBHOOK_SECRET: optionalSecret('HMAC secret of X-Hub-Signature-256; unset makes the GitHub webhook answer 403.'),

  RETENTION_DAYS: positiveSeconds(90, 'Checkpoint records older than this many days are purged.'),
  RETENTION_TIME: z
    .string()
    .regex(/^(?:[01]\d|2[0-3]):[0-5]\d$/, 'must be a UTC time of day as HH:MM, e.g. 03:17')
    .default('03:17')
    .describe('UTC time of day (HH:MM) of the daily retention run (a Temporal Schedule, updated at start).'),
  WEBHOOK_MAX_ATTEMPTS: positiveSeconds(20, 'Failed deliveries of a stored GitLab/GitHub webhook to its checkpoint before it is given up (the row is kept and can be requeued).'),
  METRICS_SETTLE_SECONDS: seconds(60, 'Age an end transition must have before /metrics counts it, so late end timestamps from other instances are not missed.'),

  ALERT_WEBHOOK_URLS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((u) => u.trim()).filter((u) => u.length > 0))
    .pipe(z.array(z.url({ protocol: /^https?$/, error: 'each URL must be an absolute http:// or https:// URL' })))
    .describe('Comma-separated webhook URLs that receive alerts; empty sends none. Slack webhook URLs are credentials.'),
  ALERT_WEBHOOK_FORMAT: z.enum(['slack', 'generic']).default('slack').describe('Alert body: slack (`{"text": ...}`) or generic (JSON with key, severity, message, state).'),
  ALERT_QUEUE_WARNING: positiveSeconds(10, 'Queue depth above which a warning alert is raised once it lasts ALERT_QUEUE_MINUTES.'),
  ALERT_QUEUE_CRITICAL: positiveSeconds(20, 'Queue depth above which a critical alert is raised once it lasts ALERT_QUEUE_MINUTES.'),
  ALERT_QUEUE_MINUTES: seconds(15, 'Minutes the queue depth must stay above a threshold before it alerts.'),
  ALERT_FAILURE_RATE_WARNING: z.coerce.number().min(0).max(1).default(0.1).describe('Failure rate of the last hour (0..1) above which a warning alert is raised.'),
  ALERT_FAILURE_RATE_CRITICAL: z.coerce.number().min(0).max(1).default(0.25).describe('Failure rate of the last hour (0..1) above which a critical alert is raised.'),
  ALERT_CHECK_INTERVAL_SECONDS: positiveSeconds(30, 'Interval of the alert condition checks.'),
  ALERT_FAILURE_RATE_MIN_SAMPLES: positiveSeconds(5, 'Checkpoints decided in the last hour below which the failure rate never alerts (too few to mean anything).'),
  ALERT_RESEND_INTERVAL_SECONDS: seconds(300, 'The same alert (by key, raised or resolved) is sent to the webhooks at most once per this many seconds by one process; 0 never holds one back.'),
});

export type Config = z.infer<typeof configSchema>;
export const CONFIG_PREFIX = 'E2EPOOL_';

export class ConfigError extends Error {
  readonly code = 'config_invalid';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Reads E2EPOOL_* from env; one error naming every bad key. Empty strings count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof Config, unknown>> = {}): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[CONFIG_PREFIX + key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  Object.assign(raw, overrides);
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = issue.path.join('.');
    return `${CONFIG_PREFIX}${key}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

export const SECRET_KEYS: ReadonlyArray<keyof Config> = ['ADMIN_TOKEN', 'TOKEN_PEPPER', 'GITLAB_TOKEN', 'GITLAB_WEBHOOK_SECRET', 'GITHUB_WEBHOOK_SECRET', 'ALERT_WEBHOOK_URLS'];
