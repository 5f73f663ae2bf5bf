// Where `e2epool admin` finds the controller and its admin token: flags first, then the environment
// (E2EPOOL_URL, E2EPOOL_ADMIN_TOKEN), then a YAML file (`url:` and `token:`). The file holds a
// secret, so it must be private to its owner: one readable by its group or others is refused.
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { AdminUsageError } from './errors.js';

export interface AdminConnection {
  /** Base URL of the controller, without a trailing slash. */
  url: string;
  token: string;
  /** Where each value came from, for error messages (never the token itself). */
  sources: { url: string; token: string };
}

export interface ConnectionInputs {
  url?: string | undefined;
  token?: string | undefined;
  /** --config: this file must exist. */
  config?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/** The default file: $XDG_CONFIG_HOME/e2epool/admin.yml, else ~/.config/e2epool/admin.yml. */
export function defaultAdminConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || homedir(), '.config');
  return path.join(base, 'e2epool', 'admin.yml');
}

/**
 * Reads the file, refusing it when group or others may read or write it, when it is not the
 * caller's own, or when it is a symbolic link. The checks and the read use one open descriptor, so
 * the file cannot be swapped in between.
 */
export function readAdminConfigFile(file: string, required: boolean): { url?: string; token?: string } | null {
  let fd: number;
  try {
    fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return null;
    if (code === 'ELOOP') throw new AdminUsageError(`refusing to read ${file}: it is a symbolic link (point --config at the file itself)`);
    throw new AdminUsageError(`cannot read the admin config ${file}: ${code ?? (err as Error).message}`);
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new AdminUsageError(`refusing to read ${file}: it is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const octal = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new AdminUsageError(`refusing to read ${file}: it holds the admin token but its mode is ${octal} (group or others may read it); run: chmod 600 ${file}`);
    }
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) throw new AdminUsageError(`refusing to read ${file}: it belongs to uid ${st.uid}, not to you (uid ${uid})`);
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    throw new AdminUsageError(`the admin config ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new AdminUsageError(`the admin config ${file} must be a mapping with url: and token:`);
  const record = data as Record<string, unknown>;
  const unknownKeys = Object.keys(record).filter((k) => k !== 'url' && k !== 'token');
  if (unknownKeys.length > 0) throw new AdminUsageError(`the admin config ${file} has unknown keys: ${unknownKeys.join(', ')} (only url and token)`);
  for (const key of ['url', 'token'] as const) {
    if (record[key] !== undefined && typeof record[key] !== 'string') throw new AdminUsageError(`the admin config ${file}: ${key} must be a string`);
  }
  return { ...(record.url ? { url: record.url as string } : {}), ...(record.token ? { token: record.token as string } : {}) };
}

export function resolveAdminConnection(inputs: ConnectionInputs): AdminConnection {
  const env = inputs.env ?? process.env;
  let url: { value: string; source: string } | undefined;
  let token: { value: string; source: string } | undefined;
  if (inputs.url) url = { value: inputs.url, source: '--url' };
  else if (env.E2EPOOL_URL) url = { value: env.E2EPOOL_URL, source: 'E2EPOOL_URL' };
  if (inputs.token) token = { value: inputs.token, source: '--token' };
  else if (env.E2EPOOL_ADMIN_TOKEN) token = { value: env.E2EPOOL_ADMIN_TOKEN, source: 'E2EPOOL_ADMIN_TOKEN' };

  // The file is read when it was named, or when flags and environment leave something open.
  const file = inputs.config ?? defaultAdminConfigPath(env);
  if (inputs.config || !url || !token) {
    const fromFile = readAdminConfigFile(file, Boolean(inputs.config));
    if (fromFile) {
      if (!url && fromFile.url) url = { value: fromFile.url, source: file };
      if (!token && fromFile.token) token = { value: fromFile.token, source: file };
    }
  }
  if (!url) throw new AdminUsageError(`no controller URL: pass --url, set E2EPOOL_URL, or put url: in ${file}`);
  if (!token) throw new AdminUsageError(`no admin token: pass --token, set E2EPOOL_ADMIN_TOKEN, or put token: in ${file} (mode 0600)`);
  let parsed: URL;
  try {
    parsed = new URL(url.value);
  } catch {
    throw new AdminUsageError(`the controller URL from ${url.source} is not a URL: ${url.value}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new AdminUsageError(`the controller URL from ${url.source} must be http:// or https://`);
  if (parsed.username || parsed.password) throw new AdminUsageError(`the controller URL from ${url.source} must not carry credentials; use --token`);
  return { url: parsed.toString().replace(/\/+$/, ''), token: token.value, sources: { url: url.source, token: token.source } };
}
