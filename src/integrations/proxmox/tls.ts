// TLS for the Proxmox API: verified by default, or trust one CA file, or pin the server certificate by
// its SHA-256 fingerprint (Proxmox nodes usually run self-signed certificates). Insecure only on request.
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { E2epoolError } from '../../domain/errors.js';
import type { Logger } from '../../logger.js';

export interface ProxmoxTlsOptions {
  /** PEM file with the CA (or the self-signed certificate) to trust instead of the system roots. */
  caFile?: string;
  /** SHA-256 fingerprint of the server certificate, `AA:BB:...` (colons optional, any case). */
  fingerprint?: string;
  /** Skip verification entirely. Logged as a warning once per base URL. */
  insecure?: boolean;
}

/** Error code Node and this module use when the peer certificate does not match the pin. */
export const FINGERPRINT_MISMATCH = 'ERR_E2EPOOL_FINGERPRINT_MISMATCH';

export function normalizeFingerprint(value: string): string {
  const hex = value.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new E2epoolError('validation', 'Proxmox TLS fingerprint must be a SHA-256 fingerprint (64 hex digits, optionally colon-separated)');
  }
  return hex.match(/../g)!.join(':');
}

/**
 * Accepts exactly the pinned certificate. Chain verification is off, so the socket is handed to the
 * HTTP layer only after the fingerprint matched: no request byte (and no token) reaches another peer.
 */
class PinnedCertificateAgent extends https.Agent {
  constructor(private readonly pin: string) {
    super({ keepAlive: true });
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const done = callback ?? (() => undefined);
    const socket = tls.connect({ ...(options as tls.ConnectionOptions), rejectUnauthorized: false });
    const onError = (err: Error) => done(err, socket);
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.off('error', onError);
      const presented = socket.getPeerCertificate().fingerprint256;
      if (presented !== this.pin) {
        const err = Object.assign(new Error(`Proxmox certificate fingerprint ${presented ?? '(none)'} does not match the pinned fingerprint`), { code: FINGERPRINT_MISMATCH });
        socket.on('error', () => undefined);
        socket.destroy();
        done(err, socket);
        return;
      }
      done(null, socket);
    });
    return undefined;
  }
}

const warnedInsecure = new Set<string>();

export interface HttpsSettings {
  agent: https.Agent;
  /** Only with a CA file: the PEM to trust. */
  certificateAuthority?: string;
  rejectUnauthorized: boolean;
}

export function createHttpsSettings(baseUrl: string, opts: ProxmoxTlsOptions, logger?: Logger): HttpsSettings {
  const chosen = [opts.caFile !== undefined, opts.fingerprint !== undefined, opts.insecure === true].filter(Boolean).length;
  if (chosen > 1) throw new E2epoolError('validation', 'Proxmox TLS: choose one of caFile, fingerprint or insecure');
  if (opts.fingerprint !== undefined) {
    return { agent: new PinnedCertificateAgent(normalizeFingerprint(opts.fingerprint)), rejectUnauthorized: false };
  }
  if (opts.insecure) {
    if (!warnedInsecure.has(baseUrl)) {
      warnedInsecure.add(baseUrl);
      logger?.warn({ proxmoxUrl: baseUrl }, 'Proxmox TLS verification is disabled (insecure); pin the certificate fingerprint or give a CA file instead');
    }
    return { agent: new https.Agent({ keepAlive: true, rejectUnauthorized: false }), rejectUnauthorized: false };
  }
  if (opts.caFile !== undefined) {
    let pem: string;
    try {
      pem = readFileSync(opts.caFile, 'utf8');
    } catch (err) {
      throw new E2epoolError('validation', `Proxmox TLS CA file ${opts.caFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new E2epoolError('validation', `Proxmox TLS CA file ${opts.caFile} holds no PEM certificate`);
    return { agent: new https.Agent({ keepAlive: true, ca: pem }), certificateAuthority: pem, rejectUnauthorized: true };
  }
  return { agent: new https.Agent({ keepAlive: true }), rejectUnauthorized: true };
}

/** Node/OpenSSL error codes that mean "the server certificate was not trusted". */
export function isCertificateError(code: string | undefined): boolean {
  if (!code) return false;
  return code === FINGERPRINT_MISMATCH
    || code === 'ERR_TLS_CERT_ALTNAME_INVALID'
    || code === 'DEPTH_ZERO_SELF_SIGNED_CERT'
    || code === 'SELF_SIGNED_CERT_IN_CHAIN'
    || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'
    || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'
    || code.startsWith('CERT_');
}
