// Verification and parsing of CI webhooks (GitLab "Job Hook", GitHub "workflow_job"). Pure
// functions: the HTTP route stores the result in the inbox and answers 200; nothing here throws on
// input from outside.
import { createHash, createHmac } from 'node:crypto';
import { constantTimeEqual } from './constant-time.js';
import { mapGitlabJobStatus, type JobOutcome } from './job-status.js';

export type IncomingHeaders = Record<string, string | string[] | undefined>;

export type WebhookVerification = { ok: true } | { ok: false; reason: 'not_configured' | 'missing' | 'mismatch' };

export interface WebhookFinalize {
  kind: 'finalize';
  /** Delivery id used to de-duplicate: the provider's delivery header, else sha256 of the body. */
  eventId: string;
  jobId: string;
  projectId?: string;
  status: JobOutcome;
  runnerId?: number;
  /** The provider's own status/conclusion value, for logs. */
  providerStatus: string;
}

export interface WebhookIgnore {
  kind: 'ignore';
  reason: string;
}

export type WebhookEvent = WebhookFinalize | WebhookIgnore;

/**
 * Checks `X-Gitlab-Token` against the configured secret. Fails closed: with no secret configured
 * every request is rejected (the old controller accepted anything then).
 */
export function verifyGitlabToken(configuredSecret: string | undefined, headerValue: string | undefined): WebhookVerification {
  if (!configuredSecret) return { ok: false, reason: 'not_configured' };
  if (headerValue === undefined || headerValue === '') return { ok: false, reason: 'missing' };
  return constantTimeEqual(configuredSecret, headerValue) ? { ok: true } : { ok: false, reason: 'mismatch' };
}

/** Turns a GitLab webhook into a finalize intent for a terminal job status, or says why not. */
export function parseGitlabJobEvent(headers: IncomingHeaders, body: unknown): WebhookEvent {
  const decoded = decodeBody(body);
  if (!decoded.ok) return ignore(decoded.reason);
  const payload = decoded.value;
  if (payload.object_kind !== 'build') return ignore(`not a job event (object_kind ${describe(payload.object_kind)})`);

  const jobId = positiveIntString(payload.build_id);
  if (!jobId) return ignore('build_id is missing or not a positive integer');
  const buildStatus = payload.build_status;
  if (typeof buildStatus !== 'string' || buildStatus === '') return ignore('build_status is missing');
  const meaning = mapGitlabJobStatus(buildStatus);
  if (!meaning.terminal) return ignore(`job status ${buildStatus} is not terminal`);

  const event: WebhookFinalize = {
    kind: 'finalize',
    eventId: headerValue(headers, 'x-gitlab-event-uuid') ?? bodyDigest(decoded.raw),
    jobId,
    status: meaning.outcome,
    providerStatus: buildStatus,
  };
  const projectId = positiveIntString(payload.project_id) ?? positiveIntString(asRecord(payload.project)?.id);
  if (projectId) event.projectId = projectId;
  const runnerId = Number(positiveIntString(asRecord(payload.runner)?.id));
  if (runnerId > 0) event.runnerId = runnerId;
  return event;
}

/**
 * Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>` in constant time. The
 * raw bytes must be the ones received: a re-serialised JSON body would not match.
 */
export function verifyGithubSignature(secret: string | undefined, rawBody: Buffer, header: string | undefined): WebhookVerification {
  if (!secret) return { ok: false, reason: 'not_configured' };
  if (header === undefined || header === '') return { ok: false, reason: 'missing' };
  const expected = `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
  return constantTimeEqual(expected, header.trim().toLowerCase()) ? { ok: true } : { ok: false, reason: 'mismatch' };
}

const githubConclusions: Record<string, JobOutcome> = {
  success: 'success',
  failure: 'failure',
  cancelled: 'canceled',
  timed_out: 'failure',
};

/** Turns a GitHub `workflow_job` `completed` event into a finalize intent, or says why not. */
export function parseGithubWorkflowJobEvent(headers: IncomingHeaders, body: unknown): WebhookEvent {
  const event = headerValue(headers, 'x-github-event');
  if (event !== 'workflow_job') return ignore(`not a workflow_job event (X-GitHub-Event ${describe(event)})`);
  const decoded = decodeBody(body);
  if (!decoded.ok) return ignore(decoded.reason);
  const payload = decoded.value;
  if (payload.action !== 'completed') return ignore(`workflow_job action ${describe(payload.action)} is not completed`);
  const job = asRecord(payload.workflow_job);
  if (!job) return ignore('workflow_job is missing');
  const jobId = positiveIntString(job.id);
  if (!jobId) return ignore('workflow_job.id is missing or not a positive integer');
  const conclusion = job.conclusion;
  if (typeof conclusion !== 'string' || conclusion === '') return ignore('workflow_job.conclusion is missing');
  const status = Object.prototype.hasOwnProperty.call(githubConclusions, conclusion) ? githubConclusions[conclusion] : undefined;
  if (!status) return ignore(`conclusion ${conclusion} does not finalize a checkpoint`);

  const result: WebhookFinalize = {
    kind: 'finalize',
    eventId: headerValue(headers, 'x-github-delivery') ?? bodyDigest(decoded.raw),
    jobId,
    status,
    providerStatus: conclusion,
  };
  const repository = asRecord(payload.repository);
  if (typeof repository?.full_name === 'string' && repository.full_name !== '') result.projectId = repository.full_name;
  const runnerId = Number(positiveIntString(job.runner_id));
  if (runnerId > 0) result.runnerId = runnerId;
  return result;
}

type Decoded = { ok: true; value: Record<string, unknown>; raw: Buffer } | { ok: false; reason: string };

/** Accepts the raw body (Buffer or string) or an already parsed JSON value. */
function decodeBody(body: unknown): Decoded {
  let value: unknown;
  let raw: Buffer;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    raw = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    try {
      value = JSON.parse(raw.toString('utf8'));
    } catch {
      return { ok: false, reason: 'body is not valid JSON' };
    }
  } else {
    value = body;
    raw = Buffer.from(JSON.stringify(body) ?? '', 'utf8');
  }
  const record = asRecord(value);
  if (!record) return { ok: false, reason: 'body is not a JSON object' };
  return { ok: true, value: record, raw };
}

function bodyDigest(raw: Buffer): string {
  return `sha256:${createHash('sha256').update(raw).digest('hex')}`;
}

function headerValue(headers: IncomingHeaders, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (key.toLowerCase() !== name) continue;
    const first = Array.isArray(value) ? value[0] : value;
    const trimmed = first?.trim();
    return trimmed ? trimmed : undefined;
  }
  return undefined;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** Job, project and runner ids arrive as JSON numbers (sometimes strings); returns the canonical string. */
function positiveIntString(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return String(value);
  if (typeof value === 'string' && /^[1-9]\d{0,17}$/.test(value)) return value;
  return undefined;
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function ignore(reason: string): WebhookIgnore {
  return { kind: 'ignore', reason };
}
