// The client address through trusted proxies (E2EPOOL_TRUSTED_PROXIES): only a trusted socket's
// X-Forwarded-For is read, right to left; a garbled chain falls back to the socket.
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { clientAddressResolver, trustedProxyList } from '../../src/util/client-address.js';
import { loadConfig } from '../../src/config.js';

const request = (remoteAddress: string, xff?: string) => ({ socket: { remoteAddress }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;

describe('client address', () => {
  const resolve = clientAddressResolver(['10.0.0.0/8', '::1', '172.18.0.5']);

  it('is the socket address for untrusted sockets, whatever they claim', () => {
    assert.equal(resolve(request('198.51.100.9', '203.0.113.7')), '198.51.100.9');
  });

  it('reads X-Forwarded-For from a trusted proxy, right to left, skipping trusted hops', () => {
    assert.equal(resolve(request('::ffff:10.2.3.4', '203.0.113.7')), '203.0.113.7');
    assert.equal(resolve(request('172.18.0.5', '192.0.2.1, 203.0.113.7, 10.9.9.9')), '203.0.113.7');
    assert.equal(resolve(request('::1', '2001:db8::5')), '2001:db8::5');
    assert.equal(resolve(request('10.0.0.1')), '10.0.0.1', 'no header: the proxy itself');
    assert.equal(resolve(request('10.0.0.1', 'not-an-ip')), '10.0.0.1', 'a garbled chain is not trusted');
  });

  it('with no trusted proxies, never reads the header', () => {
    assert.equal(clientAddressResolver([])(request('127.0.0.1', '203.0.113.7')), '127.0.0.1');
  });

  it('refuses entries that are not addresses or ranges, at config load', () => {
    for (const bad of ['nginx', '10.0.0.0/33', '10.0.0.0/', '::1/129', '1.2.3.4/8/1']) assert.throws(() => trustedProxyList([bad]), new RegExp(bad.replace(/[./]/g, '\\$&')));
    assert.throws(() => loadConfig({ E2EPOOL_TRUSTED_PROXIES: '10.0.0.0/8, nginx' }), /TRUSTED_PROXIES/);
    assert.deepEqual(loadConfig({ E2EPOOL_TRUSTED_PROXIES: '10.0.0.0/8, ::1' }).TRUSTED_PROXIES, ['10.0.0.0/8', '::1']);
  });
});
