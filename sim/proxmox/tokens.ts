// API tokens of the simulated Proxmox: the `PVEAPIToken=USER@REALM!TOKENID=SECRET` header, and the
// privileges and VMs each token may act on.
export type SimPrivilege = 'VM.Audit' | 'VM.Snapshot' | 'VM.Snapshot.Rollback' | 'VM.PowerMgmt' | 'Sys.Audit';
export const allSimPrivileges: SimPrivilege[] = ['VM.Audit', 'VM.Snapshot', 'VM.Snapshot.Rollback', 'VM.PowerMgmt', 'Sys.Audit'];

export interface SimToken {
  /** `USER@REALM!TOKENID` */
  tokenId: string;
  secret: string;
  /** VMs the token may act on; default every VM. */
  vms?: number[] | '*';
  /** Default: all of them. */
  privileges?: SimPrivilege[];
}

export const defaultSimToken: SimToken = { tokenId: 'e2epool@pve!ctl', secret: 'sim-secret' };

export function checkTokenIds(tokens: SimToken[]): void {
  for (const t of tokens) {
    if (!/^[^\s@!]+@[^\s@!]+![A-Za-z][A-Za-z0-9._-]*$/.test(t.tokenId)) throw new Error(`simulator token id ${JSON.stringify(t.tokenId)} must look like USER@REALM!TOKENID`);
  }
}

/** The token an Authorization header names, or why there is none. */
export function authenticate(tokens: SimToken[], header: string | undefined): SimToken | 'missing' | 'invalid' {
  if (!header) return 'missing';
  const m = /^PVEAPIToken=([^=\s]+)=(\S+)$/.exec(header.trim());
  if (!m) return 'invalid';
  const token = tokens.find((t) => t.tokenId === m[1]);
  return token && token.secret === m[2] ? token : 'invalid';
}

export function may(token: SimToken, privilege: SimPrivilege, vmid?: number): boolean {
  const privileges = token.privileges ?? allSimPrivileges;
  if (!privileges.includes(privilege)) return false;
  if (vmid === undefined || token.vms === undefined || token.vms === '*') return true;
  return token.vms.includes(vmid);
}
