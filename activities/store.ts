// Store activities: the claim, projections, runner plan, epoch watermark and alerts.
import type { Db } from '../src/store/database.js';
import type { Logger } from '../src/logger.js';
import type { AlertInput, StoreActivities } from './types.js';
import { claimRunner, loadRunnerPlan, projectTransition, recordProgress, takeEpochWatermark } from '../src/store/checkpoint-store.js';
import { raiseAlert, resolveAlert } from '../src/store/alert-store.js';

export interface StoreDeps {
  db: Db;
  logger: Logger;
  /** Called after an alert is newly raised (delivery to webhooks, metrics). */
  onAlert?: (alert: Parameters<StoreActivities['raiseAlert']>[0]) => void;
}

export function createStoreActivities(deps: StoreDeps): StoreActivities {
  const { db, logger } = deps;
  return {
    claimRunner: (input) => claimRunner(db, input),
    projectTransition: async (input) => {
      await projectTransition(db, input);
      logger.info({ runnerId: input.runnerId, checkpoint: input.name, workflowId: input.name, from: input.from, to: input.to, event: input.event }, input.detail ?? input.event);
    },
    releaseClaim: async (input) => {
      await projectTransition(db, input, { releaseClaim: true });
      logger.info({ runnerId: input.runnerId, checkpoint: input.name, workflowId: input.name, from: input.from, to: input.to, event: input.event }, `claim released: ${input.detail ?? input.event}`);
    },
    loadRunnerPlan: ({ runnerId }) => loadRunnerPlan(db, runnerId),
    takeEpochWatermark: () => takeEpochWatermark(db),
    raiseAlert: (alert) => raise(alert),
    resolveAlert: ({ key }) => resolve(key),
    recordProgress: async (input) => {
      const result = await recordProgress(db, input);
      for (const t of input.transitions) {
        logger.info({ runnerId: input.runnerId, checkpoint: input.name, workflowId: input.name, from: t.from, to: t.to, event: t.event }, t.releaseClaim ? `claim released: ${t.detail ?? t.event}` : t.detail ?? t.event);
      }
      // Resolves first: a batch that leaves one episode and opens the next raises after closing.
      for (const key of input.resolveAlerts ?? []) await resolve(key);
      for (const alert of input.raiseAlerts ?? []) await raise(alert);
      return result;
    },
  };

  async function raise(alert: AlertInput) {
    const { raised } = await raiseAlert(db, alert);
    if (raised) {
      logger.warn({ runnerId: alert.runnerId, checkpoint: alert.checkpointName, alert: alert.key, severity: alert.severity }, alert.message);
      deps.onAlert?.(alert);
    }
  }

  async function resolve(key: string) {
    const { resolved } = await resolveAlert(db, key);
    if (resolved) logger.info({ alert: key }, 'alert resolved');
  }
}
