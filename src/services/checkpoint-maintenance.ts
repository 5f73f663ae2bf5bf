// Maintenance mode: while it is on, new checkpoints are refused (the claim checks it too). Turning
// it on or off is audited and logged.
import type { Logger } from '../logger.js';
import type { Db } from '../store/database.js';
import { MAINTENANCE_KEY, readMaintenance, writeMaintenance, type MaintenanceState } from '../store/settings-store.js';

export interface MaintenanceDeps {
  db: Db;
  logger: Logger;
  /** Writes the audit row; never throws. */
  recordAudit(actor: string, action: string, target: string, detail: Record<string, unknown>): Promise<void>;
}

export function createMaintenanceSwitch(deps: MaintenanceDeps) {
  const { db, logger, recordAudit } = deps;
  return {
    getMaintenance: (): Promise<MaintenanceState> => readMaintenance(db),

    async setMaintenance(state: { enabled: boolean; message?: string | null }, actor: string): Promise<MaintenanceState> {
      const value = { enabled: state.enabled, message: state.message ?? '' };
      await writeMaintenance(db, value);
      await recordAudit(actor, state.enabled ? 'maintenance.enable' : 'maintenance.disable', MAINTENANCE_KEY, { message: value.message });
      logger.warn({ maintenance: value.enabled }, value.enabled ? 'maintenance mode on: new creates are refused' : 'maintenance mode off');
      return readMaintenance(db);
    },
  };
}
