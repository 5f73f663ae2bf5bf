// Everything `e2epool dev` runs on one machine, started in order and stopped in reverse: the Temporal
// dev server, the Proxmox and GitLab simulators, the controller (PGlite, generated inventory), one
// agent per demo runner host, and the demo CI jobs. State lives under `<dataDir>/dev/` and is wiped
// at every start unless `keepState` (the Temporal and PGlite data must always go together: workflows
// of one with claims of the other would disagree).
import { mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { loadConfig, ConfigError, CONFIG_PREFIX, type Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startController, type Controller } from '../controller.js';
import { startTemporalDevServer, deleteTemporalDatabase, type TemporalDevServer } from '../../temporal/dev-server.js';
import { repoRoot } from '../../temporal/tool-paths.js';
import { startProxmoxSimulator, type ProxmoxSimulator } from '../../sim/proxmox/index.js';
import { startGitlabSimulator, type GitlabSimulator } from '../../sim/gitlab/index.js';
import { DEMO_VM_TAG, planDemoRunners, writeDemoInventory, type DemoRunner } from './demo-inventory.js';
import { startGuestAgents, type GuestAgents } from './guest-agents.js';
import { startDemoJobs, type DemoJobs, type DemoJobsOptions } from './demo-jobs.js';
import { installTemporalRuntime } from '../../temporal/runtime.js';
import { DevStartError, loadDevSecrets, loadDevState, takeDevLock } from './dev-state.js';

export { DevStartError };

export type SimProfile = 'fast' | 'realistic';

export interface DevEnvironmentOptions {
  /** Parent of `dev/` (the CLI's `--data-dir`, default `.data`). */
  dataDir: string;
  /** API port; 0 picks a free one. */
  port: number;
  temporalPort: number;
  uiPort: number;
  runners: number;
  demoJobs: boolean;
  profile: SimProfile;
  keepState: boolean;
  /** User settings (E2EPOOL_*); demo timings apply only to keys not set here. */
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  /** Aborting it makes a start in progress stop and reject with DevStartAborted. */
  signal?: AbortSignal;
  agentBootDelayMs?: number;
  demo?: Pick<DemoJobsOptions, 'jobDurationMs' | 'failureRate' | 'jobFinalizeRate' | 'enqueueIntervalMs' | 'pollIntervalMs'>;
}

export interface DevRunnerInfo {
  runnerId: string;
  backend: DemoRunner['backend'];
  vmid?: number;
  gitlabRunnerId: number;
  socketPath: string;
  logFile: string;
}

export interface DevEnvironment {
  apiUrl: string;
  temporalUiUrl: string;
  temporalAddress: string;
  namespace: string;
  proxmoxUrl: string;
  gitlabUrl: string;
  adminToken: string;
  /** Whether the admin token came from E2EPOOL_ADMIN_TOKEN. */
  adminTokenFromEnv: boolean;
  devDir: string;
  inventoryPath: string;
  runners: DevRunnerInfo[];
  config: Config;
  demoJobs: DemoJobs | undefined;
  /**
   * Synchronous first step of a stop for signal handlers: nothing new is started (agents and demo
   * jobs are told they are being stopped). The Temporal server stays up until the controller has
   * stopped, so its workers finish at once instead of retrying calls to a server that is gone.
   */
  beginStop(): void;
  /** Stops everything in reverse order; resolves when no child process is left. Idempotent. */
  stop(): Promise<void>;
}

export class DevStartAborted extends Error {
  override name = 'DevStartAborted';
  constructor() {
    super('start aborted');
  }
}

/** Demo timings: short enough to see the whole lifecycle within a minute. */
export const DEMO_SETTINGS: Partial<Record<keyof Config, string>> = {
  CHECKPOINT_TTL_SECONDS: '300',
  POLLER_MIN_AGE_SECONDS: '10',
  POLLER_INTERVAL_SECONDS: '5',
  FINALIZE_COOLDOWN_SECONDS: '2',
  READINESS_TIMEOUT_SECONDS: '90',
  READINESS_POLL_INTERVAL_SECONDS: '2',
  READINESS_STABLE_SECONDS: '2',
  RESET_SETTLE_SECONDS: '3',
  OWN_JOB_GRACE_SECONDS: '60',
  FOREIGN_JOB_GRACE_SECONDS: '60',
  COMMAND_TIMEOUT_SECONDS: '60',
  WS_HEARTBEAT_INTERVAL: '10',
  WS_HEARTBEAT_TIMEOUT: '30',
};

/**
 * The demo's stop grace, whatever E2EPOOL_SHUTDOWN_GRACE_SECONDS says: Ctrl-C must end everything
 * within a few seconds, and nothing in the demo is worth waiting for (serve keeps its setting).
 */
export const DEV_SHUTDOWN_GRACE_SECONDS = 1;

const DEMO_PROJECT = { id: 1, path: 'demo/e2e-app' };
const PROXMOX_USER = 'e2epool@pve';
const PROXMOX_TOKEN_NAME = 'dev';

/** Fails with a message naming the port and the flag that changes it. */
export async function assertPortFree(port: number, host: string, flag: string, what: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new DevStartError(`port ${port} (${what}) is in use; choose another with ${flag} <port>`));
      else if (err.code === 'EACCES') reject(new DevStartError(`port ${port} (${what}) needs privileges; choose another with ${flag} <port>`));
      else reject(new DevStartError(`cannot bind ${host}:${port} (${what}): ${err.message}`));
    });
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

async function withTimeout(work: Promise<void>, ms: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(() => (onTimeout(), resolve()), ms)))]);
  clearTimeout(timer);
}

export async function startDevEnvironment(opts: DevEnvironmentOptions): Promise<DevEnvironment> {
  const env = opts.env ?? process.env;
  const logger = opts.logger;
  const dataDir = path.resolve(opts.dataDir);
  const devDir = path.join(dataDir, 'dev');
  const host = env[`${CONFIG_PREFIX}HOST`] || '127.0.0.1';
  const cliEntry = path.join(repoRoot, 'bin', 'e2epool.js');
  const checkAborted = () => {
    if (opts.signal?.aborted) throw new DevStartAborted();
  };

  // Stop steps, run in reverse order on stop or on a failed start.
  const cleanups: Array<{ what: string; run: () => Promise<void> | void }> = [];
  const beginStops: Array<() => void> = [];
  const runCleanups = async () => {
    for (const { what, run } of cleanups.reverse()) {
      try {
        await run();
      } catch (err) {
        logger.warn({ err, what }, 'error while stopping');
      }
    }
    cleanups.length = 0;
  };

  try {
    mkdirSync(dataDir, { recursive: true });
    cleanups.push({ what: 'lock', run: takeDevLock(path.join(dataDir, 'dev.lock')) });
    await assertPortFree(opts.port, host, '--port', 'API');
    await assertPortFree(opts.temporalPort, '127.0.0.1', '--temporal-port', 'Temporal frontend');
    await assertPortFree(opts.uiPort, '127.0.0.1', '--ui-port', 'Temporal Web UI');

    const temporalDb = path.join(devDir, 'temporal.sqlite');
    if (!opts.keepState) {
      rmSync(devDir, { recursive: true, force: true });
      deleteTemporalDatabase(temporalDb);
    }
    mkdirSync(devDir, { recursive: true });

    const secrets = loadDevSecrets(devDir, opts.keepState);
    const envAdminToken = env[`${CONFIG_PREFIX}ADMIN_TOKEN`];
    const adminToken = envAdminToken || secrets.adminToken;

    const { state, save: saveState } = loadDevState(devDir, opts.keepState);

    const runners = planDemoRunners(opts.runners, devDir);
    const namespace = env[`${CONFIG_PREFIX}TEMPORAL_NAMESPACE`] || 'default';

    // The Temporal dev server takes seconds; the simulators start meanwhile.
    logger.info({ database: temporalDb, fresh: !opts.keepState }, 'starting the Temporal dev server');
    const temporalStart = startTemporalDevServer({
      logger: logger.child({ component: 'temporal' }),
      dbFile: temporalDb,
      port: opts.temporalPort || undefined,
      uiPort: opts.uiPort || undefined,
      ip: '127.0.0.1',
      namespace,
      startTimeoutMs: 60_000,
    });
    // Registered at once so a failure elsewhere still stops it.
    cleanups.push({ what: 'temporal', run: async () => (await temporalStart.catch(() => undefined))?.stop() });

    const proxmox: ProxmoxSimulator = await startProxmoxSimulator({
      https: true,
      profile: opts.profile,
      tokens: [{ tokenId: `${PROXMOX_USER}!${PROXMOX_TOKEN_NAME}`, secret: secrets.proxmoxSecret }],
      vms: runners.filter((r) => r.vm).map((r) => ({ node: r.vm!.node, vmid: r.vm!.vmid, name: r.runnerId, tags: [DEMO_VM_TAG], disk: { workspace: 'clean' } })),
    });
    cleanups.push({ what: 'proxmox simulator', run: () => proxmox.stop() });
    const gitlab: GitlabSimulator = await startGitlabSimulator({
      tokens: [secrets.gitlabToken],
      seed: {
        projects: [DEMO_PROJECT],
        runners: runners.map((r) => ({ id: r.gitlabRunnerId, description: r.runnerId, contacted: true, tags: ['demo', r.backend] })),
      },
    });
    cleanups.push({ what: 'gitlab simulator', run: () => gitlab.stop() });

    const inventoryPath = path.join(devDir, 'inventory.yml');
    await writeDemoInventory(inventoryPath, runners, {
      url: proxmox.httpsUrl ?? proxmox.url,
      ...(proxmox.fingerprint ? { fingerprint: proxmox.fingerprint } : {}),
      user: PROXMOX_USER,
      tokenName: PROXMOX_TOKEN_NAME,
      tokenValue: secrets.proxmoxSecret,
      requiredTag: DEMO_VM_TAG,
    });

    const temporal: TemporalDevServer = await temporalStart;
    checkAborted();
    logger.info({ address: temporal.address, ui: temporal.uiUrl }, 'Temporal dev server ready');

    const demoDefaults: Record<string, string> = {};
    for (const [key, value] of Object.entries(DEMO_SETTINGS)) if (!env[CONFIG_PREFIX + key]) demoDefaults[key] = value;
    let config: Config;
    try {
      config = loadConfig(env, {
        ...demoDefaults,
        SHUTDOWN_GRACE_SECONDS: DEV_SHUTDOWN_GRACE_SECONDS,
        DATABASE_URL: `pglite:${path.join(devDir, 'pglite')}`,
        INVENTORY_PATH: inventoryPath,
        PORT: opts.port,
        HOST: host,
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_UI_URL: temporal.uiUrl,
        TEMPORAL_REGISTER_SEARCH_ATTRIBUTES: 'true',
        ADMIN_TOKEN: adminToken,
        TOKEN_PEPPER: env[`${CONFIG_PREFIX}TOKEN_PEPPER`] || secrets.tokenPepper,
        GITLAB_URL: gitlab.url,
        GITLAB_TOKEN: secrets.gitlabToken,
        GITLAB_WEBHOOK_SECRET: secrets.webhookSecret,
      });
    } catch (err) {
      if (err instanceof ConfigError) throw new DevStartError(err.problems.join('; '));
      throw err;
    }

    await installTemporalRuntime({ logger });
    let controller: Controller;
    try {
      controller = await startController(config, { logger });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new DevStartError(`port ${opts.port} (API) is in use; choose another with --port <port>`);
      throw err;
    }
    // Drain and worker shutdown take a grace each; past that the stop goes on without the controller.
    const stopGrace = (2 * config.SHUTDOWN_GRACE_SECONDS + 2) * 1000;
    cleanups.push({
      what: 'controller',
      run: () => withTimeout(controller.stop(), stopGrace, () => logger.warn({ ms: stopGrace }, 'controller did not stop in time; going on')),
    });
    checkAborted();
    gitlab.api.addWebhook({ url: `${controller.url}/webhooks/gitlab`, token: secrets.webhookSecret });

    const agents: GuestAgents = startGuestAgents({
      runners,
      controllerUrl: `${controller.url.replace(/^http/, 'ws')}/ws/agent`,
      devDir,
      cliEntry,
      proxmox,
      bootDelayMs: opts.agentBootDelayMs ?? (opts.profile === 'realistic' ? 3_000 : 1_000),
      logger: logger.child({ component: 'agents' }),
    });
    beginStops.push(() => agents.beginStop());
    cleanups.push({ what: 'agents', run: () => agents.stop() });

    let demoJobs: DemoJobs | undefined;
    if (opts.demoJobs) {
      saveState();
      demoJobs = startDemoJobs({
        gitlab: gitlab.api,
        projectId: DEMO_PROJECT.id,
        runners: runners.map((r) => ({ runnerId: r.runnerId, gitlabRunnerId: r.gitlabRunnerId, socketPath: agents.socketPathOf(r.runnerId), workspaceDir: r.workspaceDir })),
        cliEntry,
        logger: logger.child({ component: 'demo-jobs' }),
        firstJobId: state.nextJobId,
        onJobCreated: (jobId) => {
          state.nextJobId = jobId + 1;
          saveState();
        },
        ...(opts.profile === 'realistic' ? { jobDurationMs: [10_000, 30_000] as [number, number] } : {}),
        ...opts.demo,
      });
      const jobs = demoJobs;
      beginStops.push(() => jobs.beginStop());
      cleanups.push({ what: 'demo jobs', run: () => jobs.stop() });
    }

    const agentInfo = new Map(agents.agents().map((a) => [a.runnerId, a]));
    let stopping: Promise<void> | undefined;
    const quiesce = () => {
      for (const step of beginStops) step();
    };
    return {
      apiUrl: controller.url,
      temporalUiUrl: temporal.uiUrl!,
      temporalAddress: temporal.address,
      namespace,
      proxmoxUrl: proxmox.httpsUrl ?? proxmox.url,
      gitlabUrl: gitlab.url,
      adminToken,
      adminTokenFromEnv: Boolean(envAdminToken),
      devDir,
      inventoryPath,
      runners: runners.map((r) => ({
        runnerId: r.runnerId,
        backend: r.backend,
        ...(r.vm ? { vmid: r.vm.vmid } : {}),
        gitlabRunnerId: r.gitlabRunnerId,
        socketPath: agentInfo.get(r.runnerId)!.socketPath,
        logFile: agentInfo.get(r.runnerId)!.logFile,
      })),
      config,
      demoJobs,
      beginStop() {
        quiesce();
      },
      stop() {
        stopping ??= (async () => {
          quiesce();
          await runCleanups();
        })();
        return stopping;
      },
    };
  } catch (err) {
    for (const step of beginStops) step();
    await runCleanups();
    if (opts.signal?.aborted) throw new DevStartAborted();
    throw err;
  }
}

