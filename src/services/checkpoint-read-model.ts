// e2epool's CheckpointResponse, made from a row of the checkpoint read model (the reads are in
// src/store/checkpoint-reads.ts).
import type { CheckpointRow } from '../store/checkpoint-reads.js';

/** e2epool's CheckpointResponse (protocol spec §4.3); finalized_at is when the finalize was queued. */
export interface CheckpointResponse {
  name: string;
  runner_id: string;
  job_id: string;
  state: string;
  finalize_status: string | null;
  finalize_source: string | null;
  created_at: string;
  finalized_at: string | null;
}

/** Timestamps as e2epool wrote them: ISO-8601 in UTC without an offset. */
export function naiveUtc(d: Date | null | undefined): string | null {
  return d ? d.toISOString().replace(/Z$/, '') : null;
}

export function toCheckpointResponse(row: CheckpointRow): CheckpointResponse {
  return {
    name: row.name,
    runner_id: row.runnerId,
    job_id: row.jobId,
    state: row.state,
    finalize_status: row.finalizeStatus,
    finalize_source: row.finalizeSource,
    created_at: naiveUtc(row.createdAt)!,
    finalized_at: naiveUtc(row.finalizeQueuedAt),
  };
}
