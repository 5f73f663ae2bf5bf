// Who may use the admin API: E2EPOOL_ADMIN_TOKEN (actor "admin") and the named tokens of
// E2EPOOL_ADMIN_TOKENS_FILE (one `name: token` per line), re-read when the file changes, so an
// operator's token is added, rotated or revoked without a restart. Audit entries name the actor.
import { readFileSync, statSync } from 'node:fs';
import { constantTimeEqual } from '../integrations/gitlab/constant-time.js';
import { parse } from 'yaml';
import type { Logger } from '../logger.js';
import { MIN_TOKEN_LENGTH } from '../inventory/token-hash.js';

const ACTOR_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/;

export class AdminTokens {
  private named: Array<{ actor: string; token: string }> = [];
  private fileStamp: string | null = null;

  constructor(
    private readonly opts: { token?: string | undefined; file?: string | undefined; logger?: Logger | undefined },
  ) {}

  /** Whether any admin token exists; without one the admin API answers 503. */
  configured(): boolean {
    this.reload();
    return Boolean(this.opts.token) || this.named.length > 0;
  }

  /** The actor a presented token belongs to, or null. Compares every candidate in constant time. */
  actorFor(given: string): string | null {
    this.reload();
    let actor: string | null = null;
    if (this.opts.token && constantTimeEqual(given, this.opts.token)) actor = 'admin';
    for (const n of this.named) if (constantTimeEqual(given, n.token) && actor === null) actor = n.actor;
    return actor;
  }

  private reload(): void {
    const file = this.opts.file;
    if (!file) return;
    let stamp: string;
    try {
      const st = statSync(file);
      stamp = `${st.mtimeMs}:${st.size}`;
    } catch {
      if (this.fileStamp !== 'missing') this.opts.logger?.error({ file }, 'admin tokens file is missing: no named admin token is accepted');
      this.fileStamp = 'missing';
      this.named = [];
      return;
    }
    if (stamp === this.fileStamp) return;
    this.fileStamp = stamp;
    const next: Array<{ actor: string; token: string }> = [];
    try {
      const data: unknown = parse(readFileSync(file, 'utf8')) ?? {};
      if (typeof data !== 'object' || Array.isArray(data)) throw new Error('must be a mapping of name: token');
      for (const [actor, token] of Object.entries(data as Record<string, unknown>)) {
        if (!ACTOR_NAME.test(actor) || typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH) {
          this.opts.logger?.error({ file, actor: actor.slice(0, 100) }, `admin tokens file: entry skipped (names are letters, digits, . _ @ -; tokens need ${MIN_TOKEN_LENGTH}+ characters)`);
          continue;
        }
        next.push({ actor, token });
      }
      this.named = next;
      this.opts.logger?.info({ file, operators: next.map((n) => n.actor) }, 'admin tokens loaded');
    } catch (err) {
      this.named = [];
      this.opts.logger?.error({ file, err: (err as Error).message }, 'admin tokens file is invalid: no named admin token is accepted');
    }
  }
}
