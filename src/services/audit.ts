// The audit log of operator actions (`audit_log`). Details never carry secrets.
import { insertAuditRow } from '../store/audit-log.js';
import type { Db } from '../store/database.js';

export interface AuditEntry {
  actor: string;
  action: string;
  target?: string | null;
  /** Never a secret. */
  detail?: Record<string, unknown>;
}

/** Writes one row of `audit_log`. */
export interface AuditRecorder {
  record(entry: AuditEntry): Promise<void>;
}

export function createAuditRecorder(db: Db): AuditRecorder {
  return {
    record: async (entry) => {
      await insertAuditRow(db, { actor: entry.actor, action: entry.action, target: entry.target ?? null, detail: entry.detail ?? null });
    },
  };
}
