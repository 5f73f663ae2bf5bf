// Agent requests (create, finalize, status, ping, hello) → the same services the HTTP API uses.
// Payloads are validated here; business rules stay in the services.
import { zoneTimestamps } from '../util/zoned-times.js';
import { E2epoolError, isErrorCode, wsCodeOf } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import { redactSecrets } from '../redaction.js';
import {
  createPayloadSchema,
  errorEnvelope,
  finalizePayloadSchema,
  helloPayloadSchema,
  okEnvelope,
  statusPayloadSchema,
  validatePayload,
  type HelloPayload,
  type RequestType,
} from './envelope.js';

export interface AgentRequestHandler {
  create(runnerId: string, payload: { job_id: string; caller?: string; project_id?: string }, opts?: { legacySession?: boolean }): Promise<unknown>;
  finalize(runnerId: string, payload: { checkpoint_name: string; status: string; source?: string }): Promise<unknown>;
  status(runnerId: string, payload: { checkpoint_name: string }): Promise<unknown>;
}

export interface DispatchContext {
  runnerId: string;
  sessionEpoch: number;
  /** The session never said hello (a Python e2epool agent). */
  legacySession?: boolean;
  requests: AgentRequestHandler;
  hello(payload: HelloPayload): Promise<unknown>;
}

function payloadOf<T>(result: { ok: true; value: T } | { ok: false; detail: string }): T {
  if (!result.ok) throw new E2epoolError('bad_request', result.detail);
  return result.value;
}

async function dispatch(ctx: DispatchContext, type: RequestType, payload: Record<string, unknown>): Promise<unknown> {
  switch (type) {
    case 'ping':
      return { pong: true };
    case 'hello':
      return ctx.hello(payloadOf(validatePayload(helloPayloadSchema, payload)));
    case 'create':
      return zoneTimestamps(await ctx.requests.create(ctx.runnerId, payloadOf(validatePayload(createPayloadSchema, payload)), { legacySession: ctx.legacySession === true }));
    case 'finalize':
      return ctx.requests.finalize(ctx.runnerId, payloadOf(validatePayload(finalizePayloadSchema, payload)));
    case 'status':
      // The same zoned timestamps as the HTTP answer of the same checkpoint.
      return zoneTimestamps(await ctx.requests.status(ctx.runnerId, payloadOf(validatePayload(statusPayloadSchema, payload))));
  }
}

/** An error with a stable code, also when it crossed a module boundary (duck-typed). */
function codedError(err: unknown): { code: number; detail: string } | null {
  if (err instanceof E2epoolError) return { code: wsCodeOf(err.code), detail: err.detail };
  const e = err as { code?: unknown; detail?: unknown } | null;
  if (e && isErrorCode(e.code) && typeof e.detail === 'string') return { code: wsCodeOf(e.code), detail: e.detail };
  return null;
}

/** Error text for the log, with anything token-like masked (messages may quote connection strings). */
function describeError(err: unknown): { name: string; message: string; stack?: string } {
  if (err instanceof Error) return { name: err.name, message: redactSecrets(err.message), stack: err.stack ? redactSecrets(err.stack) : undefined };
  return { name: typeof err, message: redactSecrets(String(err)) };
}

/** Handles one request and returns the reply envelope; never throws. */
export async function handleAgentRequest(
  ctx: DispatchContext,
  logger: Logger,
  request: { id: string; type: RequestType; payload: Record<string, unknown> },
): Promise<string> {
  try {
    const data = await dispatch(ctx, request.type, request.payload);
    return okEnvelope(request.id, data);
  } catch (err) {
    const coded = codedError(err);
    if (coded) return errorEnvelope(request.id, coded.code, coded.detail);
    logger.error(
      { error: describeError(err), runnerId: ctx.runnerId, sessionEpoch: ctx.sessionEpoch, requestType: request.type },
      'agent request failed unexpectedly',
    );
    return errorEnvelope(request.id, wsCodeOf('internal'), 'Internal server error');
  }
}
