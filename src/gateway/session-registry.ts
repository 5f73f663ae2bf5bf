// In-memory sessions of this instance. One live session per runner, decided by epoch: the higher
// epoch wins, and removing a session never removes another one that replaced it.
import type { AgentSession } from './session.js';

export class SessionRegistry {
  private readonly live = new Map<string, AgentSession>();
  /** Every open or closing session, including replaced ones still tearing down. */
  private readonly all = new Set<AgentSession>();

  /**
   * Makes `session` the runner's live session unless a newer epoch already holds it (two handshakes
   * of one runner can finish out of order). Returns the session it replaced, if any.
   */
  register(session: AgentSession): { accepted: boolean; replaced: AgentSession | null } {
    this.all.add(session);
    const current = this.live.get(session.runnerId);
    if (current && current.sessionEpoch > session.sessionEpoch) return { accepted: false, replaced: null };
    this.live.set(session.runnerId, session);
    return { accepted: true, replaced: current ?? null };
  }

  /** Forgets a session; the live entry is removed only if it is this very session. */
  remove(session: AgentSession): boolean {
    this.all.delete(session);
    if (this.live.get(session.runnerId) !== session) return false;
    this.live.delete(session.runnerId);
    return true;
  }

  get(runnerId: string): AgentSession | undefined {
    return this.live.get(runnerId);
  }

  sessionsOf(runnerId: string): AgentSession[] {
    return [...this.all].filter((s) => s.runnerId === runnerId);
  }

  sessions(): AgentSession[] {
    return [...this.all];
  }

  get size(): number {
    return this.all.size;
  }
}
