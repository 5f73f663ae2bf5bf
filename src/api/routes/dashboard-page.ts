// The dashboard page: src/dashboard/ holds its HTML shell, stylesheet and browser script as plain
// files. They are read once when this module loads; the style and script are inlined into the
// shell, and the Content-Security-Policy allows exactly those two by their SHA-256 hashes, so the
// page needs no second request and runs no other script.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Where the page's files live, next to the sources (and copied next to the build in dist/). */
const PAGE_DIR = new URL('../../dashboard/', import.meta.url);

function readPageFile(name: string): string {
  const text = readFileSync(new URL(name, PAGE_DIR), 'utf8');
  // Inlined text must not be able to close its own element.
  if (/<\/(script|style)/i.test(text) && name !== 'index.html') throw new Error(`src/dashboard/${name} must not contain a closing script or style tag`);
  return text;
}

const PAGE_SHELL = readPageFile('index.html');
const PAGE_STYLE = readPageFile('dashboard.css');
const PAGE_SCRIPT = readPageFile('dashboard.js');

const PLACEHOLDER = /\{\{(style|script|pollMs|reconnectMs)\}\}/g;

export function pageHtml(timing: { pollMs: number; reconnectMs: number }): string {
  const values: Record<string, string> = { style: PAGE_STYLE, script: PAGE_SCRIPT, pollMs: String(timing.pollMs), reconnectMs: String(timing.reconnectMs) };
  // A replacer function: the script's own `$` characters are never read as replacement patterns.
  return PAGE_SHELL.replace(PLACEHOLDER, (_m, key: string) => values[key]!);
}

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(PAGE_SCRIPT)}`,
  `style-src ${sha256(PAGE_STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
