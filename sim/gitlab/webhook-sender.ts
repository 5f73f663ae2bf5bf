// Delivers "Job Hook" webhooks the way GitLab does: a POST per job status change with
// X-Gitlab-Event, X-Gitlab-Token and X-Gitlab-Event-UUID, at least once. Options add duplicate
// deliveries (same UUID), delays, and retries of 5xx and connection failures. Deliveries to one
// hook go out in order, so tests see statuses in the order they happened.
import { randomUUID } from 'node:crypto';
import { sleepUnlessAborted } from '../../src/util/sleep.js';

export interface SimWebhookConfig {
  url: string;
  /** Sent as X-Gitlab-Token; omitted when unset. */
  token?: string;
  /** Extra copies of every event with the same UUID (at-least-once delivery). Default 0. */
  duplicates?: number;
  /** Wait before each delivery, in ms. Default 0. */
  delayMs?: number;
  /** Attempts per delivery when the receiver answers 5xx or is unreachable. Default 4. */
  maxAttempts?: number;
  /** First retry wait in ms, doubled per attempt. Default 50. */
  retryDelayMs?: number;
  /** Per-attempt timeout in ms (GitLab.com gives receivers about 10 s). Default 10000. */
  timeoutMs?: number;
}

export interface WebhookDeliveryRecord {
  hookUrl: string;
  uuid: string;
  jobId: number;
  buildStatus: string;
  /** 0 for the original, 1.. for duplicate copies and manual resends. */
  copy: number;
  attempt: number;
  /** Receiver's HTTP status, when it answered. */
  status?: number;
  error?: string;
  at: string;
}

interface Hook {
  config: Required<Omit<SimWebhookConfig, 'token'>> & { token?: string };
  chain: Promise<void>;
}

interface SentEvent {
  uuid: string;
  jobId: number;
  buildStatus: string;
  body: string;
  hook: Hook;
  copies: number;
}

export class WebhookSender {
  private hooks: Hook[] = [];
  private readonly sent = new Map<string, SentEvent>();
  readonly deliveries: WebhookDeliveryRecord[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();

  addHook(config: SimWebhookConfig): void {
    this.hooks.push({ config: normalizeConfig(config), chain: Promise.resolve() });
  }

  /** Changes delivery options of hooks (all, or the one with this url) for deliveries not yet started. */
  updateHooks(options: Omit<SimWebhookConfig, 'url'>, url?: string): number {
    const target = url === undefined ? undefined : new URL(url).toString();
    let n = 0;
    for (const hook of this.hooks) {
      if (target !== undefined && hook.config.url !== target) continue;
      hook.config = normalizeConfig({ ...hook.config, ...definedOnly(options) });
      n++;
    }
    return n;
  }

  removeHooks(): void {
    this.hooks = [];
  }

  listHooks(): Array<Omit<SimWebhookConfig, 'token'> & { hasToken: boolean }> {
    return this.hooks.map(({ config: { token, ...rest } }) => ({ ...rest, hasToken: token !== undefined }));
  }

  /** Queues one event (a new UUID) to every hook. */
  send(jobId: number, buildStatus: string, payload: unknown): void {
    const body = JSON.stringify(payload);
    for (const hook of this.hooks) {
      const event: SentEvent = { uuid: randomUUID(), jobId, buildStatus, body, hook, copies: 0 };
      this.sent.set(event.uuid, event);
      this.enqueue(hook, async () => {
        await this.deliver(event, 0);
        for (let copy = 1; copy <= hook.config.duplicates; copy++) await this.deliver(event, copy);
        event.copies = hook.config.duplicates;
      });
    }
  }

  /** GitLab's manual "Resend request": the same body and the same UUID again. */
  resend(uuid: string): boolean {
    const event = this.sent.get(uuid);
    if (!event) return false;
    this.enqueue(event.hook, async () => {
      event.copies += 1;
      await this.deliver(event, event.copies);
    });
    return true;
  }

  /** Resolves when every queued delivery (with its retries) has finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  stop(): void {
    this.abort.abort();
  }

  private enqueue(hook: Hook, work: () => Promise<void>): void {
    const next = hook.chain.then(work, work);
    hook.chain = next;
    const tracked = next.catch(() => undefined).finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private async deliver(event: SentEvent, copy: number): Promise<void> {
    const { config } = event.hook;
    if (config.delayMs > 0) await sleepUnlessAborted(config.delayMs, this.abort.signal);
    for (let attempt = 1; attempt <= config.maxAttempts; attempt++) {
      if (this.abort.signal.aborted) return;
      const record: WebhookDeliveryRecord = {
        hookUrl: config.url,
        uuid: event.uuid,
        jobId: event.jobId,
        buildStatus: event.buildStatus,
        copy,
        attempt,
        at: new Date().toISOString(),
      };
      this.deliveries.push(record);
      try {
        const res = await fetch(config.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'GitLab/17.0.0',
            'x-gitlab-event': 'Job Hook',
            'x-gitlab-event-uuid': event.uuid,
            'x-gitlab-instance': 'http://127.0.0.1',
            ...(config.token !== undefined ? { 'x-gitlab-token': config.token } : {}),
          },
          body: event.body,
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(config.timeoutMs)]),
        });
        record.status = res.status;
        await res.arrayBuffer().catch(() => undefined);
        // GitLab retries server errors; a 4xx is the receiver's final word.
        if (res.status < 500) return;
      } catch (err) {
        record.error = err instanceof Error ? err.name === 'TimeoutError' ? `timeout after ${config.timeoutMs} ms` : err.message : String(err);
      }
      if (attempt < config.maxAttempts) await sleepUnlessAborted(config.retryDelayMs * 2 ** (attempt - 1), this.abort.signal);
    }
  }
}

function normalizeConfig(config: SimWebhookConfig): Hook['config'] {
  const url = new URL(config.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('webhook url must be http or https');
  const count = (v: number | undefined, def: number, min: number, what: string) => {
    const n = v ?? def;
    if (!Number.isInteger(n) || n < min) throw new Error(`${what} must be an integer >= ${min}`);
    return n;
  };
  return {
    url: url.toString(),
    token: config.token,
    duplicates: count(config.duplicates, 0, 0, 'duplicates'),
    delayMs: count(config.delayMs, 0, 0, 'delayMs'),
    maxAttempts: count(config.maxAttempts, 4, 1, 'maxAttempts'),
    retryDelayMs: count(config.retryDelayMs, 50, 0, 'retryDelayMs'),
    timeoutMs: count(config.timeoutMs, 10_000, 1, 'timeoutMs'),
  };
}


function definedOnly<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}
