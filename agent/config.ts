// Agent configuration: YAML file, then environment overrides, then defaults. The six e2epool keys
// keep their e2epool env var names; keys added here use the E2EPOOL_AGENT_ prefix so they never
// collide with the controller's E2EPOOL_* settings on a shared host.
import { readFileSync, statSync } from 'node:fs';
import { parseDocument, isScalar } from 'yaml';
import { z } from 'zod';
import { agentLogLevels } from './log.js';

export const DEFAULT_CONFIG_PATH = '/etc/e2epool/agent.yml';
export const DEFAULT_SOCKET_PATH = '/var/run/e2epool-agent.sock';
export const DEFAULT_SOCKET_GROUP = 'gitlab-runner';
/** `socket_group: none` keeps the socket in the agent's own group (mode still applies). */
export const NO_SOCKET_GROUP = 'none';

const positiveNumber = z.number().positive().finite();
const nonNegativeNumber = z.number().min(0).finite();

export const agentConfigSchema = z.object({
  controller_url: z
    .string()
    .default('ws://localhost:8080/ws/agent')
    .refine((v) => /^wss?:\/\/[^\s/?#]+/i.test(v), { message: 'must be a ws:// or wss:// URL' }),
  runner_id: z.string().default(''),
  token: z.string().default(''),
  socket_path: z.string().min(1).default(DEFAULT_SOCKET_PATH),
  socket_group: z.string().min(1, { message: `must be a group name, a gid, or "${NO_SOCKET_GROUP}"` }).optional(),
  socket_mode: z.number().int().min(0).max(0o777).default(0o660),
  reconnect_max_delay: positiveNumber.default(60),
  reconnect_initial_delay: positiveNumber.default(1),
  heartbeat_interval: positiveNumber.default(30),
  create_timeout: positiveNumber.default(330),
  request_timeout: positiveNumber.default(30),
  shutdown_grace_seconds: nonNegativeNumber.default(30),
  kill_grace_seconds: nonNegativeNumber.default(5),
  max_output_bytes: z.number().int().min(1).max(16 * 1024 * 1024).default(65536),
  allow_remote_commands: z.boolean().default(false),
  // Plain ws:// to a controller on another host sends the token in clear text: refused unless set.
  allow_insecure_transport: z.boolean().default(false),
  // e2epool controllers read the token from the URL; ours take the header, which never reaches logs.
  send_token_in_query: z.boolean().default(false),
  ca_file: z.string().min(1).optional(),
  // Commands get PATH, HOME and LANG plus these, never the agent's own environment (its token).
  command_env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'environment variable names are letters, digits and _' }), z.string()).default({}),
  commands: z
    .record(
      // Same rule as the controller's hello validation.
      z.string().regex(/^[A-Za-z][\w.-]{0,63}$/, { message: 'command names start with a letter, then letters, digits, _ . - (max 64)' }),
      z.string().trim().min(1, { message: 'must be a non-empty shell command' }),
    )
    .default({}),
  log_level: z.enum(agentLogLevels).default('info'),
});

export type AgentConfigFile = z.infer<typeof agentConfigSchema>;

/** The validated agent configuration, in camelCase, times in seconds. */
export interface AgentConfig {
  controllerUrl: string;
  runnerId: string;
  token: string;
  socketPath: string;
  /** Group name (or gid) the socket is chowned to; null only when set to `none`; undefined = default. */
  socketGroup: string | null | undefined;
  socketMode: number;
  reconnectMaxDelay: number;
  reconnectInitialDelay: number;
  heartbeatInterval: number;
  createTimeout: number;
  requestTimeout: number;
  shutdownGraceSeconds: number;
  killGraceSeconds: number;
  maxOutputBytes: number;
  allowRemoteCommands: boolean;
  allowInsecureTransport: boolean;
  sendTokenInQuery: boolean;
  /** PEM file of the CA that signed the controller's certificate (wss://). */
  caFile: string | null;
  commandEnv: Record<string, string>;
  commands: Record<string, string>;
  logLevel: (typeof agentLogLevels)[number];
}

type Kind = 'string' | 'number' | 'boolean' | 'mode';
const envVars: Array<{ key: keyof AgentConfigFile; env: string; kind: Kind }> = [
  { key: 'controller_url', env: 'E2EPOOL_CONTROLLER_URL', kind: 'string' },
  { key: 'runner_id', env: 'E2EPOOL_RUNNER_ID', kind: 'string' },
  { key: 'token', env: 'E2EPOOL_TOKEN', kind: 'string' },
  { key: 'socket_path', env: 'E2EPOOL_SOCKET_PATH', kind: 'string' },
  { key: 'reconnect_max_delay', env: 'E2EPOOL_RECONNECT_MAX_DELAY', kind: 'number' },
  { key: 'heartbeat_interval', env: 'E2EPOOL_HEARTBEAT_INTERVAL', kind: 'number' },
  { key: 'socket_group', env: 'E2EPOOL_AGENT_SOCKET_GROUP', kind: 'string' },
  { key: 'socket_mode', env: 'E2EPOOL_AGENT_SOCKET_MODE', kind: 'mode' },
  { key: 'reconnect_initial_delay', env: 'E2EPOOL_AGENT_RECONNECT_INITIAL_DELAY', kind: 'number' },
  { key: 'create_timeout', env: 'E2EPOOL_AGENT_CREATE_TIMEOUT', kind: 'number' },
  { key: 'request_timeout', env: 'E2EPOOL_AGENT_REQUEST_TIMEOUT', kind: 'number' },
  { key: 'shutdown_grace_seconds', env: 'E2EPOOL_AGENT_SHUTDOWN_GRACE_SECONDS', kind: 'number' },
  { key: 'kill_grace_seconds', env: 'E2EPOOL_AGENT_KILL_GRACE_SECONDS', kind: 'number' },
  { key: 'max_output_bytes', env: 'E2EPOOL_AGENT_MAX_OUTPUT_BYTES', kind: 'number' },
  { key: 'allow_remote_commands', env: 'E2EPOOL_AGENT_ALLOW_REMOTE_COMMANDS', kind: 'boolean' },
  { key: 'allow_insecure_transport', env: 'E2EPOOL_AGENT_ALLOW_INSECURE_TRANSPORT', kind: 'boolean' },
  { key: 'send_token_in_query', env: 'E2EPOOL_AGENT_SEND_TOKEN_IN_QUERY', kind: 'boolean' },
  { key: 'ca_file', env: 'E2EPOOL_AGENT_CA_FILE', kind: 'string' },
  { key: 'log_level', env: 'E2EPOOL_AGENT_LOG_LEVEL', kind: 'string' },
];

export class AgentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentConfigError';
  }

  static fromProblems(problems: string[], source: string | null): AgentConfigError {
    const from = source ? ` (${source})` : '';
    return new AgentConfigError(`Invalid agent configuration${from}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export interface LoadedAgentConfig {
  config: AgentConfig;
  /** Non-fatal findings (unknown keys) to log at start. */
  warnings: string[];
  /** Path of the file that was read, or null when none existed. */
  file: string | null;
}

export interface LoadAgentConfigOptions {
  /** `--config`; wins over E2EPOOL_AGENT_CONFIG and the default path. */
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  /** The CLI verbs only need socket_path: an unreadable (root-only) file is skipped, not fatal. */
  skipUnreadableFile?: boolean;
}

export function configFilePath(opts: { configPath?: string; env?: NodeJS.ProcessEnv }): string {
  const env = opts.env ?? process.env;
  return opts.configPath || env.E2EPOOL_AGENT_CONFIG || DEFAULT_CONFIG_PATH;
}

/** Parses an octal mode written as "0660", "660" or "0o660". */
function parseMode(text: string): number | null {
  const m = /^(?:0o?)?([0-7]{3,4})$/i.exec(text.trim());
  return m ? parseInt(m[1]!, 8) : null;
}

function parseNumber(text: string): number | null {
  if (!/^\s*-?(\d+\.?\d*|\.\d+)\s*$/.test(text)) return null;
  return Number(text);
}

function parseBoolean(text: string): boolean | null {
  const v = text.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return null;
}

function readYaml(file: string, skipUnreadable: boolean): { values: Record<string, unknown>; read: boolean; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err: any) {
    if (err?.code === 'ENOENT') return { values: {}, read: false, problems: [] };
    if (skipUnreadable && (err?.code === 'EACCES' || err?.code === 'EPERM')) return { values: {}, read: false, problems: [] };
    return { values: {}, read: false, problems: [`cannot read ${file}: ${err?.code ?? err?.message ?? err}`] };
  }
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    return { values: {}, read: true, problems: [`${file} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`] };
  }
  const value = doc.toJS();
  if (value === null || value === undefined) return { values: {}, read: true, problems: [] };
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { values: {}, read: true, problems: [`${file} must contain a mapping of settings`] };
  }
  const values = value as Record<string, unknown>;
  // YAML 1.2 reads 0660 as decimal 660: take the mode from the text as written.
  const modeNode = doc.get('socket_mode', true);
  if (isScalar(modeNode) && modeNode.range) {
    const raw = text.slice(modeNode.range[0], modeNode.range[1]).replace(/^['"]|['"]$/g, '');
    const mode = parseMode(raw);
    values.socket_mode = mode ?? raw;
  }
  return { values, read: true, problems: [] };
}

/**
 * Loads the agent configuration. Throws AgentConfigError naming every bad key (and where it came
 * from). Never includes the token's value in a message.
 */
export function loadAgentConfig(opts: LoadAgentConfigOptions = {}): LoadedAgentConfig {
  const env = opts.env ?? process.env;
  const file = configFilePath(opts);
  const yaml = readYaml(file, opts.skipUnreadableFile ?? false);
  const problems = [...yaml.problems];
  const warnings: string[] = [];
  const origin: Record<string, string> = {};
  const raw: Record<string, unknown> = {};
  const known = new Set(Object.keys(agentConfigSchema.shape));

  for (const [key, value] of Object.entries(yaml.values)) {
    if (!known.has(key)) {
      warnings.push(`unknown key '${key}' in ${file} ignored`);
      continue;
    }
    if (value === null || value === undefined) continue;
    raw[key] = key === 'socket_mode' && typeof value === 'string' ? (parseMode(value) ?? value) : value;
    origin[key] = file;
  }
  // Numbers written as quoted strings in YAML are accepted too.
  for (const { key, kind } of envVars) {
    if (kind === 'number' && typeof raw[key] === 'string') raw[key] = parseNumber(raw[key]) ?? raw[key];
  }
  for (const { key, env: name, kind } of envVars) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    origin[key] = name;
    if (kind === 'string') raw[key] = text;
    else if (kind === 'number') raw[key] = parseNumber(text) ?? text;
    else if (kind === 'boolean') raw[key] = parseBoolean(text) ?? text;
    else raw[key] = parseMode(text) ?? text;
  }

  const parsed = agentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? '');
      const sub = issue.path.length > 1 ? `.${issue.path.slice(1).join('.')}` : '';
      const from = origin[key]?.startsWith('E2EPOOL_') ? ` (${origin[key]})` : '';
      const message = issue.code === 'invalid_key' ? 'command names start with a letter, then letters, digits, _ . - (max 64)' : issue.message;
      problems.push(`${key}${sub}${from}: ${message}`);
    }
  }
  if (parsed.success) problems.push(...securityProblems(parsed.data, yaml.read ? file : null));
  if (problems.length > 0 || !parsed.success) throw AgentConfigError.fromProblems(problems, yaml.read ? file : null);
  const c = parsed.data;
  return {
    file: yaml.read ? file : null,
    warnings,
    config: {
      controllerUrl: c.controller_url,
      runnerId: c.runner_id,
      token: c.token,
      socketPath: c.socket_path,
      socketGroup: c.socket_group === undefined ? undefined : c.socket_group === NO_SOCKET_GROUP ? null : c.socket_group,
      socketMode: c.socket_mode,
      reconnectMaxDelay: c.reconnect_max_delay,
      reconnectInitialDelay: Math.min(c.reconnect_initial_delay, c.reconnect_max_delay),
      heartbeatInterval: c.heartbeat_interval,
      createTimeout: c.create_timeout,
      requestTimeout: c.request_timeout,
      shutdownGraceSeconds: c.shutdown_grace_seconds,
      killGraceSeconds: c.kill_grace_seconds,
      maxOutputBytes: c.max_output_bytes,
      allowRemoteCommands: c.allow_remote_commands,
      allowInsecureTransport: c.allow_insecure_transport,
      sendTokenInQuery: c.send_token_in_query,
      caFile: c.ca_file ?? null,
      commandEnv: c.command_env,
      commands: c.commands,
      logLevel: c.log_level,
    },
  };
}

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(?:\.\d{1,3}){3}$/.test(h);
}

/** Whether the controller URL is plain ws:// to another host (the token would cross the network in clear). */
export function isPlaintextToNetwork(controllerUrl: string): boolean {
  try {
    const u = new URL(controllerUrl);
    return u.protocol === 'ws:' && !isLoopbackHost(u.hostname);
  } catch {
    return false;
  }
}

/** Settings that would expose the token or the host: refused, each with what to do instead. */
function securityProblems(c: AgentConfigFile, file: string | null): string[] {
  const problems: string[] = [];
  if ((c.socket_mode & ~0o660) !== 0) problems.push(`socket_mode: 0${c.socket_mode.toString(8)} is wider than 0660 (the socket accepts finalize for this runner)`);
  const plaintext = isPlaintextToNetwork(c.controller_url);
  if (plaintext && !c.allow_insecure_transport) problems.push('controller_url: ws:// to another host sends the token in clear text; use wss://, or set allow_insecure_transport: true');
  if (plaintext && c.allow_remote_commands) problems.push('allow_remote_commands: needs wss:// (over ws:// anyone on the path could run commands as root)');
  if (file) {
    try {
      const mode = statSync(file).mode;
      if ((mode & 0o004) !== 0) problems.push(`${file} is readable by every user (mode 0${(mode & 0o777).toString(8)}) and holds the token: chmod 600 ${file}`);
    } catch {
      // Read a moment ago; a stat failure changes nothing about what was read.
    }
  }
  return problems;
}

/** The agent refuses to start without credentials (same message and exit code as e2epool). */
export function assertCredentials(config: AgentConfig): void {
  if (!config.runnerId || !config.token) throw new AgentConfigError('runner_id and token must be configured');
}
