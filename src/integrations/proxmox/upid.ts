// Proxmox task ids (UPIDs): `UPID:<node>:<pid 8 hex>:<pstart 8-9 hex>:<starttime 8 hex>:<type>:<id>:<user>:`.
// The trailing colon is part of the id and must be kept when the UPID is sent back.

export interface Upid {
  node: string;
  pid: number;
  pstart: number;
  /** Unix seconds. */
  starttime: number;
  type: string;
  id: string;
  user: string;
}

const UPID_PATTERN = /^UPID:([a-zA-Z0-9][a-zA-Z0-9.-]*):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$/;

export function parseUpid(value: string): Upid {
  const m = UPID_PATTERN.exec(value);
  if (!m) throw new Error(`not a Proxmox UPID: ${JSON.stringify(value.slice(0, 200))}`);
  return {
    node: m[1]!,
    pid: Number.parseInt(m[2]!, 16),
    pstart: Number.parseInt(m[3]!, 16),
    starttime: Number.parseInt(m[4]!, 16),
    type: m[5]!,
    id: m[6]!,
    user: m[7]!,
  };
}

export function isUpid(value: unknown): value is string {
  return typeof value === 'string' && UPID_PATTERN.test(value);
}

function hex(n: number, width: number): string {
  return Math.trunc(n).toString(16).toUpperCase().padStart(width, '0');
}

export function buildUpid(u: Upid): string {
  return `UPID:${u.node}:${hex(u.pid, 8)}:${hex(u.pstart, 8)}:${hex(u.starttime, 8)}:${u.type}:${u.id}:${u.user}:`;
}
