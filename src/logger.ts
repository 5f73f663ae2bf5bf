// Structured logs (pino) with secrets redacted by key and tokens stripped from URLs.
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT_PATHS = [
  'token', '*.token', 'password', '*.password', 'secret', '*.secret', 'authorization', '*.authorization',
  'headers.authorization', 'req.headers.authorization', 'req.headers["x-gitlab-token"]', 'req.headers["private-token"]',
  'proxmoxTokenValue', '*.proxmoxTokenValue', 'proxmox_token_value', '*.proxmox_token_value', 'gitlabToken', '*.gitlabToken',
];

/** Removes token=... query parameters and credentials from URLs before they are logged. */
export { stripSecretsFromUrl } from './redaction.js';

export function createLogger(opts: { level?: string; name?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      name: opts.name ?? 'e2epool',
      redact: { paths: REDACT_PATHS, censor: '***' },
      base: { pid: process.pid },
    },
    opts.destination,
  );
}
