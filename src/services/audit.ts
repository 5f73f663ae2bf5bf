// The audit log of operator actions (`audit_log`). Details never carry secrets.
import { auditLog } from '../../db/schema.js';
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
      await db.insert(auditLog).values({ actor: entry.actor, action: entry.action, target: entry.target ?? null, detail: entry.detail ?? null });
    },
  };
}
