// Delivers alerts to the configured webhooks: Slack-compatible `{"text": ...}` or a generic JSON
// body. Failures are retried with backoff and then logged; nothing is ever thrown to the caller.
// Webhook URLs are credentials (a Slack URL is its own token): logs name the host only, and alert
// text is scrubbed of token-like strings before it leaves.
import got from 'got';
import { redactSecrets } from '../redaction.js';
import { stripSecretsFromUrl, type Logger } from '../logger.js';

export type AlertSeverity = 'info' | 'warning' | 'critical';
export type AlertWebhookFormat = 'slack' | 'generic';

export interface DeliverableAlert {
  key: string;
  severity: AlertSeverity | string;
  message: string;
  runnerId?: string | null;
  checkpointName?: string | null;
}

export interface AlertDeliveryOptions {
  webhookUrls: string[];
  format: AlertWebhookFormat;
  logger: Logger;
  /** The same key (and kind: raised/resolved) is sent at most once per this many seconds. */
  minIntervalSeconds: number;
  /** Attempts per URL (default 3). */
  attempts?: number;
  /** First retry delay; doubles each time (default 1000 ms). */
  backoffMs?: number;
  /** Per request (default 10 000 ms). */
  timeoutMs?: number;
}

export interface AlertDelivery {
  /** Resolves when every URL was tried; never rejects. */
  deliver(alert: DeliverableAlert): Promise<void>;
  /** `alert.message` is the resolve message. Never rejects. */
  deliverResolved(alert: DeliverableAlert): Promise<void>;
}

type Kind = 'raised' | 'resolved';

function clean(text: string): string {
  return stripSecretsFromUrl(redactSecrets(text)).slice(0, 2000);
}

/** The body posted for one alert. Only the fields listed here leave the controller. */
export function alertBody(alert: DeliverableAlert, kind: Kind, format: AlertWebhookFormat, at: Date = new Date()): Record<string, unknown> {
  const message = clean(alert.message);
  if (format === 'slack') {
    const label = kind === 'resolved' ? 'RESOLVED' : String(alert.severity).toUpperCase();
    const where = [alert.runnerId ? `runner ${alert.runnerId}` : null, alert.checkpointName ? `checkpoint ${alert.checkpointName}` : null].filter(Boolean).join(', ');
    return { text: `[e2epool ${label}] ${message}${where ? ` (${where})` : ''} [${alert.key}]` };
  }
  return {
    source: 'e2epool',
    status: kind,
    key: alert.key,
    severity: alert.severity,
    message,
    runnerId: alert.runnerId ?? null,
    checkpointName: alert.checkpointName ?? null,
    at: at.toISOString(),
  };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid-url';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createAlertDelivery(opts: AlertDeliveryOptions): AlertDelivery {
  const attempts = Math.max(1, opts.attempts ?? 3);
  const backoffMs = opts.backoffMs ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const lastSent = new Map<string, number>();
  const { logger } = opts;

  async function post(url: string, body: Record<string, unknown>, key: string): Promise<void> {
    const target = hostOf(url);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let problem: string;
      let retryable = true;
      try {
        const res = await got.post(url, { json: body, timeout: { request: timeoutMs }, retry: { limit: 0 }, throwHttpErrors: false, followRedirect: false });
        if (res.statusCode >= 200 && res.statusCode < 300) {
          logger.info({ alert: key, target, attempt }, 'alert delivered');
          return;
        }
        problem = `HTTP ${res.statusCode}`;
        // A client error other than throttling will not heal by repeating the same body.
        retryable = res.statusCode >= 500 || res.statusCode === 429 || res.statusCode === 408;
      } catch (err) {
        // got's messages can carry the URL; keep only the error code.
        problem = (err as { code?: string }).code ?? (err as Error).name ?? 'request failed';
      }
      if (!retryable || attempt === attempts) {
        logger.error({ alert: key, target, attempts: attempt, problem }, 'alert delivery failed');
        return;
      }
      logger.warn({ alert: key, target, attempt, problem }, 'alert delivery failed, retrying');
      await sleep(backoffMs * 2 ** (attempt - 1));
    }
  }

  async function send(alert: DeliverableAlert, kind: Kind): Promise<void> {
    try {
      if (opts.webhookUrls.length === 0) return;
      const limitKey = `${kind}:${alert.key}`;
      const now = Date.now();
      const previous = lastSent.get(limitKey);
      if (previous !== undefined && now - previous < opts.minIntervalSeconds * 1000) {
        logger.info({ alert: alert.key, kind }, 'alert not sent again: rate limited');
        return;
      }
      lastSent.set(limitKey, now);
      const body = alertBody(alert, kind, opts.format);
      await Promise.all(opts.webhookUrls.map((url) => post(url, body, alert.key)));
    } catch (err) {
      logger.error({ alert: alert.key, err: (err as Error).name }, 'alert delivery failed');
    }
  }

  return {
    deliver: (alert) => send(alert, 'raised'),
    deliverResolved: (alert) => send(alert, 'resolved'),
  };
}
