// Failed authentications are limited per address on HTTP, answered 429 for the rest of the minute,
// even with valid credentials, and logged once.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { AuthFailureLimiter } from '../../src/util/auth-failures.js';
import { requireAdminToken } from '../../src/api/auth.js';
import { captureLogs } from '../helpers/log-capture.js';

const ADMIN = 'admin-token-for-the-auth-failure-test';

describe('failed authentications per address', () => {
  let server: http.Server;
  let base: string;
  let clock = 0;
  const log = captureLogs();

  beforeAll(async () => {
    const app = express();
    app.locals.authFailures = new AuthFailureLimiter({ perMinute: 3 }, log.logger, () => clock);
    app.get('/admin', requireAdminToken(ADMIN), (_req, res) => void res.json({ ok: true }));
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const get = async (token: string) => (await fetch(`${base}/admin`, { headers: { authorization: `Bearer ${token}` } })).status;

  it('answers 429 after the limit, also for the right token, until the minute ends', async () => {
    assert.equal(await get(ADMIN), 200);
    for (let i = 0; i < 3; i++) assert.equal(await get('wrong'), 403);
    assert.equal(await get('wrong'), 429);
    assert.equal(await get(ADMIN), 429, 'no credential is checked while the address is blocked');
    assert.equal(log.lines.filter((l) => l.includes('too many failed authentications')).length, 1);
    clock += 60_000;
    assert.equal(await get(ADMIN), 200);
  });
});

describe('failed authentications behind a trusted reverse proxy', () => {
  let server: http.Server;
  let base: string;
  const log = captureLogs();

  beforeAll(async () => {
    const app = express();
    // The test's requests come from 127.0.0.1, playing the proxy.
    app.locals.authFailures = new AuthFailureLimiter({ perMinute: 3, trustedProxies: ['127.0.0.0/8', '10.1.0.0/16'] }, log.logger);
    app.get('/admin', requireAdminToken(ADMIN), (_req, res) => void res.json({ ok: true }));
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const get = async (token: string, forwardedFor: string) =>
    (await fetch(`${base}/admin`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': forwardedFor } })).status;

  it("blocks the client named by X-Forwarded-For, not everyone behind the proxy", async () => {
    for (let i = 0; i < 3; i++) assert.equal(await get('wrong', '203.0.113.7'), 403);
    assert.equal(await get(ADMIN, '203.0.113.7'), 429);
    assert.equal(await get(ADMIN, '198.51.100.20'), 200, 'another client through the same proxy still gets in');
    // A client cannot dodge the limit by prepending addresses: the right-most untrusted hop counts.
    assert.equal(await get(ADMIN, '192.0.2.1, 203.0.113.7'), 429);
    assert.equal(await get(ADMIN, '203.0.113.7, 10.1.2.3'), 429, 'trusted hops are skipped');
    assert.ok(log.lines.some((l) => l.includes('203.0.113.7')), 'the log names the client, not the proxy');
  });
});
