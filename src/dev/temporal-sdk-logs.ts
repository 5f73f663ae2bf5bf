// Sends the Temporal SDK's own log lines (worker state, bundle build, failed activities) through our
// logger as compact records at WARN and above, instead of its multi-line console output.
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import type { Logger } from '../logger.js';

// Metadata worth a field in a dev log line; the rest (task tokens, run ids) is noise here.
const KEPT_META = ['taskQueue', 'activityType', 'workflowType', 'workflowId', 'attempt', 'state'];

function errorText(value: unknown): string | undefined {
  if (value instanceof Error) return value.message;
  return typeof value === 'string' ? value : undefined;
}

/** Installs the SDK runtime with our logger; false when a runtime already exists in this process. */
export function routeTemporalSdkLogs(logger: Logger): boolean {
  const sdkLogger = logger.child({ component: 'temporal-sdk' });
  const forward = (entry: LogEntry) => {
    const meta = (entry.meta ?? {}) as Record<string, unknown>;
    const fields: Record<string, unknown> = {};
    for (const key of KEPT_META) if (meta[key] !== undefined) fields[key] = meta[key];
    const error = errorText(meta.error) ?? errorText(meta.failure);
    if (error) fields.error = error;
    const level = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : 'debug';
    sdkLogger[level](fields, entry.message);
  };
  try {
    Runtime.install({ logger: new DefaultLogger('WARN', forward) });
    return true;
  } catch {
    return false;
  }
}
