// Proxmox failures as E2epoolErrors with stable codes. Proxmox puts its message in the HTTP reason
// phrase (and in the JSON body's `message`), so classification reads the text, then the status.
import { E2epoolError, type ErrorCode } from '../../domain/errors.js';

export interface ProxmoxApiErrorInfo {
  method: string;
  /** API path below /api2/json; never carries credentials. */
  path: string;
  /** HTTP status; undefined when no response arrived (timeout, connection error). */
  status?: number;
  /** HTTP reason phrase, where Proxmox puts its error message. */
  reason?: string;
  /** Body `message`, trailing newline removed. */
  message?: string;
  /** Body `errors`: parameter validation messages by parameter name. */
  errors?: Record<string, string>;
}

export class ProxmoxApiError extends E2epoolError {
  readonly status: number | undefined;
  readonly reason: string | undefined;
  readonly bodyMessage: string | undefined;
  readonly errors: Record<string, string> | undefined;

  constructor(code: ErrorCode, detail: string, info: ProxmoxApiErrorInfo) {
    super(code, detail, { ...info });
    this.name = 'ProxmoxApiError';
    this.status = info.status;
    this.reason = info.reason;
    this.bodyMessage = info.message;
    this.errors = info.errors;
  }

  /** The server's own words: body message, else reason phrase, else the detail. */
  get proxmoxMessage(): string {
    return this.bodyMessage ?? this.reason ?? this.detail;
  }
}

/** A Proxmox task that ended with an exit status other than OK or WARNINGS. */
export class ProxmoxTaskError extends E2epoolError {
  constructor(
    code: ErrorCode,
    readonly upid: string,
    readonly exitstatus: string,
  ) {
    super(code, `Proxmox task ${upid} failed: ${exitstatus}`, { upid, exitstatus });
    this.name = 'ProxmoxTaskError';
  }

  get proxmoxMessage(): string {
    return this.exitstatus;
  }
}

const VM_CONFIG_MISSING = /Configuration file '[^']*' does not exist/i;

/**
 * Maps a Proxmox message to a specific code, or undefined when the text says nothing we know.
 * A missing VM config means the VM was removed or moved to another node: `config_changed`.
 */
export function codeFromProxmoxMessage(text: string): ErrorCode | undefined {
  if (/\bis locked\b/i.test(text)) return 'proxmox_locked';
  if (/is not most recent snapshot/i.test(text)) return 'proxmox_not_most_recent';
  if (VM_CONFIG_MISSING.test(text)) return 'config_changed';
  if (/snapshot '[^']*' does not exist/i.test(text)) return 'proxmox_snapshot_missing';
  if (/\(reserved name\)/i.test(text)) return 'proxmox_bad_request';
  return undefined;
}

/** Classification of an HTTP answer (or the lack of one). */
export function codeFromHttp(status: number | undefined, text: string): ErrorCode {
  if (status === 401 || status === 403) return 'proxmox_auth';
  const byText = codeFromProxmoxMessage(text);
  if (byText) return byText;
  if (status === undefined || status >= 500) return 'proxmox_unavailable';
  return 'proxmox_bad_request';
}

/** Exit status of a finished task: `OK` and `WARNINGS: n` are success (pve-common upid_status_is_error). */
export function isTaskSuccess(exitstatus: string | undefined): boolean {
  return exitstatus === 'OK' || (exitstatus !== undefined && /^WARNINGS: \d+$/.test(exitstatus));
}

export function codeFromTaskExitstatus(exitstatus: string): ErrorCode {
  const byText = codeFromProxmoxMessage(exitstatus);
  return byText === 'proxmox_locked' || byText === 'proxmox_not_most_recent' || byText === 'proxmox_snapshot_missing' || byText === 'config_changed'
    ? byText
    : 'proxmox_task_failed';
}

/** Text of a Proxmox failure (API error or failed task) for message matching; '' for anything else. */
export function proxmoxMessageOf(err: unknown): string {
  if (err instanceof ProxmoxApiError || err instanceof ProxmoxTaskError) return err.proxmoxMessage;
  return '';
}

export function isSnapshotNameUsed(err: unknown): boolean {
  return /snapshot name '[^']*' already used/i.test(proxmoxMessageOf(err));
}

export function isSnapshotMissing(err: unknown): boolean {
  const text = proxmoxMessageOf(err);
  // qemu-server's own words for a missing snapshot; a storage or volume that "does not exist" is not it.
  return /snapshot '[^']*' does not exist/i.test(text) && !VM_CONFIG_MISSING.test(text);
}

export function isAlreadyRunning(err: unknown): boolean {
  return /already running/i.test(proxmoxMessageOf(err));
}
