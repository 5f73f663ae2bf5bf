// The audit log of operator actions (`audit_log`). Details never carry secrets.
import { auditLog } from '../../db/schema.js';
import type { AuditEntry, AuditRecorder } from '../api/routes/runners.js';
import type { Db } from '../store/database.js';

export type { AuditEntry, AuditRecorder };

export function createAuditRecorder(db: Db): AuditRecorder {
  return {
    record: async (entry) => {
      await db.insert(auditLog).values({ actor: entry.actor, action: entry.action, target: entry.target ?? null, detail: entry.detail ?? null });
    },
  };
}
