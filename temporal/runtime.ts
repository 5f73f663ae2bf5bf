// The Temporal SDK's process-wide runtime, installed once before any connection: its log lines
// (the TypeScript side and the Rust core) go through our pino logger as one JSON record each, and
// its worker metrics (task slots, schedule-to-start latency, poll failures) are exported by the
// core on a loopback port that our /metrics reads and appends.
import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../src/logger.js';
import { findFreePort } from './free-port.js';

// Metadata worth a field in a log line; the rest (task tokens, run ids) is noise.
const KEPT_META = ['taskQueue', 'activityType', 'workflowType', 'workflowId', 'namespace', 'attempt', 'state', 'sdkComponent', 'target'];

const WEBPACK_STATS = /^asset \S+ .*\[emitted\]/;

export interface TemporalRuntimeOptions {
  logger: Logger;
  /** Lowest SDK level written (default WARN; INFO adds worker state changes). */
  level?: LogLevel;
  /** Export the SDK's worker metrics (default true). */
  metrics?: boolean;
}

export interface TemporalRuntimeState {
  installed: boolean;
  /** Where the core serves its Prometheus text, when metrics are on. */
  metricsUrl?: string;
}

let state: TemporalRuntimeState | null = null;

function errorText(value: unknown): string | undefined {
  if (value instanceof Error) return value.message;
  return typeof value === 'string' ? value : undefined;
}

function forwarder(logger: Logger) {
  const sdkLogger = logger.child({ component: 'temporal-sdk' });
  return (entry: LogEntry) => {
    const meta = (entry.meta ?? {}) as Record<string, unknown>;
    const fields: Record<string, unknown> = {};
    for (const key of KEPT_META) if (meta[key] !== undefined) fields[key] = meta[key];
    const error = errorText(meta.error) ?? errorText(meta.failure);
    if (error) fields.error = error;
    // The bundler's webpack statistics (source runs only) are many lines of module sizes.
    if (WEBPACK_STATS.test(entry.message)) {
      sdkLogger.debug(fields, 'workflow bundler statistics (left out)');
      return;
    }
    const level = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : entry.level === 'INFO' ? 'info' : 'debug';
    sdkLogger[level](fields, entry.message);
  };
}

/**
 * Installs the runtime once per process; later calls return the first result. When another part of
 * the process already made a runtime (tests that build their own), nothing changes and
 * `installed` is false.
 */
export async function installTemporalRuntime(opts: TemporalRuntimeOptions): Promise<TemporalRuntimeState> {
  if (state) return state;
  const level = opts.level ?? 'WARN';
  const metricsPort = opts.metrics === false ? undefined : await findFreePort();
  const logger = new DefaultLogger(level, forwarder(opts.logger));
  const logging = { filter: { core: level, other: 'ERROR' as const }, forward: {} };
  const metricsUrl = metricsPort === undefined ? undefined : `http://127.0.0.1:${metricsPort}/metrics`;
  try {
    Runtime.install({
      logger,
      // serve and worker stop their workers themselves, after draining agent commands.
      shutdownSignals: [],
      telemetryOptions: {
        logging,
        ...(metricsPort === undefined
          ? {}
          : {
              metrics: {
                metricPrefix: 'temporal_',
                attachServiceName: false,
                prometheus: { bindAddress: `127.0.0.1:${metricsPort}`, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true },
              },
            }),
      },
    });
    state = { installed: true, ...(metricsUrl ? { metricsUrl } : {}) };
  } catch (err) {
    // A runtime that exists already keeps its own settings.
    opts.logger.debug({ err }, 'Temporal SDK runtime already installed');
    state = { installed: false };
  }
  return state;
}
