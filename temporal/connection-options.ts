// TLS, mTLS and API-key settings of both Temporal connections (the client's and the workers'),
// read in one place: a frontend reachable by others must not be spoken to in plain text.
import { readFileSync } from 'node:fs';
import type { Config } from '../src/config.js';
import { E2epoolError } from '../src/domain/errors.js';

export type TemporalSecurityConfig = Pick<Config, 'TEMPORAL_TLS' | 'TEMPORAL_TLS_CA_FILE' | 'TEMPORAL_TLS_CERT_FILE' | 'TEMPORAL_TLS_KEY_FILE' | 'TEMPORAL_TLS_SERVER_NAME' | 'TEMPORAL_API_KEY'>;

export interface TemporalConnectionSecurity {
  tls?: { serverRootCACertificate?: Buffer; clientCertPair?: { crt: Buffer; key: Buffer }; serverNameOverride?: string } | true;
  apiKey?: string;
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new E2epoolError('validation', `${what} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Options for Connection.connect and NativeConnection.connect; empty when nothing is configured. */
export function temporalConnectionSecurity(config: Partial<TemporalSecurityConfig>): TemporalConnectionSecurity {
  const out: TemporalConnectionSecurity = {};
  const wantsTls = config.TEMPORAL_TLS || config.TEMPORAL_TLS_CA_FILE || config.TEMPORAL_TLS_CERT_FILE || config.TEMPORAL_TLS_KEY_FILE || config.TEMPORAL_API_KEY;
  if (wantsTls) {
    if (Boolean(config.TEMPORAL_TLS_CERT_FILE) !== Boolean(config.TEMPORAL_TLS_KEY_FILE)) {
      throw new E2epoolError('validation', 'E2EPOOL_TEMPORAL_TLS_CERT_FILE and E2EPOOL_TEMPORAL_TLS_KEY_FILE go together (mTLS needs both)');
    }
    const tls: Exclude<TemporalConnectionSecurity['tls'], true | undefined> = {};
    if (config.TEMPORAL_TLS_CA_FILE) tls.serverRootCACertificate = read(config.TEMPORAL_TLS_CA_FILE, 'E2EPOOL_TEMPORAL_TLS_CA_FILE');
    if (config.TEMPORAL_TLS_CERT_FILE && config.TEMPORAL_TLS_KEY_FILE) {
      tls.clientCertPair = { crt: read(config.TEMPORAL_TLS_CERT_FILE, 'E2EPOOL_TEMPORAL_TLS_CERT_FILE'), key: read(config.TEMPORAL_TLS_KEY_FILE, 'E2EPOOL_TEMPORAL_TLS_KEY_FILE') };
    }
    if (config.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = config.TEMPORAL_TLS_SERVER_NAME;
    out.tls = Object.keys(tls).length ? tls : true;
  }
  if (config.TEMPORAL_API_KEY) out.apiKey = config.TEMPORAL_API_KEY;
  return out;
}
