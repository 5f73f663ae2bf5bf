// The agent daemon: IPC server first (so the CLI hears "Not connected to controller" rather than
// "not running" while the controller is away), then the controller connection. On SIGTERM/SIGINT
// it stops accepting, drains in-flight requests within the grace time, closes the WebSocket,
// removes the socket and exits 0.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import {
  AgentConfigError,
  DEFAULT_SOCKET_GROUP,
  assertCredentials,
  loadAgentConfig,
  type AgentConfig,
} from './config.js';
import { CommandHandler, commandEnvironment } from './command-handler.js';
import { killAllCommandGroups } from './command-runner.js';
import { ControllerConnection, errorReply, type ControllerReply } from './controller-connection.js';
import { groupIdOf } from './groups.js';
import { IpcServer, ipcError } from './ipc-server.js';
import { AGENT_STATUS_TYPE, FORWARDED_TYPES } from './ipc-requests.js';
import { createAgentLogger, redactUrl, type AgentLogger } from './log.js';
import { AGENT_VERSION } from './version.js';


/**
 * Linux boot id; elsewhere a random id per process (a reboot restarts the process anyway).
 * E2EPOOL_AGENT_BOOT_ID stands in for it where the "host" is simulated (the demo's guests share
 * the real machine's boot id, yet each agent start is a boot of its simulated VM).
 */
export function readBootId(env: NodeJS.ProcessEnv = process.env): string {
  const simulated = env.E2EPOOL_AGENT_BOOT_ID?.trim();
  if (simulated) return simulated;
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    if (id) return id;
  } catch {
    // Not Linux.
  }
  return randomUUID();
}

/** Resolves socket_group to a gid; refuses to guess when the default group does not exist. */
export function resolveSocketGid(config: AgentConfig, configFile: string | null, lookup = groupIdOf): number | null {
  if (config.socketGroup === null) return null;
  const name = config.socketGroup ?? DEFAULT_SOCKET_GROUP;
  const gid = lookup(name);
  if (gid !== null) return gid;
  const where = configFile ?? 'the agent config';
  if (config.socketGroup === undefined) {
    throw new AgentConfigError(
      `socket group '${DEFAULT_SOCKET_GROUP}' does not exist on this host: set socket_group: <group of the users that run e2epool> ` +
        `in ${where} (or E2EPOOL_AGENT_SOCKET_GROUP), or socket_group: none to keep the agent's own group`,
    );
  }
  throw new AgentConfigError(`socket_group '${name}' does not exist on this host (set in ${where} or E2EPOOL_AGENT_SOCKET_GROUP)`);
}

export interface AgentDaemonOptions {
  config: AgentConfig;
  logger: AgentLogger;
  /** Where the config came from, for messages. */
  configFile?: string | null;
  bootId?: string;
  commandMemoryMs?: number;
}

export class AgentDaemon {
  readonly connection: ControllerConnection;
  readonly commands: CommandHandler;
  private readonly ipc: IpcServer;
  private readonly bootId: string;
  private stopped: Promise<void> | null = null;

  constructor(private readonly opts: AgentDaemonOptions) {
    const { config, logger } = opts;
    assertCredentials(config);
    this.bootId = opts.bootId ?? readBootId();
    this.commands = new CommandHandler({
      commands: config.commands,
      allowRemoteCommands: config.allowRemoteCommands,
      maxOutputBytes: config.maxOutputBytes,
      killGraceSeconds: config.killGraceSeconds,
      commandMemoryMs: opts.commandMemoryMs,
      logger,
      env: commandEnvironment(config.commandEnv),
      secrets: [config.token],
    });
    this.connection = new ControllerConnection({
      controllerUrl: config.controllerUrl,
      runnerId: config.runnerId,
      token: config.token,
      heartbeatIntervalMs: config.heartbeatInterval * 1000,
      reconnectInitialDelayMs: config.reconnectInitialDelay * 1000,
      reconnectMaxDelayMs: config.reconnectMaxDelay * 1000,
      hello: { agentVersion: AGENT_VERSION, bootId: this.bootId, commands: this.commands.declaredCommands },
      sendTokenInQuery: config.sendTokenInQuery,
      ...(config.caFile ? { ca: readFileSync(config.caFile, 'utf8') } : {}),
      isCommand: (m) => CommandHandler.handles(m),
      onCommand: (m) => this.commands.handle(m),
      logger,
    });
    this.ipc = new IpcServer({
      socketPath: config.socketPath,
      mode: config.socketMode,
      gid: resolveSocketGid(config, opts.configFile ?? null),
      handler: (request) => this.handleIpc(request),
      logger,
    });
  }

  async start(): Promise<void> {
    const { config, logger } = this.opts;
    await this.ipc.start();
    logger.info(
      {
        socket: config.socketPath,
        socketMode: `0${config.socketMode.toString(8)}`,
        runnerId: config.runnerId,
        controller: redactUrl(config.controllerUrl),
        commands: this.commands.declaredCommands,
        allowRemoteCommands: config.allowRemoteCommands,
        version: AGENT_VERSION,
      },
      'agent started',
    );
    this.connection.start();
  }

  /** Graceful stop; safe to call more than once. */
  stop(): Promise<void> {
    this.stopped ??= this.drainAndStop();
    return this.stopped;
  }

  private async drainAndStop(): Promise<void> {
    const { config, logger } = this.opts;
    const graceMs = config.shutdownGraceSeconds * 1000;
    const deadline = Date.now() + graceMs;
    logger.info({ inFlight: this.ipc.activeRequests, graceSeconds: config.shutdownGraceSeconds }, 'stopping: no new IPC requests');
    const { unfinished } = await this.ipc.stop(graceMs);
    if (unfinished > 0) logger.warn({ unfinished }, 'IPC requests still running after the grace time were dropped');
    while (this.commands.running > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const killed = killAllCommandGroups('SIGKILL');
    if (killed > 0) logger.warn({ killed }, 'commands still running after the grace time were killed');
    await this.connection.stop();
    logger.info('agent stopped');
  }

  async handleIpc(request: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = typeof request.id === 'string' ? request.id : '';
    const type = request.type;
    const payload = request.payload ?? {};
    if (type === AGENT_STATUS_TYPE) return { id, status: 'ok', data: this.agentStatus(), error: null };
    if (typeof type !== 'string' || !(FORWARDED_TYPES as readonly string[]).includes(type)) {
      return ipcError(id, 400, `Unknown request type: ${typeof type === 'string' ? type.slice(0, 64) : typeof type}`);
    }
    if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return ipcError(id, 400, 'payload must be a JSON object');
    const timeoutSeconds = type === 'create' ? this.opts.config.createTimeout : this.opts.config.requestTimeout;
    const reply: ControllerReply = await this.connection.request(type, payload as Record<string, unknown>, timeoutSeconds * 1000);
    if (!reply || typeof reply !== 'object') return errorReply(id, 502, 'Invalid reply from controller');
    return { ...reply, id };
  }

  private agentStatus(): Record<string, unknown> {
    const { config } = this.opts;
    const session = this.connection.session;
    return {
      runner_id: config.runnerId,
      controller_url: redactUrl(config.controllerUrl),
      connected: this.connection.connected,
      protocol: session?.protocol ?? null,
      session_epoch: session?.sessionEpoch ?? null,
      instance_id: session?.instanceId ?? null,
      connected_at: session?.connectedAt.toISOString() ?? null,
      agent_version: AGENT_VERSION,
      boot_id: this.bootId,
      commands: this.commands.declaredCommands,
      allow_remote_commands: config.allowRemoteCommands,
    };
  }
}

/**
 * `e2epool agent`: loads the config, runs until SIGTERM/SIGINT, returns the exit code. Config
 * problems print `Error: ...` on stderr and return 1.
 */
export async function runAgentProcess(opts: { configPath?: string; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  let daemon: AgentDaemon;
  let logger: AgentLogger;
  try {
    const loaded = loadAgentConfig({ configPath: opts.configPath, env: opts.env });
    assertCredentials(loaded.config);
    logger = createAgentLogger({ level: loaded.config.logLevel });
    for (const warning of loaded.warnings) logger.warn(warning);
    daemon = new AgentDaemon({ config: loaded.config, logger, configFile: loaded.file });
    await daemon.start();
  } catch (err: any) {
    process.stderr.write(`Error: ${err?.message ?? err}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting without waiting');
        resolve(1);
        return;
      }
      logger.info({ signal }, 'signal received: shutting down');
      daemon.stop().then(
        () => resolve(0),
        (err) => {
          logger.error({ err: String(err?.message ?? err) }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
