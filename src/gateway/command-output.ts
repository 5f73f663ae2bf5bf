// Command output from runner hosts goes into errors, logs and the read model: cap its size and
// mask anything that looks like a credential before it leaves the gateway.

export const MAX_OUTPUT_CHARS = 64 * 1024;

const SECRET_PATTERNS: Array<[RegExp, string]> = [
  // Authorization headers and bearer/basic credentials.
  [/\b(authorization\s*[:=]\s*)(?:bearer|basic|token)?\s*[^\s"',;]+/gi, '$1***'],
  [/\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, '$1***'],
  // Proxmox API tokens: PVEAPIToken=user@realm!name=uuid
  [/(PVEAPIToken=)[^\s"',;]+/g, '$1***'],
  // GitLab / GitHub token formats.
  [/\b(?:glpat|glrt|gldt|glptt|glcbt|glsoat)-[A-Za-z0-9_-]{10,}/g, '***'],
  [/\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}/g, '***'],
  [/\bgithub_pat_[A-Za-z0-9_]{20,}/g, '***'],
  // key=value / key: value where the key names a secret (token=, private_token:, "password": ...).
  [/\b([\w-]*(?:token|secret|password|passwd|api[_-]?key)["']?\s*[:=]\s*["']?)[^\s"'&,;]+/gi, '$1***'],
  // Credentials inside URLs: scheme://user:password@host
  [/(\/\/[^:@/\s]+:)[^@/\s]+@/g, '$1***@'],
];

/** Masks token-looking substrings. */
export function redactSecrets(text: string): string {
  let out = text;
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
  // Only the part that can survive truncation is scanned (plus slack so a secret cut in half
  // at the boundary is still recognised).
  return truncateOutput(redactSecrets(text.slice(0, max + 1024)), max, text.length);
}
