// Frames read off an agent's socket, in order: the flood guard, then command replies (never
// rate-limited), invalid frames, and requests, which the gateway runs off the socket's read path.
import type { RawData } from 'ws';
import type { Logger } from '../logger.js';
import { errorEnvelope, parseFrame, type RequestType } from './envelope.js';
import { CLOSE_CODES } from './gateway-options.js';
import type { AgentSession } from './session.js';

/** Only this much of a frame is parsed just to echo its id in a 429 reply. */
const MAX_PARSE_WHEN_LIMITED = 64 * 1024;

export interface RequestFrame {
  id: string;
  type: RequestType;
  payload: Record<string, unknown>;
}

export interface FrameIntakeDeps {
  logger: Logger;
  /** Concurrent requests one session may have in flight; more get 429. */
  maxInFlightPerSession: number;
  closeTimeoutMs: number;
  runRequest(session: AgentSession, frame: RequestFrame): void;
}

export function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Handles one frame of a session that is still open, at monotonic time `now`. */
export function takeFrame(session: AgentSession, data: Buffer, now: number, deps: FrameIntakeDeps): void {
  const { logger } = deps;
  const verdict = session.flood.check(now);
  if (verdict === 'close') {
    logger.warn({ runnerId: session.runnerId, sessionEpoch: session.sessionEpoch }, 'agent flooding; closing session');
    session.close(CLOSE_CODES.policy, 'rate_limited', 'rate limit exceeded', deps.closeTimeoutMs);
    return;
  }
  if (verdict === 'reject' && data.length > MAX_PARSE_WHEN_LIMITED) {
    session.send(errorEnvelope('', 429, 'Rate limit exceeded'));
    return;
  }
  const frame = parseFrame(data);
  switch (frame.kind) {
    case 'reply':
      // Command results are never rate-limited: losing one would lose a command's outcome.
      if (!session.deliverReply(frame)) logger.debug({ runnerId: session.runnerId, id: frame.id.slice(0, 64) }, 'reply for an unknown command id dropped');
      return;
    case 'stray-reply':
      logger.debug({ runnerId: session.runnerId, reason: frame.reason }, 'stray reply dropped');
      return;
    case 'invalid':
      session.send(errorEnvelope(frame.id, verdict === 'reject' ? 429 : 400, verdict === 'reject' ? 'Rate limit exceeded' : frame.detail));
      return;
    case 'request':
      if (verdict === 'reject') {
        session.send(errorEnvelope(frame.id, 429, 'Rate limit exceeded'));
        return;
      }
      if (session.inFlightRequests >= deps.maxInFlightPerSession) {
        session.send(errorEnvelope(frame.id, 429, 'Too many requests in flight'));
        return;
      }
      deps.runRequest(session, frame);
  }
}
