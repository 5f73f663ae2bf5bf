// Checkpoint names: `job-<jobId>-<unixSeconds>-<8 hex>`. The name is the workflow id and the
// Proxmox snapshot name, so it must be a valid pve-configid (^[a-z][a-z0-9_-]+$, at most 40 chars)
// whatever the backend.

export const SNAPSHOT_NAME_PATTERN = /^[a-z][a-z0-9_-]+$/;
export const SNAPSHOT_NAME_MAX = 40;
/** e2epool's finalize validation pattern, kept for compatible 422 answers. */
export const LEGACY_NAME_PATTERN = /^job-[\w.-]+-\d+-[0-9a-f]{8}$/;

const FIXED_LENGTH = 'job-'.length + 1 + 10 + 1 + 8; // job-, -, unix seconds, -, hex
export const MAX_JOB_ID_LENGTH = SNAPSHOT_NAME_MAX - FIXED_LENGTH;

export type JobIdProblem = { ok: true } | { ok: false; detail: string };

/** Whether a checkpoint for this job id can get a valid name; the detail explains why not. */
export function checkJobIdFitsName(jobId: string): JobIdProblem {
  if (jobId.length === 0) return { ok: false, detail: 'job_id is required' };
  if (!/^[a-z0-9_-]+$/.test(jobId)) {
    return {
      ok: false,
      detail: `job_id '${truncate(jobId)}' cannot form a checkpoint name: use lowercase letters, digits, '_' or '-' (a snapshot name must match ${SNAPSHOT_NAME_PATTERN.source})`,
    };
  }
  if (jobId.length > MAX_JOB_ID_LENGTH) {
    return {
      ok: false,
      detail: `job_id is ${jobId.length} characters; at most ${MAX_JOB_ID_LENGTH} fit in a ${SNAPSHOT_NAME_MAX}-character snapshot name`,
    };
  }
  return { ok: true };
}

export function mintCheckpointName(jobId: string, unixSeconds: number, hex8: string): string {
  if (!/^[0-9a-f]{8}$/.test(hex8)) throw new Error('hex8 must be 8 lowercase hex characters');
  const fits = checkJobIdFitsName(jobId);
  if (!fits.ok) throw new Error(fits.detail);
  const name = `job-${jobId}-${Math.floor(unixSeconds)}-${hex8}`;
  if (!isValidCheckpointName(name)) throw new Error(`minted an invalid checkpoint name: ${name}`);
  return name;
}

export function isValidCheckpointName(name: string): boolean {
  return name.length <= SNAPSHOT_NAME_MAX && SNAPSHOT_NAME_PATTERN.test(name) && LEGACY_NAME_PATTERN.test(name);
}

/** The job id embedded in a checkpoint name, or null. */
export function jobIdOfName(name: string): string | null {
  const m = /^job-(.+)-\d+-[0-9a-f]{8}$/.exec(name);
  return m ? m[1]! : null;
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
