// Failed authentications are limited per address on HTTP, answered 429 for the rest of the minute,
// even with valid credentials, and logged once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { AuthFailureLimiter } from '../../src/api/auth-failures.js';
import { requireAdminToken } from '../../src/api/auth.js';
import { captureLogger } from './activities-harness.js';

const ADMIN = 'admin-token-for-the-auth-failure-test';

describe('failed authentications per address', () => {
  let server: http.Server;
  let base: string;
  let clock = 0;
  const log = captureLogger();

  before(async () => {
    const app = express();
    app.locals.authFailures = new AuthFailureLimiter({ perMinute: 3 }, log.logger, () => clock);
    app.get('/admin', requireAdminToken(ADMIN), (_req, res) => void res.json({ ok: true }));
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

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
