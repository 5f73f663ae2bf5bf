// The one redactor: text that leaves a process (command output, error messages, alert bodies,
// Temporal payloads) is capped and stripped of anything that looks like a credential.

export const MAX_OUTPUT_CHARS = 64 * 1024;

const SECRET_PATTERNS: Array<[RegExp, string]> = [
  // Proxmox API tokens: PVEAPIToken=user@realm!name=uuid
  [/(PVEAPIToken=)[^\s"',;]+/gi, '$1***'],
  // Authorization-style headers and bearer credentials.
  [/\b((?:authorization|private[-_]token|x-gitlab-token|job[-_]token)\s*[:=]\s*)(?:bearer\s+|basic\s+|token\s+)?[^\s"',;&]+/gi, '$1***'],
  [/\b(bearer\s+)(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}/gi, '$1***'],
  // Tokens in query strings.
  [/([?&](?:token|private_token|access_token|job_token)=)[^&#\s"']+/gi, '$1***'],
  // GitLab and GitHub token formats.
  [/\b(?:glpat|glrt|gldt|glptt|glcbt|glsoat)-[A-Za-z0-9_-]{8,}/g, '***'],
  [/\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}/g, '***'],
  [/\bgithub_pat_[A-Za-z0-9_]{20,}/g, '***'],
  // key=value and "key": "value" where the key names a secret.
  [/\b([\w-]*(?:token|secret|password|passwd|api[_-]?key)["']?\s*[:=]\s*["']?)(?!\*\*\*)[^\s"'&,;}]+/gi, '$1***'],
  // Credentials inside URLs: scheme://user:password@host
  [/(\/\/[^:@/\s]+:)[^@/\s]+@/g, '$1***@'],
];

/** Masks credential-looking substrings, and every occurrence of the given secrets. */
export function redactSecrets(text: string, extraSecrets: readonly string[] = []): string {
  let out = text;
  for (const secret of extraSecrets) if (secret && secret.length >= 4) out = out.split(secret).join('***');
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Keeps at most `max` characters (the head, where commands usually say what went wrong first). */
export function truncateOutput(text: string, max = MAX_OUTPUT_CHARS, originalLength = text.length): string {
  if (text.length <= max && originalLength <= max) return text;
  const keep = Math.max(0, max - 48); // room for the marker below (at most 40 characters)
  return `${text.slice(0, keep)}\n[truncated ${originalLength - keep} characters]`.slice(0, max);
}

/** Redacts, then caps: what may be stored, logged or returned. */
export function sanitizeOutput(text: string, max = MAX_OUTPUT_CHARS): string {
  // Only the part that can survive truncation is scanned (plus slack, so a secret cut in half at
  // the boundary is still recognised).
  return truncateOutput(redactSecrets(text.slice(0, max + 1024)), max, text.length);
}

/**
 * A URL fit for a log line: token query parameters and user:password credentials masked, the
 * rest kept. The agent keeps an identical copy (agent/log.ts: it ships without controller code);
 * one test runs the same cases against both.
 */
export function stripSecretsFromUrl(url: string): string {
  return url
    .replace(/([?&](?:token|private_token|access_token|job_token)=)[^&#\s]*/gi, '$1***')
    .replace(/\/\/([^:@/\s]+):[^@/\s]*@/, '//$1:***@');
}
