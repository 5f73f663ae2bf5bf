// Session bookkeeping in the database: the presence row of each live session, written at connect,
// at hello and on signs of life, and deleted at teardown. A newer row elsewhere supersedes the
// session here; every write goes through the session's own serializer so they stay in order.
import { E2epoolError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { Db } from '../store/database.js';
import type { HelloPayload } from './envelope.js';
import { CLOSE_CODES } from './gateway-options.js';
import { PresenceStore } from './presence-store.js';
import type { AgentSession } from './session.js';

export interface SessionPresenceOptions {
  /** Minimum seconds between `last_seen` writes per session. */
  touchSeconds: number;
  closeTimeoutMs: number;
}

export class SessionPresence {
  private readonly store: PresenceStore;

  constructor(
    db: Db,
    instanceId: string,
    private readonly logger: Logger,
    private readonly opts: SessionPresenceOptions,
  ) {
    this.store = new PresenceStore(db, instanceId);
  }

  nextEpoch(): Promise<number> {
    return this.store.nextEpoch();
  }

  /** Upserts the presence row from the session's state; a newer row elsewhere supersedes us. */
  async record(session: AgentSession, connected: boolean): Promise<void> {
    try {
      const own = await this.store.upsert(
        {
          runnerId: session.runnerId,
          sessionEpoch: session.sessionEpoch,
          bootId: session.bootId,
          agentVersion: session.agentVersion,
          declaredCommands: session.declaredCommands,
        },
        { connected },
      );
      session.presenceRecorded = own;
      if (!own) this.supersede(session);
    } catch (err) {
      this.logger.warn({ runnerId: session.runnerId, sessionEpoch: session.sessionEpoch, err }, 'could not record agent presence; will retry');
    }
  }

  supersede(session: AgentSession): void {
    if (session.endReason !== null || session.ws.readyState !== session.ws.OPEN) return;
    this.logger.info({ runnerId: session.runnerId, sessionEpoch: session.sessionEpoch }, 'agent session superseded by a newer session on another instance');
    session.close(CLOSE_CODES.replaced, 'superseded', 'replaced by a newer session', this.opts.closeTimeoutMs);
  }

  /** A sign of life: refreshes `last_seen` at most every `touchSeconds` (or writes a row that failed). */
  alive(session: AgentSession, now: number): void {
    session.markAlive(now);
    const touchMs = this.opts.touchSeconds * 1000;
    if (now - session.lastPresenceTouchAt < touchMs || session.endReason !== null) return;
    session.lastPresenceTouchAt = now;
    void session.presence(async () => {
      if (!session.presenceRecorded) return this.record(session, true);
      try {
        if (!(await this.store.touch(session.runnerId, session.sessionEpoch))) this.supersede(session);
      } catch (err) {
        this.logger.warn({ runnerId: session.runnerId, err }, 'could not refresh agent presence');
      }
    });
  }

  /**
   * Records what a hello declares on the session's row. It keeps the epoch the session got at
   * connect: the epoch marks the connection, and a hello is only more detail about it.
   */
  async hello(session: AgentSession, payload: HelloPayload): Promise<void> {
    let own: boolean;
    try {
      own = await session.presence(() =>
        this.store.upsert(
          {
            runnerId: session.runnerId,
            sessionEpoch: session.sessionEpoch,
            bootId: payload.boot_id ?? null,
            agentVersion: payload.agent_version ?? null,
            declaredCommands: payload.commands,
          },
          { connected: !session.presenceRecorded },
        ),
      );
    } catch (err) {
      this.logger.warn({ runnerId: session.runnerId, err }, 'could not record agent hello');
      throw new E2epoolError('database_unavailable', 'Could not record the session; send hello again');
    }
    if (!own) {
      this.supersede(session);
      throw new E2epoolError('agent_stale_route', 'This session was replaced by a newer one');
    }
    session.presenceRecorded = true;
  }

  /** Compare-and-delete of the session's row at teardown. */
  async remove(session: AgentSession): Promise<void> {
    const { runnerId, sessionEpoch } = session;
    try {
      await session.presence(() => this.store.remove(runnerId, sessionEpoch));
    } catch (err) {
      this.logger.warn({ runnerId, sessionEpoch, err }, 'could not remove agent presence');
    }
  }

  /** Deletes the rows this instance still owns (end of a drain). */
  async removeOwn(): Promise<void> {
    try {
      await this.store.removeOwn();
    } catch (err) {
      this.logger.warn({ err }, 'could not remove this instance presence rows');
    }
  }
}
