// The files of `e2epool dev` under its data directory: the lock that keeps one dev per directory,
// the generated secrets (kept across restarts with keepState, written mode 0600), and the demo
// state (the next demo job id).
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { generateToken } from './demo-inventory.js';

/** A start that cannot go on; the message is one line meant for the user. */
export class DevStartError extends Error {
  override name = 'DevStartError';
}

export interface DevSecrets {
  adminToken: string;
  tokenPepper: string;
  gitlabToken: string;
  webhookSecret: string;
  proxmoxSecret: string;
}

export interface DevState {
  nextJobId: number;
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** One `dev` per data directory: the second one would wipe the first one's state. */
export function takeDevLock(lockFile: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lockFile, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new DevStartError(`another e2epool dev (pid ${pid}) is using ${path.dirname(lockFile)}; stop it or use --data-dir`);
      }
      rmSync(lockFile, { force: true }); // left by a run that died
    }
  }
  throw new DevStartError(`could not lock ${lockFile}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The dev secrets: the stored ones when `keep`, new ones otherwise; written back mode 0600. */
export function loadDevSecrets(devDir: string, keep: boolean): DevSecrets {
  const secretsFile = path.join(devDir, 'secrets.json');
  const stored = keep ? readJson<Partial<DevSecrets>>(secretsFile) : undefined;
  const secrets: DevSecrets = {
    adminToken: stored?.adminToken ?? generateToken(),
    tokenPepper: stored?.tokenPepper ?? generateToken(),
    gitlabToken: stored?.gitlabToken ?? `glpat-${generateToken()}`,
    webhookSecret: stored?.webhookSecret ?? generateToken(),
    proxmoxSecret: stored?.proxmoxSecret ?? randomBytes(16).toString('hex'),
  };
  writeFileSync(secretsFile, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/** The demo state (stored when `keep`), and `save()` to write it after a change. */
export function loadDevState(devDir: string, keep: boolean): { state: DevState; save(): void } {
  const stateFile = path.join(devDir, 'demo-state.json');
  const state: DevState = { nextJobId: 1, ...(keep ? readJson<Partial<DevState>>(stateFile) : {}) };
  if (!Number.isInteger(state.nextJobId) || state.nextJobId < 1) state.nextJobId = 1;
  return { state, save: () => writeFileSync(stateFile, JSON.stringify(state)) };
}
