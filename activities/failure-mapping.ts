// The one place that turns errors into Temporal failures: a stable code becomes the failure type,
// and the error-code table decides whether Temporal retries it.
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { E2epoolError, isErrorCode, isRetryable } from '../src/domain/errors.js';
import { redactSecrets, truncateOutput } from '../src/redaction.js';

export function toActivityFailure(err: unknown): unknown {
  // Cancellation must reach Temporal as cancellation, not as a retryable failure.
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  if (err instanceof E2epoolError) {
    return ApplicationFailure.create({
      type: err.code,
      message: redactSecrets(truncateOutput(err.detail)),
      nonRetryable: !isRetryable(err.code),
      details: Object.keys(err.extra).length ? [sanitizeExtra(err.extra)] : undefined,
    });
  }
  const code = (err as { code?: unknown })?.code;
  if (isErrorCode(code)) {
    return ApplicationFailure.create({ type: code, message: redactSecrets(String((err as Error).message)), nonRetryable: !isRetryable(code) });
  }
  // Unknown errors (network, driver) are retried: activities are idempotent by design.
  return ApplicationFailure.create({ type: 'internal', message: redactSecrets(err instanceof Error ? err.message : String(err)), nonRetryable: false });
}

function sanitizeExtra(extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extra)) out[k] = typeof v === 'string' ? redactSecrets(truncateOutput(v)) : v;
  return out;
}

/** Wraps every function of an activity object so thrown errors are mapped in one place. */
export function withFailureMapping<T extends { [K in keyof T]: (...args: any[]) => Promise<any> }>(activities: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities) as Array<[string, (...args: unknown[]) => Promise<unknown>]>) {
    wrapped[name] = async (...args: unknown[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        throw toActivityFailure(err);
      }
    };
    Object.defineProperty(wrapped[name], 'name', { value: name });
  }
  return wrapped as T;
}
