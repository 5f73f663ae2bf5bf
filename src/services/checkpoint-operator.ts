// Operator actions on a checkpoint that needs attention: retry its reset, or release the runner.
// Both are signals to its workflow, carrying the needs-attention episode they answer; a release of
// a checkpoint whose workflow is gone clears the claim in the database. Each is audited.
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { E2epoolError } from '../domain/errors.js';
import { findCheckpoint, needsAttentionEpisode, type CheckpointRow } from '../store/checkpoint-reads.js';
import { releaseOrphanClaim } from '../store/checkpoint-store.js';
import type { Db } from '../store/database.js';
import { releaseSignal, retryResetSignal } from '../../workflows/messages.js';

export const CHECKPOINT_NOT_FOUND = 'Checkpoint not found';

export interface OperatorAnswer {
  detail: string;
  checkpoint_name: string;
}

export interface CheckpointOperatorDeps {
  db: Db;
  client: Client;
  /** Writes the audit row; never throws. */
  recordAudit(actor: string, action: string, target: string, detail: Record<string, unknown>): Promise<void>;
}

export function createCheckpointOperator(deps: CheckpointOperatorDeps) {
  const { db, client, recordAudit } = deps;

  async function needsAttentionCheckpoint(name: string): Promise<CheckpointRow> {
    const row = await findCheckpoint(db, name);
    if (!row) throw new E2epoolError('checkpoint_not_found', CHECKPOINT_NOT_FOUND);
    if (row.state !== 'needs_attention') {
      throw new E2epoolError('invalid_state', `Checkpoint '${name}' is not in needs_attention (state: ${row.state})`, { state: row.state });
    }
    return row;
  }

  return {
    async retryReset(name: string, actor: string): Promise<OperatorAnswer> {
      const row = await needsAttentionCheckpoint(name);
      try {
        const episode = await needsAttentionEpisode(db, name);
        await client.workflow.getHandle(name).signal(retryResetSignal, { actor, ...(episode !== undefined ? { episode } : {}) });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        throw new E2epoolError('invalid_state', `The workflow of checkpoint '${name}' has closed; release it instead`);
      }
      await recordAudit(actor, 'checkpoint.retry_reset', name, { runnerId: row.runnerId, reason: row.needsAttentionReason });
      return { detail: 'Reset retry requested', checkpoint_name: name };
    },

    async release(name: string, actor: string, deleteSnapshot: boolean): Promise<OperatorAnswer> {
      const row = await needsAttentionCheckpoint(name);
      try {
        const episode = await needsAttentionEpisode(db, name);
        await client.workflow.getHandle(name).signal(releaseSignal, { actor, deleteSnapshot, ...(episode !== undefined ? { episode } : {}) });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        // A stale claim (its workflow is gone): the operator vouches for the runner; free it here.
        await releaseOrphanClaim(db, row, actor);
        await recordAudit(actor, 'checkpoint.release', name, { runnerId: row.runnerId, deleteSnapshot, workflowClosed: true });
        return { detail: 'Released (workflow closed: claim cleared in the database; snapshot and runner pause left as they are)', checkpoint_name: name };
      }
      await recordAudit(actor, 'checkpoint.release', name, { runnerId: row.runnerId, deleteSnapshot, reason: row.needsAttentionReason });
      return { detail: 'Release requested', checkpoint_name: name };
    },
  };
}
