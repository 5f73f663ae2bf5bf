// Temporal servers for tests, always from .tools/venv (the SDK never downloads anything). A server
// starts once per test file in `before` and is torn down in `after`; workflows are bundled once per
// process.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import path from 'node:path';
import { registerSearchAttributes } from '../../temporal/search-attributes-admin.js';
import { e2epoolSearchAttributes } from '../../temporal/search-attributes.js';
import { installToolsCommand, repoRoot, requireTemporalTool, type TemporalTool } from '../../temporal/tool-paths.js';

export const workflowsIndexPath = path.join(repoRoot, 'workflows', 'index.ts');

/**
 * Paths of both server binaries. A missing one throws, so the test fails: with CI=true that is the
 * rule (ARCHITECTURE §6), and locally a silent skip would hide that nothing ran.
 */
export function requireTemporalBinaries(tools: TemporalTool[] = ['cli', 'test-server']): { cli?: string; testServer?: string } {
  const found: { cli?: string; testServer?: string } = {};
  for (const tool of tools) {
    try {
      if (tool === 'cli') found.cli = requireTemporalTool('cli');
      else found.testServer = requireTemporalTool('test-server');
    } catch (err) {
      const where = process.env.CI === 'true' ? 'CI=true: a missing Temporal server fails the run' : 'tests never skip';
      throw new Error(`${(err as Error).message}\n(${where}; run '${installToolsCommand}' first.)`, { cause: err });
    }
  }
  return found;
}

let runtimeQuieted = false;
/** The SDK's runtime logs every worker state change at INFO; tests only want warnings. */
export function quietTemporalRuntime(): void {
  if (runtimeQuieted) return;
  runtimeQuieted = true;
  try {
    Runtime.install({ logger: new DefaultLogger((process.env.E2EPOOL_TEST_TEMPORAL_LOG as any) || 'ERROR'), telemetryOptions: { logging: { forward: {}, filter: { core: 'ERROR', other: 'ERROR' } } } as any });
  } catch {
    // Already created by an earlier caller in this process: keep it.
  }
}

/** Time-skipping test server with our search attributes registered through the operator service. */
export async function startTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const { testServer } = requireTemporalBinaries(['test-server']);
  quietTemporalRuntime();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testServer! } },
  });
  try {
    await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  } catch (err) {
    await env.teardown();
    throw err;
  }
  return env;
}

export interface DevServerEnvOptions {
  namespace?: string;
  /** Start the Web UI too (on `uiPort`, or the SDK's default port + 1000). */
  ui?: boolean;
  uiPort?: number;
}

/**
 * Full dev server (Temporal CLI) in memory. createLocal passes our search attributes as
 * --search-attribute flags, which apply because the namespace is created at launch.
 */
export async function startDevServerEnv(opts: DevServerEnvOptions = {}): Promise<TestWorkflowEnvironment> {
  const { cli } = requireTemporalBinaries(['cli']);
  quietTemporalRuntime();
  return await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli! },
      ip: '127.0.0.1',
      namespace: opts.namespace ?? 'default',
      searchAttributes: [...e2epoolSearchAttributes],
      ui: opts.ui ?? false,
      ...(opts.uiPort !== undefined ? { uiPort: opts.uiPort } : {}),
      log: { format: 'pretty', level: 'error' },
    },
  });
}

const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();

/** bundleWorkflowCode once per workflows entry per process (bundling takes seconds). */
export function bundleWorkflowsOnce(workflowsPath: string = workflowsIndexPath): Promise<WorkflowBundleWithSourceMap> {
  const key = path.resolve(workflowsPath);
  let bundle = bundles.get(key);
  if (!bundle) {
    quietTemporalRuntime();
    bundle = bundleWorkflowCode({ workflowsPath: key, logger: new DefaultLogger('WARN') });
    bundles.set(key, bundle);
    // A failed bundle is not cached: the next caller gets a fresh attempt and its own error.
    bundle.catch(() => bundles.delete(key));
  }
  return bundle;
}
