// Self-signed certificate for the simulator's HTTPS listener, made with the openssl binary at start.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';

export interface SelfSignedCertificate {
  certPem: string;
  keyPem: string;
  /** SHA-256 fingerprint, `AA:BB:...`, as Node reports `fingerprint256`. */
  fingerprint: string;
}

export function generateSelfSignedCertificate(commonName = 'localhost'): SelfSignedCertificate {
  const dir = mkdtempSync(path.join(tmpdir(), 'e2epool-pve-sim-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '30', '-subj', `/CN=${commonName}`,
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    const certPem = readFileSync(certFile, 'utf8');
    const keyPem = readFileSync(keyFile, 'utf8');
    return { certPem, keyPem, fingerprint: new X509Certificate(certPem).fingerprint256 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
