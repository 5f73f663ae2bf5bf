// A claim held by a checkpoint whose workflow has ended (terminated, failed, or lost) is stale. It is
// never released automatically, because the machine may be dirty: the checkpoint is marked as needing
// attention (orphan_claim) with an alert, and an operator releases it.
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Db } from '../store/database.js';
import type { Logger } from '../logger.js';
import { raiseAlert } from '../store/alert-store.js';
import type { CheckpointRow } from '../store/checkpoint-reads.js';
import { markOrphanClaim } from '../store/checkpoint-store.js';

/** Whether the holder's workflow is closed; when it is, marks the checkpoint orphan_claim (idempotent). */
export async function markIfOrphanClaim(db: Db, client: Client, holder: CheckpointRow, logger: Logger): Promise<boolean> {
  let status: string;
  try {
    status = (await client.workflow.getHandle(holder.name).describe()).status.name;
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) return false; // Temporal unreachable: decide nothing
    status = 'NOT_FOUND';
  }
  if (status === 'RUNNING') return false;
  const detail = `workflow ${holder.name} is ${status.toLowerCase()} but its checkpoint still holds the runner's claim; release it after checking the machine`;
  await markOrphanClaim(db, holder, detail);
  const { raised } = await raiseAlert(db, {
    key: `needs_attention:${holder.name}`,
    severity: 'critical',
    message: `Runner ${holder.runnerId} needs attention (orphan_claim): ${detail}`,
    runnerId: holder.runnerId,
    checkpointName: holder.name,
  });
  if (raised) logger.error({ runnerId: holder.runnerId, checkpoint: holder.name, workflowId: holder.name, status }, 'stale claim: checkpoint workflow ended while holding the claim');
  return true;
}
