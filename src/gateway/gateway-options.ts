// What the agent gateway is built from and what it promises its callers: the endpoint path, the
// close codes, its dependencies and tuning, and the session events it emits.
import type { Logger } from '../logger.js';
import type { Db } from '../store/database.js';
import type { AuthFailureLimiter } from '../util/auth-failures.js';
import type { RateLimitSettings } from './rate-limit.js';
import type { AgentRequestHandler } from './request-dispatch.js';
import type { SessionEndReason } from './session.js';

export const AGENT_WS_PATH = '/ws/agent';

/** Close codes the gateway uses. */
export const CLOSE_CODES = {
  /** A newer session of the same runner took over. */
  replaced: 4000,
  /** The runner was deactivated or its token changed. */
  revoked: 4401,
  /** This controller instance is stopping; reconnect at once. */
  goingAway: 1001,
  /** Sustained flood. */
  policy: 1008,
} as const;

export interface GatewayTuning {
  rateLimit?: Partial<RateLimitSettings>;
  /** Concurrent requests one session may have in flight (default 32); more get 429. */
  maxInFlightPerSession?: number;
  /** Minimum seconds between presence `last_seen` writes per session (default 5). */
  presenceTouchSeconds?: number;
  /** Seconds between re-checks of a session's credentials (default 60; 0 disables). */
  reauthSeconds?: number;
  /** Extra seconds to wait for a command's reply after its own timeout (default 30). */
  commandReplyGraceSeconds?: number;
  /** How long a close handshake may take before the socket is cut (default 2000 ms). */
  closeTimeoutMs?: number;
  /** Seconds between `controller_instances` heartbeats (default 10). */
  instanceHeartbeatSeconds?: number;
}

export interface GatewayDeps {
  db: Db;
  instanceId: string;
  logger: Logger;
  heartbeatIntervalSeconds: number;
  heartbeatTimeoutSeconds: number;
  /** Registry lookup: the runner a token belongs to (runner id given by e2epool agents), or null. */
  authenticate(runnerId: string | undefined, token: string): Promise<{ runnerId: string } | null>;
  requests: AgentRequestHandler;
  tuning?: GatewayTuning;
  /** Shared with the HTTP API: failed handshakes count against the address too. */
  authFailures?: AuthFailureLimiter;
  /** Accept `?token=` (e2epool agents send nothing else); default true. */
  allowQueryTokens?: boolean;
  /** A new session took over from one that was still open (same runner): someone else may hold its credential. */
  onSessionReplaced?: (info: { runnerId: string; previousEpoch: number; newEpoch: number; previousRemote?: string | undefined; remote?: string | undefined }) => void;
}

export type SessionEvent =
  | { type: 'connected'; runnerId: string; sessionEpoch: number }
  | { type: 'hello'; runnerId: string; sessionEpoch: number; agentVersion: string | null; bootId: string | null; commands: string[] }
  | { type: 'disconnected'; runnerId: string; sessionEpoch: number; reason: SessionEndReason; code: number };

/** Close reasons are limited to 123 bytes by the protocol. */
export function closeMessage(text: string): string {
  let out = text;
  while (Buffer.byteLength(out) > 120) out = out.slice(0, -1);
  return out;
}
