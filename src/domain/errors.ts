// Stable error codes. One table maps each code to its HTTP status, the WebSocket error code, and
// whether an activity failing with it should be retried by Temporal.

export const errorCodes = {
  // Request and auth
  validation: { http: 422, ws: 400, retryable: false },
  bad_request: { http: 400, ws: 400, retryable: false },
  unauthenticated: { http: 401, ws: 401, retryable: false },
  forbidden: { http: 403, ws: 403, retryable: false },
  not_found: { http: 404, ws: 404, retryable: false },
  runner_not_found: { http: 404, ws: 404, retryable: false },
  checkpoint_not_found: { http: 404, ws: 404, retryable: false },
  not_configured: { http: 503, ws: 503, retryable: false },
  rate_limited: { http: 429, ws: 429, retryable: false },
  // Create outcomes (update failures of the checkpoint workflow)
  conflict: { http: 409, ws: 409, retryable: false },
  cooldown: { http: 429, ws: 429, retryable: false },
  maintenance: { http: 503, ws: 503, retryable: false },
  draining: { http: 409, ws: 409, retryable: false },
  backend: { http: 502, ws: 502, retryable: true },
  create_timeout: { http: 504, ws: 504, retryable: false },
  controller_timeout: { http: 503, ws: 503, retryable: false },
  invalid_state: { http: 409, ws: 409, retryable: false },
  // Integrations
  proxmox_auth: { http: 502, ws: 502, retryable: false },
  proxmox_locked: { http: 502, ws: 502, retryable: true },
  proxmox_task_failed: { http: 502, ws: 502, retryable: false },
  proxmox_unavailable: { http: 502, ws: 502, retryable: true },
  proxmox_not_most_recent: { http: 502, ws: 502, retryable: false },
  proxmox_snapshot_missing: { http: 502, ws: 502, retryable: false },
  proxmox_bad_request: { http: 502, ws: 502, retryable: false },
  config_changed: { http: 409, ws: 409, retryable: false },
  gitlab_auth: { http: 502, ws: 502, retryable: false },
  gitlab_not_found: { http: 502, ws: 502, retryable: false },
  gitlab_unavailable: { http: 502, ws: 502, retryable: true },
  gitlab_bad_request: { http: 502, ws: 502, retryable: false },
  // Agent RPC
  /** The command was sent and the session was lost before its answer: it may have run. */
  agent_not_connected: { http: 503, ws: 503, retryable: true },
  /** The command never left this instance (no session, draining, send failed): it did not run. */
  agent_not_delivered: { http: 503, ws: 503, retryable: true },
  agent_stale_route: { http: 503, ws: 503, retryable: true },
  agent_command_failed: { http: 502, ws: 502, retryable: false },
  agent_command_timeout: { http: 504, ws: 504, retryable: false },
  command_not_declared: { http: 502, ws: 502, retryable: false },
  // Infrastructure
  database_unavailable: { http: 503, ws: 503, retryable: true },
  temporal_unavailable: { http: 503, ws: 503, retryable: true },
  internal: { http: 500, ws: 500, retryable: true },
} as const satisfies Record<string, { http: number; ws: number; retryable: boolean }>;

export type ErrorCode = keyof typeof errorCodes;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(errorCodes, value);
}

/** An error with a stable code; `detail` is safe to show to callers (no secrets). */
export class E2epoolError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'E2epoolError';
  }
}

export function httpStatusOf(code: ErrorCode): number {
  return errorCodes[code].http;
}

export function wsCodeOf(code: ErrorCode): number {
  return errorCodes[code].ws;
}

export function isRetryable(code: ErrorCode): boolean {
  return errorCodes[code].retryable;
}
