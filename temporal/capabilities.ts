// Start check of `serve`: the server must accept update-with-start (ARCHITECTURE §2, §4.2).
//
// GetSystemInfo's capability flags have no entry for update-with-start, and a version number
// cannot tell whether the feature is switched on (dynamic config gated it per namespace in the
// releases that introduced it; the time-skipping test server reports no version at all). So we ask
// the API itself: an ExecuteMultiOperation request with no operations has no side effect. A server
// that implements and allows it rejects the request as INVALID_ARGUMENT ("Operations have to be
// exactly [Start, Update]"); one that does not answers UNIMPLEMENTED or PERMISSION_DENIED.
import type { Connection } from '@temporalio/client';
import { E2epoolError } from '../src/domain/errors.js';
import { grpcCodeOf, grpcDetailsOf, grpcStatus } from './grpc-status.js';

type WorkflowServiceConnection = Pick<Connection, 'workflowService'>;

export interface ServerCapabilities {
  /** Empty when the server does not report it (the time-skipping test server). */
  serverVersion: string;
  updateWithStart: true;
}

export async function assertServerCapabilities(connection: WorkflowServiceConnection, namespace: string): Promise<ServerCapabilities> {
  let serverVersion: string;
  try {
    serverVersion = (await connection.workflowService.getSystemInfo({})).serverVersion ?? '';
  } catch (err) {
    throw new E2epoolError('temporal_unavailable', `Cannot read the Temporal server's system info: ${grpcDetailsOf(err)}`);
  }
  const server = serverVersion ? `Temporal Server ${serverVersion}` : 'The Temporal server';
  try {
    await connection.workflowService.executeMultiOperation({ namespace, operations: [] });
  } catch (err) {
    const code = grpcCodeOf(err);
    if (code === grpcStatus.INVALID_ARGUMENT) return { serverVersion, updateWithStart: true };
    if (code === grpcStatus.NOT_FOUND) {
      throw new E2epoolError('not_configured', `Temporal namespace '${namespace}' does not exist: ${grpcDetailsOf(err)}`);
    }
    if (code === grpcStatus.UNIMPLEMENTED || code === grpcStatus.PERMISSION_DENIED) {
      throw new E2epoolError(
        'not_configured',
        `${server} does not accept update-with-start in namespace '${namespace}' (${grpcDetailsOf(err)}). ` +
          'e2epool creates checkpoints with it: upgrade the server, or enable the dynamic config ' +
          'frontend.enableExecuteMultiOperation (and frontend.enableUpdateWorkflowExecution) for the namespace.',
      );
    }
    throw new E2epoolError('temporal_unavailable', `Cannot check update-with-start support: ${grpcDetailsOf(err)}`);
  }
  // Accepting an empty multi-operation is not a behaviour any released server has; refuse rather than guess.
  throw new E2epoolError('not_configured', `${server} accepted an empty ExecuteMultiOperation request; cannot confirm update-with-start support.`);
}
