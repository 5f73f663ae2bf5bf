// Store activities: the claim, projections, runner plan, epoch watermark and alerts.
import type { Db } from '../src/store/database.js';
import type { Logger } from '../src/logger.js';
import type { StoreActivities } from './types.js';
import { claimRunner, loadRunnerPlan, projectTransition, takeEpochWatermark } from '../src/store/checkpoint-store.js';
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
    raiseAlert: async (alert) => {
      const { raised } = await raiseAlert(db, alert);
      if (raised) {
        logger.warn({ runnerId: alert.runnerId, checkpoint: alert.checkpointName, alert: alert.key, severity: alert.severity }, alert.message);
        deps.onAlert?.(alert);
      }
    },
    resolveAlert: async ({ key }) => {
      const { resolved } = await resolveAlert(db, key);
      if (resolved) logger.info({ alert: key }, 'alert resolved');
    },
  };
}
