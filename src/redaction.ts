// Output that leaves a process (command output, error text) is truncated and stripped of secrets.

export const MAX_OUTPUT_CHARS = 64 * 1024;

const SECRET_PATTERNS: RegExp[] = [
  /(PVEAPIToken=[^!\s]+![^=\s]+=)[^\s"']+/gi,
  /((?:private[-_]token|authorization|x-gitlab-token)\s*[:=]\s*(?:bearer\s+)?)[^\s"',]+/gi,
  /([?&](?:token|private_token|access_token)=)[^&#\s"']+/gi,
  /(\bglrt-)[A-Za-z0-9_-]{8,}/g,
  /(\bglpat-)[A-Za-z0-9_-]{8,}/g,
  /("?(?:token|password|secret|proxmox_token_value|gitlab_token)"?\s*[:=]\s*"?)[^\s"',}]{4,}/gi,
];

export function redactSecrets(text: string, extraSecrets: string[] = []): string {
  let out = text;
  for (const secret of extraSecrets) if (secret && secret.length >= 4) out = out.split(secret).join('***');
  for (const pattern of SECRET_PATTERNS) out = out.replace(pattern, '$1***');
  return out;
}

export function truncateOutput(text: string, max = MAX_OUTPUT_CHARS): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}\n…[truncated ${text.length - max} characters]`;
}
