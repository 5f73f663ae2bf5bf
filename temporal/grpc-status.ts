// gRPC status codes we branch on when calling Temporal's services directly (stable wire values).
import { isGrpcServiceError } from '@temporalio/client';

export const grpcStatus = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
} as const;

/** The gRPC status code of a failed service call, or undefined for any other error. */
export function grpcCodeOf(err: unknown): number | undefined {
  return isGrpcServiceError(err) ? err.code : undefined;
}

/** The server's own message without the "<code> <NAME>: " prefix grpc-js adds. */
export function grpcDetailsOf(err: unknown): string {
  if (isGrpcServiceError(err)) return err.details;
  return err instanceof Error ? err.message : String(err);
}
