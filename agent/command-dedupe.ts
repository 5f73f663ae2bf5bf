// Remembers command ids (`<workflowId>:<step>:<attempt>`) so a command the controller re-sends
// after a re-route never runs twice: a repeat while running attaches to the run, a repeat after it
// finished gets the stored result.

export const DEFAULT_COMMAND_MEMORY_MS = 30 * 60 * 1000;

interface Entry<T> {
  key: string;
  promise: Promise<T>;
  /** Set when the run finished; the entry expires `ttlMs` after that. */
  finishedAt: number | null;
}

export type DedupeOutcome<T> = { result: T; replayed: boolean } | { conflict: string };

export class CommandDedupeStore<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly ttlMs = DEFAULT_COMMAND_MEMORY_MS,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    this.sweep();
    return this.entries.size;
  }

  /**
   * Runs `fn` once per id. `key` names what the id stands for (the command name); the same id with
   * a different key is refused rather than answered with another command's result.
   */
  async runOnce(id: string, key: string, fn: () => Promise<T>): Promise<DedupeOutcome<T>> {
    this.sweep();
    const existing = this.entries.get(id);
    if (existing) {
      if (existing.key !== key) return { conflict: `command_id ${id} was used for command '${existing.key}'` };
      return { result: await existing.promise, replayed: true };
    }
    const entry: Entry<T> = { key, promise: Promise.resolve().then(fn), finishedAt: null };
    this.entries.set(id, entry);
    try {
      const result = await entry.promise;
      return { result, replayed: false };
    } catch (err) {
      // A run that threw has no result to replay; let a retry run it.
      this.entries.delete(id);
      throw err;
    } finally {
      if (this.entries.get(id) === entry) entry.finishedAt = this.now();
    }
  }

  private sweep(): void {
    const limit = this.now() - this.ttlMs;
    for (const [id, entry] of this.entries) {
      if (entry.finishedAt !== null && entry.finishedAt <= limit) this.entries.delete(id);
    }
  }
}
