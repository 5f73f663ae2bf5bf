// Whether a runner may take a job now, and if not the first reason why: maintenance, drained, a
// checkpoint needing attention, resetting or being finalized, or no agent session.
import { finalizePendingStates, resettingStates } from '../domain/checkpoint-states.js';
import { E2epoolError } from '../domain/errors.js';
import type { Runner } from '../inventory/registry.js';
import { resolveRoute } from '../store/agent-presence.js';
import { findInStates } from '../store/checkpoint-reads.js';
import type { Db } from '../store/database.js';
import { readMaintenance } from '../store/settings-store.js';

export type ReadinessReason = 'maintenance' | 'drained' | 'needs_attention' | 'reset_in_progress' | 'finalize_in_progress' | 'agent_not_connected';

export type ReadinessAnswer =
  | { runner_id: string; ready: true; detail: null }
  | { runner_id: string; ready: false; reason: ReadinessReason; detail: string };

export async function runnerReadiness(db: Db, registry: { getRunner(runnerId: string): Promise<Runner | null> }, runnerId: string): Promise<ReadinessAnswer> {
  const runner = await registry.getRunner(runnerId);
  if (!runner) throw new E2epoolError('runner_not_found', 'Runner not found');
  const notReady = (reason: ReadinessReason, why: string): ReadinessAnswer => ({ runner_id: runnerId, ready: false, reason, detail: `Runner not ready: ${why}` });
  const maintenance = await readMaintenance(db);
  if (maintenance.enabled) return notReady('maintenance', maintenance.message);
  if (runner.drained) return notReady('drained', 'runner is drained');
  const attention = await findInStates(db, runnerId, ['needs_attention']);
  if (attention) return notReady('needs_attention', `checkpoint '${attention.name}' needs attention (${attention.needsAttentionReason ?? 'unknown reason'})`);
  const resetting = await findInStates(db, runnerId, resettingStates);
  if (resetting) return notReady('reset_in_progress', `checkpoint '${resetting.name}' is resetting the runner (${resetting.state})`);
  const finalizing = await findInStates(db, runnerId, finalizePendingStates);
  if (finalizing) return notReady('finalize_in_progress', `checkpoint '${finalizing.name}' is being finalized (${finalizing.state})`);
  const route = await resolveRoute(db, runnerId);
  if (!route) return notReady('agent_not_connected', 'agent not connected');
  return { runner_id: runnerId, ready: true, detail: null };
}
