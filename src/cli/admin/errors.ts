// What can go wrong in `e2epool admin`, each with its exit code: the controller refused (1), or the
// command could not be sent at all: bad usage, no settings, controller unreachable (2).
import { exitError, usageExitCode } from '../exit-codes.js';

/** Bad flags or settings; nothing was sent. Exit 2. */
export class AdminUsageError extends Error {
  readonly exitCode = usageExitCode;
  constructor(message: string) {
    super(message);
    this.name = 'AdminUsageError';
  }
}

/** No answer from the controller (refused connection, DNS, timeout, TLS). Exit 2. */
export class AdminUnreachableError extends Error {
  readonly exitCode = usageExitCode;
  constructor(message: string) {
    super(message);
    this.name = 'AdminUnreachableError';
  }
}

/** The controller answered with a 4xx or 5xx; `detail` is its message. Exit 1. */
export class AdminRefusedError extends Error {
  readonly exitCode = exitError;
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly body: unknown,
  ) {
    super(`${detail} (HTTP ${status})`);
    this.name = 'AdminRefusedError';
  }
}

export type AdminError = AdminUsageError | AdminUnreachableError | AdminRefusedError;

export function isAdminError(err: unknown): err is AdminError {
  return err instanceof AdminUsageError || err instanceof AdminUnreachableError || err instanceof AdminRefusedError;
}
