// The address a request really comes from. Behind a reverse proxy every socket is the proxy's, so
// limits keyed by address would lump all clients together (a few bad logins anywhere would lock
// out the dashboard and every agent). Only for sockets from a trusted proxy is X-Forwarded-For
// read, right to left, skipping trusted hops: the first untrusted address is the client.
import type { IncomingMessage } from 'node:http';
import net from 'node:net';

export type ClientAddressOf = (req: IncomingMessage) => string;

function normalize(address: string): string {
  const trimmed = address.trim();
  return trimmed.startsWith('::ffff:') && net.isIPv4(trimmed.slice(7)) ? trimmed.slice(7) : trimmed;
}

/** Parses `E2EPOOL_TRUSTED_PROXIES` entries (addresses or CIDR ranges); throws naming a bad one. */
export function trustedProxyList(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of entries) {
    const [address, prefix, extra] = entry.split('/');
    const ip = normalize(address ?? '');
    const family = net.isIPv4(ip) ? 'ipv4' : net.isIPv6(ip) ? 'ipv6' : null;
    const bits = prefix === undefined ? undefined : Number(prefix);
    const maxBits = family === 'ipv4' ? 32 : 128;
    if (!family || extra !== undefined || (bits !== undefined && (!Number.isInteger(bits) || bits < 0 || bits > maxBits) ) || prefix === '') {
      throw new Error(`'${entry}' is not an IP address or CIDR range`);
    }
    if (bits === undefined) list.addAddress(ip, family);
    else list.addSubnet(ip, bits, family);
  }
  return list;
}

function isTrusted(list: net.BlockList, address: string): boolean {
  const ip = normalize(address);
  if (net.isIPv4(ip)) return list.check(ip, 'ipv4');
  if (net.isIPv6(ip)) return list.check(ip, 'ipv6');
  return false;
}

export function clientAddressResolver(trusted: readonly string[]): ClientAddressOf {
  const list = trustedProxyList(trusted);
  return (req) => {
    const socketAddress = normalize(req.socket.remoteAddress ?? 'unknown');
    if (trusted.length === 0 || !isTrusted(list, socketAddress)) return socketAddress;
    const header = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map(normalize).filter((h) => h !== '');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (!net.isIP(hop)) return socketAddress; // a forged or garbled chain: fall back to the proxy
      if (!isTrusted(list, hop)) return hop;
    }
    return hops[0] ?? socketAddress;
  };
}
