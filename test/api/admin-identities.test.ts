// The admin API's identities and limits: named tokens from a file (rotated without a restart, the
// name recorded as the audit actor), GET /api/audit, field length limits, and inventory runner ids
// that the API can neither delete nor take over.
import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import { AdminTokens } from '../../src/api/admin-tokens.js';
import { errorMiddleware, notFoundHandler } from '../../src/api/errors.js';
import { createAuditRouter } from '../../src/api/routes/audit.js';
import { createRunnersRouter } from '../../src/api/routes/runners.js';
import { parseInventory } from '../../src/inventory/inventory-file.js';
import { RunnerRegistry } from '../../src/inventory/registry.js';
import { createLogger } from '../../src/logger.js';
import { createAuditRecorder } from '../../src/services/audit.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';

describe('admin identities', () => {
  let database: TestDatabase;
  let registry: RunnerRegistry;
  let server: http.Server;
  let base: string;
  const tokensFile = path.join(mkdtempSync(path.join(tmpdir(), 'e2epool-admin-tokens-')), 'admin-tokens.yml');

  beforeAll(async () => {
    database = await createPgliteDatabase();
    registry = new RunnerRegistry({ db: database.db, pepper: 'admin-identities-test-pepper' });
    writeFileSync(tokensFile, `alice: ${ALICE}\n`, { mode: 0o600 });
    const app = express();
    app.locals.adminTokens = new AdminTokens({ file: tokensFile });
    app.use(createRunnersRouter({ registry, audit: createAuditRecorder(database.db), adminToken: undefined }));
    app.use(createAuditRouter({ db: database.db, adminToken: undefined }));
    app.use(notFoundHandler);
    app.use(errorMiddleware(createLogger({ level: 'silent' })));
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await database?.drop();
  });

  const call = async (method: string, url: string, token: string, body?: unknown) => {
    const res = await fetch(`${base}${url}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  it('names the operator in the audit log and rotates tokens without a restart', async () => {
    assert.equal((await call('POST', '/api/runners', ALICE, { runner_id: 'bm-alice', backend: 'bare_metal', reset_cmd: 'reset' })).status, 201);
    const audit = await call('GET', '/api/audit?limit=5', ALICE);
    assert.equal(audit.status, 200);
    assert.deepEqual(audit.body.entries.map((e: { actor: string; action: string; target: string }) => [e.actor, e.action, e.target]), [['alice', 'runner.create', 'bm-alice']]);
    assert.equal((await call('GET', '/api/audit?since=yesterday', ALICE)).status, 422);
    // Alice's token is revoked and Bob's added by editing the file.
    writeFileSync(tokensFile, `bob: ${BOB}\n`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    writeFileSync(tokensFile, `bob: ${BOB}\n# rotated\n`);
    assert.equal((await call('GET', '/api/runners', ALICE)).status, 403);
    assert.equal((await call('DELETE', '/api/runners/bm-alice', BOB)).status, 200);
    const entries = (await call('GET', '/api/audit', BOB)).body.entries;
    assert.equal(entries[0].actor, 'bob');
    assert.equal(entries[0].action, 'runner.deactivate');
  });

  it('limits every runner field', async () => {
    const tooLong = await call('POST', '/api/runners', BOB, { runner_id: 'bm-long', backend: 'bare_metal', reset_cmd: 'x'.repeat(5000) });
    assert.equal(tooLong.status, 422);
    const manyTags = await call('POST', '/api/runners', BOB, { runner_id: 'bm-tags', backend: 'bare_metal', reset_cmd: 'r', tags: Array.from({ length: 51 }, (_, i) => `t${i}`) });
    assert.equal(manyTags.status, 422);
  });

  it('an inventory runner id can be neither deleted nor taken over through the API', async () => {
    await registry.syncInventory(parseInventory('runners:\n  - {runner_id: inv-held, backend: bare_metal, token: inventory-token-0123456789abcdef, reset_cmd: r, readiness_cmd: ok, gitlab_runner_id: 1}\n'));
    const del = await call('DELETE', '/api/runners/inv-held', BOB);
    assert.equal(del.status, 409);
    assert.match(del.body.detail, /comes from the inventory file/);
    // Removed from the file (inactive), the id still belongs to the inventory.
    await registry.syncInventory(parseInventory('runners: []\n'));
    const takeover = await call('POST', '/api/runners', BOB, { runner_id: 'inv-held', backend: 'bare_metal', reset_cmd: 'r' });
    assert.equal(takeover.status, 409);
    assert.match(takeover.body.detail, /belongs to the inventory file/);
  });
});
