// Both Temporal connections speak TLS (and mTLS) when configured. A frontend that requires a client
// certificate — here the dev server behind a TLS proxy that demands one, as a secured Temporal
// deployment does — accepts the controller's connection with the settings and refuses it without.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { NativeConnection } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { connectTemporal } from '../../temporal/client.js';
import { temporalConnectionSecurity } from '../../temporal/connection-options.js';
import { startDevServerEnv } from '../helpers/temporal.js';

const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-temporal-tls-'));
const file = (name: string) => path.join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

function makeCertificates() {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=e2epool test CA', '-keyout', file('ca.key'), '-out', file('ca.pem'));
  for (const [name, cn, ext] of [['server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], ['client', 'e2epool-controller', 'extendedKeyUsage=clientAuth']] as const) {
    writeFileSync(file(`${name}.ext`), `${ext}\n`);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', file(`${name}.ext`), '-out', file(`${name}.pem`));
  }
}

describe('Temporal over TLS', () => {
  let env: TestWorkflowEnvironment;
  let proxy: tls.Server;
  let address: string;

  beforeAll(async () => {
    makeCertificates();
    env = await startDevServerEnv();
    const [host, port] = (env as unknown as { address: string }).address.split(':');
    proxy = tls.createServer(
      { key: readFileSync(file('server.key')), cert: readFileSync(file('server.pem')), ca: readFileSync(file('ca.pem')), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] },
      (socket) => {
        const upstream = net.connect(Number(port), host!);
        socket.pipe(upstream).pipe(socket);
        const close = () => {
          socket.destroy();
          upstream.destroy();
        };
        socket.on('error', close);
        upstream.on('error', close);
      },
    );
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => proxy?.close(() => resolve()));
    await env?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  const mtls = () => ({ TEMPORAL_TLS_CA_FILE: file('ca.pem'), TEMPORAL_TLS_CERT_FILE: file('client.pem'), TEMPORAL_TLS_KEY_FILE: file('client.key'), TEMPORAL_TLS_SERVER_NAME: 'localhost' });

  it('the client connects with the mTLS settings and is refused without a client certificate or in plain text', async () => {
    const { connection } = await connectTemporal({ TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default', ...mtls() });
    try {
      await connection.workflowService.getSystemInfo({});
    } finally {
      await connection.close();
    }
    await assert.rejects(connectTemporal({ TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default', TEMPORAL_TLS_CA_FILE: file('ca.pem'), TEMPORAL_TLS_SERVER_NAME: 'localhost' }, { connectTimeoutMs: 3000 }));
    await assert.rejects(connectTemporal({ TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default' }, { connectTimeoutMs: 3000 }));
  });

  it('the worker connection uses the same settings', async () => {
    const connection = await NativeConnection.connect({ address, ...temporalConnectionSecurity(mtls()) });
    await connection.close();
    await assert.rejects(NativeConnection.connect({ address }));
  });

  it('refuses half an mTLS configuration and unreadable files with a clear error', () => {
    assert.throws(() => temporalConnectionSecurity({ TEMPORAL_TLS_CERT_FILE: file('client.pem') }), /go together/);
    assert.throws(() => temporalConnectionSecurity({ TEMPORAL_TLS_CA_FILE: file('missing.pem') }), /cannot be read: ENOENT/);
    assert.deepEqual(temporalConnectionSecurity({}), {}, 'plain text only when nothing is configured');
  });
});
