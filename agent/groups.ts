// Unix group lookups without native modules: getent (sees NSS/LDAP groups) with /etc/group as
// the fallback, and dscl on macOS.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

function run(cmd: string, args: string[]): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
  } catch {
    return null;
  }
}

function etcGroupEntries(): Array<{ name: string; gid: number }> {
  let text: string;
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').flatMap((line) => {
    const [name, , gid] = line.split(':');
    return name && gid && /^\d+$/.test(gid) ? [{ name, gid: Number(gid) }] : [];
  });
}

/** Group id of a group name, or null when no such group exists. */
export function groupIdOf(name: string): number | null {
  if (/^\d+$/.test(name)) return Number(name);
  const line = run('getent', ['group', name]);
  const gid = line?.split(':')[2];
  if (gid && /^\d+$/.test(gid)) return Number(gid);
  const fromFile = etcGroupEntries().find((g) => g.name === name);
  if (fromFile) return fromFile.gid;
  if (process.platform === 'darwin') {
    const out = run('dscl', ['.', '-read', `/Groups/${name}`, 'PrimaryGroupID']);
    const m = out?.match(/PrimaryGroupID:\s*(\d+)/);
    if (m) return Number(m[1]);
  }
  return null;
}

/** Name of a group id, or the number as text when it has no name. */
export function groupNameOf(gid: number): string {
  const line = run('getent', ['group', String(gid)]);
  const name = line?.split(':')[0];
  if (name) return name;
  return etcGroupEntries().find((g) => g.gid === gid)?.name ?? String(gid);
}
