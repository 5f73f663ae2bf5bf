// Parsing and validation of the agent WebSocket envelopes (protocol spec §5.2, §5.3), plus the
// additive `hello`. Every function here is total: any input gives a value, never an exception.
import { z } from 'zod';

/** Frames larger than this get a 400 reply; the connection stays up. */
export const MAX_FRAME_BYTES = 1024 * 1024;
const MAX_ID_LENGTH = 256;

export const REQUEST_TYPES = ['create', 'finalize', 'status', 'ping', 'hello'] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

export type InboundFrame =
  | { kind: 'request'; id: string; type: RequestType; payload: Record<string, unknown> }
  /** An object with a `status` key: the agent's answer to one of our commands. */
  | { kind: 'reply'; id: string; status: unknown; data: unknown; error: unknown }
  /** A reply we cannot route (no usable id): dropped without answering, as e2epool did. */
  | { kind: 'stray-reply'; reason: string }
  | { kind: 'invalid'; id: string; detail: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function quoted(value: string, max = 64): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}

/** Decodes and classifies one inbound frame (text or binary, UTF-8 JSON). */
export function parseFrame(data: Buffer | string): InboundFrame {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (size > MAX_FRAME_BYTES) return { kind: 'invalid', id: '', detail: `Frame exceeds the maximum size of ${MAX_FRAME_BYTES} bytes` };
  let text: string;
  if (typeof data === 'string') text = data;
  else {
    try {
      text = utf8.decode(data);
    } catch {
      return { kind: 'invalid', id: '', detail: 'Frame is not valid UTF-8' };
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', id: '', detail: 'Frame is not valid JSON' };
  }
  if (!isPlainObject(value)) return { kind: 'invalid', id: '', detail: 'Frame must be a JSON object' };

  const rawId = value.id;
  const idOk = typeof rawId === 'string' && rawId.length > 0 && rawId.length <= MAX_ID_LENGTH;

  if (Object.prototype.hasOwnProperty.call(value, 'status')) {
    if (!idOk) return { kind: 'stray-reply', reason: 'reply without a usable id' };
    return { kind: 'reply', id: rawId, status: value.status, data: value.data, error: value.error };
  }

  if (rawId === undefined) return { kind: 'invalid', id: '', detail: 'id is required' };
  if (!idOk) return { kind: 'invalid', id: '', detail: `id must be a string of 1-${MAX_ID_LENGTH} characters` };
  const type = value.type;
  if (type === undefined) return { kind: 'invalid', id: rawId, detail: 'type is required' };
  if (typeof type !== 'string') return { kind: 'invalid', id: rawId, detail: 'type must be a string' };
  if (!(REQUEST_TYPES as readonly string[]).includes(type)) {
    return { kind: 'invalid', id: rawId, detail: `Unknown request type ${quoted(type)}; expected one of ${REQUEST_TYPES.join(', ')}` };
  }
  const payload = value.payload ?? {};
  if (!isPlainObject(payload)) return { kind: 'invalid', id: rawId, detail: 'payload must be an object' };
  return { kind: 'request', id: rawId, type: type as RequestType, payload };
}

// ---- Outbound envelopes -------------------------------------------------------------------------

export function okEnvelope(id: string, data: unknown): string {
  return JSON.stringify({ id, status: 'ok', data: data ?? null, error: null });
}

export function errorEnvelope(id: string, code: number, detail: string): string {
  return JSON.stringify({ id, status: 'error', data: null, error: { code, detail } });
}

// ---- Request payloads ---------------------------------------------------------------------------

const SOURCE_PATTERN = /^[\w.-]+$/;
const COMMAND_NAME_PATTERN = /^[A-Za-z][\w.-]{0,63}$/;

/** A required identifier: a non-empty string, or an integer (e2epool agents may send numbers). */
const requiredId = (field: string, missing: string) =>
  z
    .union([z.string({ error: missing }), z.number({ error: missing }).int({ error: missing }).nonnegative({ error: missing })], { error: missing })
    .transform(String)
    .pipe(z.string().min(1, { error: missing }).max(255, { error: `${field} must be at most 255 characters` }));

const optionalText = (field: string, max: number) =>
  z
    .string({ error: `${field} must be a string` })
    .max(max, { error: `${field} must be at most ${max} characters` })
    .nullish()
    .transform((v) => v ?? undefined);

const PROJECT_ID_INVALID = 'project_id must be a string of at most 255 characters or a non-negative integer';

export const createPayloadSchema = z.object({
  job_id: requiredId('job_id', 'job_id is required'),
  caller: optionalText('caller', 255),
  project_id: z
    .union([z.string().max(255), z.number().int().nonnegative()], { error: PROJECT_ID_INVALID })
    .nullish()
    .transform((v) => (v === null || v === undefined || v === '' ? undefined : String(v))),
});

const FINALIZE_REQUIRED = 'checkpoint_name and status are required';
/** GitLab's `failed` (what $CI_JOB_STATUS holds) is accepted and means `failure`. */
const FINALIZE_STATUSES = ['success', 'failure', 'canceled', 'failed'] as const;

export const finalizePayloadSchema = z.object({
  checkpoint_name: z.string({ error: FINALIZE_REQUIRED }).min(1, { error: FINALIZE_REQUIRED }).max(255, { error: 'checkpoint_name must be at most 255 characters' }),
  status: z
    .string({ error: FINALIZE_REQUIRED })
    .min(1, { error: FINALIZE_REQUIRED })
    .refine((s) => (FINALIZE_STATUSES as readonly string[]).includes(s), { error: 'status must be one of success, failure, canceled' })
    .transform((s) => (s === 'failed' ? 'failure' : s)),
  source: z
    .string({ error: 'source must be a string' })
    .regex(SOURCE_PATTERN, { error: 'source must contain only letters, digits, _ . -' })
    .max(50, { error: 'source must be at most 50 characters' })
    .nullish()
    .transform((v) => v ?? 'agent'),
});

export const statusPayloadSchema = z.object({
  checkpoint_name: z
    .string({ error: 'checkpoint_name is required' })
    .min(1, { error: 'checkpoint_name is required' })
    .max(255, { error: 'checkpoint_name must be at most 255 characters' }),
});

export const helloPayloadSchema = z.object({
  protocol: z.number({ error: 'protocol must be an integer >= 2' }).int({ error: 'protocol must be an integer >= 2' }).min(2, { error: 'protocol must be an integer >= 2' }),
  agent_version: optionalText('agent_version', 100),
  boot_id: optionalText('boot_id', 100),
  commands: z
    .array(z.string().regex(COMMAND_NAME_PATTERN), { error: 'commands must be a list of command names (letters, digits, _ . -, at most 64 characters)' })
    .max(64, { error: 'commands may list at most 64 names' })
    .optional()
    .transform((names) => [...new Set(names ?? [])]),
});

export type HelloPayload = z.output<typeof helloPayloadSchema>;

/** Validates a payload; on failure gives the first issue's message as a caller-facing detail. */
export function validatePayload<S extends z.ZodType>(
  schema: S,
  payload: Record<string, unknown>,
): { ok: true; value: z.output<S> } | { ok: false; detail: string } {
  const result = schema.safeParse(payload);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, detail: result.error.issues[0]?.message ?? 'Invalid payload' };
}

// ---- Command replies ----------------------------------------------------------------------------

export interface CommandReply {
  ok: boolean;
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The agent's own error (`run` replies), e.g. `{code: 404, detail: 'command_not_declared'}`. */
  agentError: { code: number | null; detail: string } | null;
}

/**
 * Reads the agent's reply to `exec`/`run`: `{"status","data":{"exit_code","stdout","stderr"}}`.
 * Success only when status is `ok` and the exit code is 0. A reply without usable data (e.g. an
 * agent-side error envelope) is a failure with exit code -1 and the agent's detail as stderr.
 */
export function parseCommandReply(reply: { status: unknown; data: unknown; error: unknown }): CommandReply {
  const agentError = isPlainObject(reply.error)
    ? {
        code: typeof reply.error.code === 'number' ? reply.error.code : null,
        detail: typeof reply.error.detail === 'string' ? reply.error.detail.slice(0, 1000) : 'error',
      }
    : null;
  const data = isPlainObject(reply.data) ? reply.data : undefined;
  const exit = data?.exit_code;
  if (data && typeof exit === 'number' && Number.isInteger(exit)) {
    const stdout = typeof data.stdout === 'string' ? data.stdout : '';
    const stderr = typeof data.stderr === 'string' ? data.stderr : '';
    return { ok: reply.status === 'ok' && exit === 0 && !agentError, exitCode: exit, stdout, stderr, agentError };
  }
  return { ok: false, exitCode: -1, stdout: '', stderr: agentError?.detail ?? 'Agent sent a reply without an exit code', agentError };
}
