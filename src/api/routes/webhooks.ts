// CI job webhooks (GitLab "Job Hook", GitHub "workflow_job"): authenticate, parse, and store a
// finalize intent in the inbox, then answer at once. The dispatcher (src/webhooks/dispatcher.ts)
// signals the workflow later, so an answer never waits for Temporal and stays well inside GitLab's
// 10 s limit.
//
// Answer codes and why (GitLab auto-disables a hook after 4 consecutive failures: a 4xx until
// someone re-enables it, a 5xx temporarily with backoff and redelivery):
// - 403 only when authentication fails or no secret is configured (fail closed on purpose).
// - 200 {"ok":true} for anything authenticated that we do not act on, malformed JSON included:
//   a 400 would count towards disabling the hook over one odd delivery, and GitLab would not
//   resend it anyway. It is logged at warn, as it means the sender is broken.
// - 413 for a body over the limit (no real Job Hook comes near it).
// - 503 when the event could not be stored: GitLab redelivers 5xx with the same UUID.
//
// The router reads the raw body itself (GitHub's HMAC is over the exact bytes), so it must be
// mounted before any application-wide body parser.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { STRICT_ROUTING } from '../strict-routing.js';
import {
  parseGithubWorkflowJobEvent,
  parseGitlabJobEvent,
  verifyGithubSignature,
  verifyGitlabToken,
  type WebhookEvent,
  type WebhookFinalize,
} from '../../integrations/gitlab/webhooks.js';
import type { Db } from '../../store/database.js';
import { insertInboxEvent } from '../../store/webhook-inbox.js';
import type { Logger } from '../../logger.js';

export type WebhookProvider = 'gitlab' | 'github';

export interface WebhooksRouterOptions {
  db: Db;
  config: {
    /** E2EPOOL_GITLAB_WEBHOOK_SECRET; unset answers 403. */
    gitlabSecret?: string;
    /** E2EPOOL_GITHUB_WEBHOOK_SECRET; unset answers 403. */
    githubSecret?: string;
  };
  logger: Logger;
  /** Called after a new event was stored (not for duplicates): wakes the dispatcher. */
  onStored?: () => void;
  /** Largest body accepted, in bytes. Default 1 MiB. */
  bodyLimitBytes?: number;
  /** Give up storing after this long and answer 503 so the sender retries. Default 8000 ms. */
  storeTimeoutMs?: number;
}

/** What the inbox keeps of an event: the intent only, no user data from the payload. */
export interface InboxPayload {
  jobId: string;
  projectId?: string;
  status: WebhookFinalize['status'];
  runnerId?: number;
  providerStatus: string;
}

const OK = { ok: true } as const;
const DEFAULT_BODY_LIMIT = 1024 * 1024;
const DEFAULT_STORE_TIMEOUT_MS = 8000;

export function createWebhooksRouter(opts: WebhooksRouterOptions): Router {
  const { db, logger } = opts;
  const storeTimeoutMs = opts.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  const router = express.Router(STRICT_ROUTING);
  const rawBody = express.raw({ type: () => true, limit: opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT });

  // GitLab sends the secret as a header: reject before reading the body.
  const gitlabAuth = (req: Request, res: Response, next: NextFunction) => {
    const verdict = verifyGitlabToken(opts.config.gitlabSecret, req.get('x-gitlab-token'));
    if (verdict.ok) return next();
    if (verdict.reason === 'not_configured') {
      logger.warn({ provider: 'gitlab', remote: req.ip }, 'GitLab webhook rejected: E2EPOOL_GITLAB_WEBHOOK_SECRET is not set');
      res.status(403).json({ detail: 'GitLab webhook secret not configured' });
      return;
    }
    logger.warn({ provider: 'gitlab', remote: req.ip, reason: verdict.reason }, 'GitLab webhook rejected: X-Gitlab-Token is missing or wrong');
    res.status(403).json({ detail: 'Invalid webhook token' });
  };

  // GitHub's configuration check comes first (as e2epool), the signature needs the body.
  const githubConfigured = (_req: Request, res: Response, next: NextFunction) => {
    if (opts.config.githubSecret) return next();
    logger.warn({ provider: 'github' }, 'GitHub webhook rejected: E2EPOOL_GITHUB_WEBHOOK_SECRET is not set');
    res.status(403).json({ detail: 'GitHub webhook secret not configured' });
  };

  router.post('/webhooks/gitlab', gitlabAuth, rawBody, async (req: Request, res: Response) => {
    const body = bodyBytes(req, res, logger);
    if (!body) return;
    await accept('gitlab', parseGitlabJobEvent(req.headers, body), res);
  });

  router.post('/webhooks/github', githubConfigured, rawBody, async (req: Request, res: Response) => {
    const body = bodyBytes(req, res, logger);
    if (!body) return;
    const verdict = verifyGithubSignature(opts.config.githubSecret, body, req.get('x-hub-signature-256'));
    if (!verdict.ok) {
      logger.warn({ provider: 'github', remote: req.ip, reason: verdict.reason }, 'GitHub webhook rejected: X-Hub-Signature-256 is missing or wrong');
      res.status(403).json({ detail: 'Invalid webhook signature' });
      return;
    }
    await accept('github', parseGithubWorkflowJobEvent(req.headers, body), res);
  });

  // Body reading errors (too large, aborted, bad encoding) answer JSON like the rest of the API.
  router.use('/webhooks', (err: any, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 600 ? err.status : 500;
    const detail = err?.type === 'entity.too.large' ? 'Request body too large' : status < 500 ? 'Request body could not be read' : 'Internal error';
    logger.warn({ status, type: err?.type }, `webhook body rejected: ${detail}`);
    res.status(status).json({ detail });
  });

  async function accept(provider: WebhookProvider, event: WebhookEvent, res: Response): Promise<void> {
    if (event.kind === 'ignore') {
      const malformed = event.reason.startsWith('body is not');
      logger[malformed ? 'warn' : 'debug']({ provider, reason: event.reason }, `${provider} webhook ignored: ${event.reason}`);
      res.status(200).json(OK);
      return;
    }
    const started = Date.now();
    try {
      const stored = await withTimeout(storeInboxEvent(db, provider, event), storeTimeoutMs);
      logger.debug({ provider, eventId: event.eventId, jobId: event.jobId, status: event.status, duplicate: !stored, ms: Date.now() - started },
        stored ? `${provider} webhook stored for job ${event.jobId} (${event.providerStatus})` : `${provider} webhook already stored (duplicate delivery)`);
      res.status(200).json(OK);
      if (stored) opts.onStored?.();
    } catch (err) {
      logger.error({ provider, eventId: event.eventId, jobId: event.jobId, err: describeError(err) }, `${provider} webhook could not be stored; the sender will retry`);
      res.status(503).json({ detail: 'Webhook could not be stored, retry later' });
    }
  }

  return router;
}

/**
 * Inserts the event unless its id is already there; true when it is new. A redelivery with the same
 * id is a no-op whatever state the first copy is in.
 */
export async function storeInboxEvent(db: Db, provider: WebhookProvider, event: WebhookFinalize): Promise<boolean> {
  const payload: InboxPayload = { jobId: event.jobId, status: event.status, providerStatus: event.providerStatus };
  if (event.projectId !== undefined) payload.projectId = event.projectId;
  if (event.runnerId !== undefined) payload.runnerId = event.runnerId;
  return insertInboxEvent(db, { eventId: event.eventId, provider, jobId: event.jobId, status: event.status, payload });
}

/** The raw body as bytes; answers 500 when a body parser mounted earlier already consumed it. */
function bodyBytes(req: Request, res: Response, logger: Logger): Buffer | null {
  if (Buffer.isBuffer(req.body)) return req.body;
  if (req.body === undefined) return Buffer.alloc(0);
  logger.error('webhook route mounted after a body parser: the raw body is gone; mount createWebhooksRouter first');
  res.status(500).json({ detail: 'Internal error' });
  return null;
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`database did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
