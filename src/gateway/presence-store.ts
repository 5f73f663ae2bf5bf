// Agent presence in the database: which instance holds which runner's session, under which epoch.
// Every write is guarded by the session epoch, so a late write of an old session (on this instance
// or another one) never overwrites or deletes the row of a newer session. Routing reads the rows
// through src/store/agent-presence.ts.
import { and, eq, lte, sql, type SQL } from 'drizzle-orm';
import { agentPresence } from '../../db/schema.js';
import type { Db } from '../store/database.js';
import { rowsOf } from '../store/rows.js';

export interface PresenceSession {
  runnerId: string;
  sessionEpoch: number;
  bootId?: string | null;
  agentVersion?: string | null;
  /** null for legacy sessions (no hello). */
  declaredCommands: string[] | null;
}

export class PresenceStore {
  constructor(
    private readonly db: Db,
    private readonly instanceId: string,
  ) {}

  /** A new epoch from the database sequence: increasing across every instance. */
  async nextEpoch(): Promise<number> {
    const [row] = await rowsOf<{ epoch: string }>(this.db, sql`select nextval('agent_session_epoch')::text as epoch`);
    const epoch = Number(row?.epoch);
    if (!Number.isSafeInteger(epoch) || epoch <= 0) throw new Error('agent_session_epoch returned no usable value');
    return epoch;
  }

  /**
   * Records a session (at connect, and again at hello). Writes only when the stored row is not
   * newer; returns whether the row now belongs to this session.
   */
  async upsert(session: PresenceSession, opts: { connected: boolean }): Promise<boolean> {
    const values = {
      runnerId: session.runnerId,
      instanceId: this.instanceId,
      sessionEpoch: session.sessionEpoch,
      bootId: session.bootId ?? null,
      agentVersion: session.agentVersion ?? null,
      declaredCommands: session.declaredCommands,
    };
    const rows = await this.db
      .insert(agentPresence)
      .values(values)
      .onConflictDoUpdate({
        target: agentPresence.runnerId,
        set: {
          instanceId: values.instanceId,
          sessionEpoch: values.sessionEpoch,
          bootId: values.bootId,
          agentVersion: values.agentVersion,
          declaredCommands: values.declaredCommands,
          lastSeen: sql`now()`,
          // A hello on the same session keeps the time the session was opened.
          ...(opts.connected ? { connectedAt: sql`now()` } : {}),
        },
        setWhere: lte(agentPresence.sessionEpoch, values.sessionEpoch),
      })
      .returning({ epoch: agentPresence.sessionEpoch });
    return rows.length === 1;
  }

  /** Refreshes last_seen; false when the row no longer belongs to this session. */
  async touch(runnerId: string, sessionEpoch: number): Promise<boolean> {
    const rows = await this.db
      .update(agentPresence)
      .set({ lastSeen: sql`now()` })
      .where(and(eq(agentPresence.runnerId, runnerId), eq(agentPresence.sessionEpoch, sessionEpoch)))
      .returning({ epoch: agentPresence.sessionEpoch });
    return rows.length === 1;
  }

  /** Compare-and-delete: removes the row only if it still carries this session's epoch. */
  async remove(runnerId: string, sessionEpoch: number): Promise<boolean> {
    return (await this.removeKeepingLastSession(sql`runner_id = ${runnerId} and session_epoch = ${sessionEpoch}`)) === 1;
  }

  /**
   * Removes the rows this instance still owns (graceful stop, after new sessions are refused).
   * Compare-and-delete on the instance: a row taken over by a session elsewhere carries the other
   * instance's id and stays.
   */
  async removeOwn(): Promise<number> {
    return this.removeKeepingLastSession(sql`instance_id = ${this.instanceId}`);
  }

  /**
   * Deletes the matching presence rows and, in the same statement, keeps each as its runner's last
   * ended session (agent_last_sessions), so an offline runner still shows when it was last seen.
   * A newer ended session never gives way to an older one. Returns how many rows were deleted.
   */
  private async removeKeepingLastSession(where: SQL): Promise<number> {
    const result = await rowsOf<{ n: number }>(this.db, sql`
      with gone as (
        delete from agent_presence where ${where}
        returning runner_id, session_epoch, boot_id, agent_version, connected_at, last_seen
      ), kept as (
        insert into agent_last_sessions (runner_id, session_epoch, boot_id, agent_version, connected_at, last_seen_at, disconnected_at)
        select runner_id, session_epoch, boot_id, agent_version, connected_at, last_seen, now() from gone
        on conflict (runner_id) do update set
          session_epoch = excluded.session_epoch, boot_id = excluded.boot_id, agent_version = excluded.agent_version,
          connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at, disconnected_at = excluded.disconnected_at
        where agent_last_sessions.session_epoch <= excluded.session_epoch
      )
      select count(*)::int as n from gone`);
    return Number(result[0]?.n ?? 0);
  }
}
