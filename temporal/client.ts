// The Temporal client factory: one connection and a client bound to the configured namespace.
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../src/config.js';
import { E2epoolError } from '../src/domain/errors.js';
import { grpcDetailsOf } from './grpc-status.js';
import { temporalConnectionSecurity, type TemporalSecurityConfig } from './connection-options.js';

export type TemporalClientConfig = Pick<Config, 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE'> & Partial<TemporalSecurityConfig>;

export interface TemporalClients {
  connection: Connection;
  client: Client;
}

/** Connects eagerly, so an unreachable server fails here with a message saying what to do. */
export async function connectTemporal(
  config: TemporalClientConfig,
  opts: { connectTimeoutMs?: number } = {},
): Promise<TemporalClients> {
  const address = config.TEMPORAL_ADDRESS;
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, connectTimeout: opts.connectTimeoutMs ?? 10_000, ...temporalConnectionSecurity(config) });
  } catch (err) {
    throw new E2epoolError(
      'temporal_unavailable',
      `Cannot reach the Temporal server at ${address}: ${grpcDetailsOf(err)}. ` +
        `Start one with 'e2epool temporal-dev' or set E2EPOOL_TEMPORAL_ADDRESS.`,
      { address },
    );
  }
  return { connection, client: new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }) };
}
