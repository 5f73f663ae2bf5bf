// Per-node caps on concurrent Proxmox operations, held as rows in `node_leases` so they hold across
// every controller instance (ARCHITECTURE.md §4.12). A lease has an expiry, renewed while held, so a
// crashed holder frees its slot by itself.
import { randomBytes } from 'node:crypto';
import { and, count, eq, lte, sql } from 'drizzle-orm';
import { nodeLeases } from '../db/schema.js';
import type { Db } from '../src/store/database.js';

export interface NodeLeaseOptions {
  /** Live leases allowed per node key. */
  cap: number;
  /** Lease lifetime; renewed every third of it while held. */
  ttlSeconds: number;
  /** Pause between attempts while every slot is taken. */
  retryMs: number;
}

export interface HeldLease {
  id: number;
  holder: string;
  release(): Promise<void>;
}

export interface AcquireHooks {
  /** Called before each wait for a free slot (the activity heartbeats here). */
  onWait?: (info: { nodeKey: string; holders: number }) => void;
  /** Cancellable wait; defaults to a plain timer. */
  sleep?: (ms: number) => Promise<void>;
}

/** PostgreSQL aborts one of two racing serializable transactions with these codes: try again. */
const RETRY_SQLSTATES = new Set(['40001', '40P01']);

function sqlState(err: unknown): string | undefined {
  for (let e: any = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

export class NodeLeases {
  constructor(
    private readonly db: Db,
    private readonly instanceId: string,
    private readonly opts: NodeLeaseOptions,
  ) {
    if (!Number.isInteger(opts.cap) || opts.cap < 1) throw new Error('node cap must be a positive integer');
  }

  /** Waits for a slot on `nodeKey`, then holds it until `release()`. */
  async acquire(nodeKey: string, label: string, hooks: AcquireHooks = {}): Promise<HeldLease> {
    const holder = `${this.instanceId}:${label}:${randomBytes(4).toString('hex')}`.slice(0, 255);
    const wait = hooks.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (;;) {
      const taken = await this.tryTake(nodeKey, holder);
      if (taken.id !== null) return this.held(taken.id, holder);
      hooks.onWait?.({ nodeKey, holders: taken.holders });
      await wait(this.opts.retryMs);
    }
  }

  /** One transaction: drop expired leases, count the live ones, insert ours when under the cap. */
  private async tryTake(nodeKey: string, holder: string): Promise<{ id: number | null; holders: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(
          async (tx) => {
            await tx.delete(nodeLeases).where(and(eq(nodeLeases.nodeKey, nodeKey), lte(nodeLeases.expiresAt, sql`now()`)));
            const [row] = await tx.select({ n: count() }).from(nodeLeases).where(eq(nodeLeases.nodeKey, nodeKey));
            const holders = Number(row?.n ?? 0);
            if (holders >= this.opts.cap) return { id: null, holders };
            const [inserted] = await tx
              .insert(nodeLeases)
              .values({ nodeKey, holder, expiresAt: sql`now() + make_interval(secs => ${this.opts.ttlSeconds})` })
              .returning({ id: nodeLeases.id });
            return { id: inserted!.id, holders: holders + 1 };
          },
          // Serializable: two instances counting at once cannot both see a free slot.
          { isolationLevel: 'serializable' },
        );
      } catch (err) {
        const state = sqlState(err);
        if (state === undefined || !RETRY_SQLSTATES.has(state) || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 20)));
      }
    }
  }

  private held(id: number, holder: string): HeldLease {
    const renewMs = Math.max(50, (this.opts.ttlSeconds * 1000) / 3);
    const timer = setInterval(() => {
      this.db
        .update(nodeLeases)
        .set({ expiresAt: sql`now() + make_interval(secs => ${this.opts.ttlSeconds})` })
        .where(eq(nodeLeases.id, id))
        .catch(() => undefined); // a missed renewal only shortens the lease; the next one retries
    }, renewMs);
    timer.unref();
    let released = false;
    return {
      id,
      holder,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await this.db.delete(nodeLeases).where(eq(nodeLeases.id, id));
      },
    };
  }
}
