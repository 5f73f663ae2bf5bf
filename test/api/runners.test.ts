// The admin runner API and the bearer-token middleware over real HTTP: express on 127.0.0.1, fetch,
// and the registry on a throwaway PostgreSQL database.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, it } from 'vitest';
import express, { type Request, type Response } from 'express';
import { asc } from 'drizzle-orm';
import { auditLog } from '../../db/schema.js';
import { requireRunnerToken } from '../../src/api/auth.js';
import { createRunnersRouter } from '../../src/api/routes/runners.js';
import type { AuditRecorder } from '../../src/services/audit.js';
import { RunnerRegistry } from '../../src/inventory/registry.js';
import type { Db } from '../../src/store/database.js';
import { createPostgresDatabase, type TestDatabase } from '../helpers/databases.js';

const ADMIN = 'admin-token-for-tests';

function dbAudit(db: Db): AuditRecorder {
  return {
    record: async (e) => {
      await db.insert(auditLog).values({ actor: e.actor, action: e.action, target: e.target ?? null, detail: e.detail ?? null });
    },
  };
}

async function listen(app: express.Express): Promise<{ server: Server; base: string }> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const close = (server: Server | undefined) => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));

function buildApp(registry: RunnerRegistry, audit: AuditRecorder, adminToken: string | undefined): express.Express {
  const app = express();
  app.use(createRunnersRouter({ registry, audit, adminToken }));
  // Stand-ins for the runner routes, to exercise requireRunnerToken over HTTP.
  app.get('/runner/readiness', requireRunnerToken(registry), (_req: Request, res: Response) => {
    res.json({ runner_id: res.locals.runner.runnerId });
  });
  app.post('/checkpoint/create', requireRunnerToken(registry), express.json(), (req: Request, res: Response) => {
    if (!req.body?.job_id) {
      res.status(422).json({ detail: [{ type: 'missing', loc: ['body', 'job_id'], msg: 'Field required', input: null }] });
      return;
    }
    res.status(201).json({ runner_id: res.locals.runner.runnerId });
  });
  return app;
}

const proxmoxBody = {
  runner_id: 'pve-runner-01',
  backend: 'proxmox',
  proxmox_host: '10.0.0.5',
  proxmox_user: 'root@pam',
  proxmox_token_name: 'e2epool',
  proxmox_token_value: 'PVE-SECRET-TOKEN-VALUE',
  proxmox_node: 'pve1',
  proxmox_vmid: 100,
  gitlab_runner_id: 42,
  tags: ['e2e', 'proxmox'],
  gitlab_token: 'GITLAB-SECRET',
};

describe('admin runner API over HTTP', () => {
  let database: TestDatabase;
  let registry: RunnerRegistry;
  let server: Server;
  let unconfigured: Server;
  let base: string;
  let unconfiguredBase: string;

  const call = async (method: string, path: string, opts: { token?: string | null; auth?: string; body?: unknown; rawBody?: string; baseUrl?: string } = {}) => {
    const headers: Record<string, string> = {};
    if (opts.auth !== undefined) headers.authorization = opts.auth;
    else if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? ADMIN}`;
    let body: string | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${opts.baseUrl ?? base}${path}`, { method, headers, body });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };

  beforeAll(async () => {
    database = await createPostgresDatabase('e2epool_reg');
    registry = new RunnerRegistry({ db: database.db, pepper: 'api-test-pepper' });
    ({ server, base } = await listen(buildApp(registry, dbAudit(database.db), ADMIN)));
    ({ server: unconfigured, base: unconfiguredBase } = await listen(buildApp(registry, dbAudit(database.db), undefined)));
  });
  afterAll(async () => {
    await close(server);
    await close(unconfigured);
    await database?.drop();
  });

  describe('admin token checks (§4.1, scenarios 52-57)', () => {
    it('no Authorization header → 401, and every admin answer is no-store', async () => {
      const r = await call('GET', '/api/runners', { token: null });
      assert.equal(r.status, 401);
      assert.deepEqual(r.body, { detail: 'Missing admin token: send Authorization: Bearer <token>' });
      const ok = await fetch(`${base}/api/runners`, { headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(ok.headers.get('cache-control'), 'no-store');
    });

    it('no case-sensitive Bearer prefix → 401', async () => {
      for (const auth of ['Basic abc', `bearer ${ADMIN}`, `Bearer${ADMIN}`, ADMIN, '']) {
        const r = await call('GET', '/api/runners', { auth });
        assert.deepEqual([r.status, r.body], [401, { detail: 'Invalid authorization header' }], auth);
      }
    });

    it('wrong or empty token → 403 Invalid admin token', async () => {
      // `Bearer ` reaches the server as `Bearer` (HTTP strips trailing spaces): an empty token.
      for (const token of ['wrong-token', '', `${ADMIN}x`, ADMIN.slice(0, -1)]) {
        const r = await call('GET', '/api/runners', { token });
        assert.deepEqual([r.status, r.body], [403, { detail: 'Invalid admin token' }], token);
      }
    });

    it('not configured → 503 before the header format is looked at, but after a missing header', async () => {
      for (const auth of [`Bearer ${ADMIN}`, 'Basic abc']) {
        const r = await call('GET', '/api/runners', { auth, baseUrl: unconfiguredBase });
        assert.deepEqual([r.status, r.body], [503, { detail: 'Admin API not configured' }]);
      }
      assert.equal((await call('GET', '/api/runners', { token: null, baseUrl: unconfiguredBase })).status, 401);
    });

    it('the right token → 200 [] on an empty registry (scenarios 55, 65)', async () => {
      const r = await call('GET', '/api/runners');
      assert.deepEqual([r.status, r.body], [200, []]);
    });

    it('a wrong token is 403 on every route, before the body is read (auth before validation)', async () => {
      const routes: Array<[string, string]> = [
        ['GET', '/api/runners'],
        ['POST', '/api/runners'],
        ['GET', '/api/runners/x'],
        ['DELETE', '/api/runners/x'],
        ['POST', '/api/runners/x/rotate-token'],
        ['POST', '/api/runners/x/drain'],
        ['POST', '/api/runners/x/undrain'],
      ];
      for (const [method, path] of routes) {
        const r = await call(method, path, { token: 'wrong', body: method === 'POST' ? {} : undefined });
        assert.equal(r.status, 403, `${method} ${path}`);
      }
      const broken = await call('POST', '/api/runners', { token: 'wrong', rawBody: '{not json' });
      assert.equal(broken.status, 403);
    });
  });

  describe('POST /api/runners', () => {
    let proxmoxToken: string;

    it('creates a proxmox runner: 201, token shown once, no secrets (scenario 58)', async () => {
      const r = await call('POST', '/api/runners', { body: proxmoxBody });
      assert.equal(r.status, 201);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      const b = r.body;
      assert.equal(b.runner_id, 'pve-runner-01');
      assert.equal(b.backend, 'proxmox');
      assert.equal(b.proxmox_host, '10.0.0.5');
      assert.deepEqual(b.tags, ['e2e', 'proxmox']);
      assert.equal(b.is_active, true);
      assert.equal(b.gitlab_runner_id, 42);
      assert.ok(b.created_at && b.updated_at);
      assert.match(b.token, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(!('proxmox_token_value' in b) && !('gitlab_token' in b) && !('token_hash' in b));
      assert.ok(!JSON.stringify(b).includes('SECRET'));
      assert.deepEqual(Object.keys(b).slice(0, 15), [
        'runner_id', 'backend', 'proxmox_host', 'proxmox_user', 'proxmox_token_name', 'proxmox_node', 'proxmox_vmid',
        'reset_cmd', 'cleanup_cmd', 'readiness_cmd', 'gitlab_runner_id', 'tags', 'is_active', 'created_at', 'updated_at',
      ]);
      proxmoxToken = b.token;
    });

    it('creates bare-metal runners: echoes reset_cmd, tags default to [] (scenarios 59-61)', async () => {
      const full = await call('POST', '/api/runners', { body: { runner_id: 'bm-01', backend: 'bare_metal', reset_cmd: '/opt/reset.sh', tags: ['z', 'a', 'm'] } });
      assert.equal(full.status, 201);
      assert.equal(full.body.reset_cmd, '/opt/reset.sh');
      assert.deepEqual(full.body.tags, ['z', 'a', 'm'], 'order preserved (scenario 68)');
      const minimal = await call('POST', '/api/runners', { body: { runner_id: 'bm-02', backend: 'bare_metal', reset_cmd: 'r' } });
      assert.equal(minimal.status, 201);
      assert.equal(minimal.body.proxmox_host, null);
      assert.equal(minimal.body.gitlab_runner_id, null);
      assert.deepEqual(minimal.body.tags, []);
      assert.equal(minimal.body.reset_mode, 'auto');
      assert.equal(minimal.body.success_action, 'reset');
      const emptyTags = await call('POST', '/api/runners', { body: { runner_id: 'bm-03', backend: 'bare_metal', reset_cmd: 'r', tags: [] } });
      assert.deepEqual(emptyTags.body.tags, []);
    });

    it('the same active runner twice → 409 (scenario 62)', async () => {
      const r = await call('POST', '/api/runners', { body: { runner_id: 'bm-01', backend: 'bare_metal', reset_cmd: 'r' } });
      assert.deepEqual([r.status, r.body], [409, { detail: "Runner 'bm-01' already exists" }]);
    });

    it('business rules → 422 with a string detail (scenario 63)', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ runner_id: 'x1', backend: 'docker' }, "Invalid backend 'docker'. Must be 'proxmox' or 'bare_metal'."],
        [
          { runner_id: 'x1', backend: 'proxmox' },
          'proxmox backend is missing required fields: proxmox_host, proxmox_user, proxmox_token_name, proxmox_token_value, proxmox_node, proxmox_vmid',
        ],
        [{ runner_id: 'x1', backend: 'bare_metal' }, "bare_metal backend requires 'reset_cmd'."],
      ];
      for (const [body, detail] of cases) {
        const r = await call('POST', '/api/runners', { body });
        assert.deepEqual([r.status, r.body], [422, { detail }]);
      }
    });

    it('schema errors → 422 with a FastAPI detail list (scenario 64)', async () => {
      const bad = await call('POST', '/api/runners', { body: { runner_id: 'bad runner!', backend: 'bare_metal', reset_cmd: 'r' } });
      assert.equal(bad.status, 422);
      assert.deepEqual(bad.body.detail, [
        {
          type: 'string_pattern_mismatch',
          loc: ['body', 'runner_id'],
          msg: "String should match pattern '^[\\w.\\-]+$'",
          input: 'bad runner!',
        },
      ]);
      const empty = await call('POST', '/api/runners', { body: { runner_id: '', backend: 'bare_metal', reset_cmd: 'r' } });
      assert.equal(empty.body.detail[0].type, 'string_too_short');
      const missing = await call('POST', '/api/runners', { body: { backend: 'bare_metal', reset_cmd: 'r' } });
      assert.deepEqual(missing.body.detail, [{ type: 'missing', loc: ['body', 'runner_id'], msg: 'Field required', input: null }]);
      const typed = await call('POST', '/api/runners', { body: { runner_id: 'x', backend: 'bare_metal', reset_cmd: 'r', proxmox_vmid: 'abc' } });
      assert.equal(typed.body.detail[0].type, 'int_parsing');
    });

    it('no body, a non-object body and broken JSON → 422', async () => {
      const none = await call('POST', '/api/runners');
      assert.deepEqual([none.status, none.body], [422, { detail: [{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }] }]);
      const list = await call('POST', '/api/runners', { body: [1, 2] });
      assert.equal(list.status, 422);
      assert.equal(list.body.detail[0].type, 'model_attributes_type');
      const broken = await call('POST', '/api/runners', { rawBody: '{"runner_id": ' });
      assert.equal(broken.status, 422);
      assert.equal(broken.body.detail[0].type, 'json_invalid');
    });

    it('the created token authenticates runner routes; after DELETE it gets 403 (scenario 71)', async () => {
      const ok = await call('GET', '/runner/readiness', { token: proxmoxToken });
      assert.deepEqual([ok.status, ok.body], [200, { runner_id: 'pve-runner-01' }]);
      const del = await call('DELETE', '/api/runners/pve-runner-01');
      assert.deepEqual([del.status, del.body], [200, { detail: "Runner 'pve-runner-01' deactivated" }]);
      const after = await call('GET', '/runner/readiness', { token: proxmoxToken });
      assert.deepEqual([after.status, after.body], [403, { detail: 'Invalid token' }]);
    });

    it('re-creating a deactivated runner reactivates it with a new token; the old one stays dead', async () => {
      const r = await call('POST', '/api/runners', { body: { runner_id: 'pve-runner-01', backend: 'bare_metal', reset_cmd: 'r' } });
      assert.equal(r.status, 201);
      assert.equal(r.body.is_active, true);
      assert.equal(r.body.backend, 'bare_metal');
      assert.equal(r.body.proxmox_host, null);
      assert.notEqual(r.body.token, proxmoxToken);
      assert.equal((await call('GET', '/runner/readiness', { token: proxmoxToken })).status, 403);
      assert.equal((await call('GET', '/runner/readiness', { token: r.body.token })).status, 200);
      const rows = await database.db.select().from(auditLog).orderBy(asc(auditLog.id));
      assert.deepEqual(rows.filter((a) => a.target === 'pve-runner-01').map((a) => [a.action, a.detail]), [
        ['runner.create', { backend: 'proxmox', reactivated: false }],
        ['runner.deactivate', { source: 'api' }],
        ['runner.create', { backend: 'bare_metal', reactivated: true }],
      ]);
    });
  });

  describe('runner bearer token checks (§4.1)', () => {
    let token: string;
    beforeAll(async () => {
      token = (await call('POST', '/api/runners', { body: { runner_id: 'tok-01', backend: 'bare_metal', reset_cmd: 'r' } })).body.token;
    });

    it('missing header 422, lowercase bearer 401, unknown 403, valid 200/201', async () => {
      const missing = await call('GET', '/runner/readiness', { token: null });
      assert.deepEqual([missing.status, missing.body], [422, { detail: [{ type: 'missing', loc: ['header', 'authorization'], msg: 'Field required', input: null }] }]);
      const lower = await call('GET', '/runner/readiness', { auth: `bearer ${token}` });
      assert.deepEqual([lower.status, lower.body], [401, { detail: 'Invalid authorization header' }]);
      // `Bearer ` reaches the server as `Bearer` (HTTP strips trailing spaces): an empty token.
      for (const bad of ['wrong-token', '', token.slice(0, -1)]) {
        const r = await call('GET', '/runner/readiness', { token: bad });
        assert.deepEqual([r.status, r.body], [403, { detail: 'Invalid token' }], JSON.stringify(bad));
      }
      assert.equal((await call('POST', '/checkpoint/create', { token, body: { job_id: '1' } })).status, 201);
    });

    it('a bad token with an empty body is 403, not 422 (scenario 170); a good one with it is 422', async () => {
      assert.equal((await call('POST', '/checkpoint/create', { token: 'wrong', body: {} })).status, 403);
      assert.equal((await call('POST', '/checkpoint/create', { token, body: {} })).status, 422);
    });
  });

  describe('listing, reading, deleting', () => {
    it('lists active runners by id without tokens or secrets (scenario 66)', async () => {
      const r = await call('GET', '/api/runners');
      assert.equal(r.status, 200);
      assert.deepEqual(
        r.body.map((x: any) => x.runner_id),
        ['bm-01', 'bm-02', 'bm-03', 'pve-runner-01', 'tok-01'],
      );
      for (const item of r.body) assert.ok(!('token' in item) && !('proxmox_token_value' in item) && !('gitlab_token' in item));
    });

    it('include_inactive shows deactivated runners with is_active false (scenario 67)', async () => {
      await call('DELETE', '/api/runners/bm-03');
      assert.ok(!(await call('GET', '/api/runners')).body.some((x: any) => x.runner_id === 'bm-03'));
      const all = await call('GET', '/api/runners?include_inactive=true');
      assert.equal(all.body.find((x: any) => x.runner_id === 'bm-03')?.is_active, false);
      assert.ok(!(await call('GET', '/api/runners?include_inactive=false')).body.some((x: any) => x.runner_id === 'bm-03'));
      const bad = await call('GET', '/api/runners?include_inactive=maybe');
      assert.equal(bad.status, 422);
      assert.deepEqual(bad.body.detail[0], {
        type: 'bool_parsing',
        loc: ['query', 'include_inactive'],
        msg: 'Input should be a valid boolean, unable to interpret input',
        input: 'maybe',
      });
    });

    it('GET one: 200 without token; unknown and deactivated → 404 (scenario 69)', async () => {
      const r = await call('GET', '/api/runners/bm-01');
      assert.equal(r.status, 200);
      assert.equal(r.body.reset_cmd, '/opt/reset.sh');
      assert.ok(!('token' in r.body) && !('proxmox_token_value' in r.body));
      assert.deepEqual(await call('GET', '/api/runners/nope').then((x) => [x.status, x.body]), [404, { detail: 'Runner not found' }]);
      assert.equal((await call('GET', '/api/runners/bm-03')).status, 404);
    });

    it('DELETE: unknown → 404, second delete → 404 (scenario 70)', async () => {
      assert.deepEqual(await call('DELETE', '/api/runners/nope').then((x) => [x.status, x.body]), [404, { detail: 'Runner not found' }]);
      assert.equal((await call('DELETE', '/api/runners/bm-03')).status, 404);
    });
  });

  describe('token rotation and drain', () => {
    it('rotate-token issues a new token once; the old one is refused at once', async () => {
      const created = await call('POST', '/api/runners', { body: { runner_id: 'rot-01', backend: 'bare_metal', reset_cmd: 'r' } });
      const old = created.body.token;
      const r = await call('POST', '/api/runners/rot-01/rotate-token');
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.match(r.body.token, /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(r.body.token, old);
      assert.equal((await call('GET', '/runner/readiness', { token: old })).status, 403);
      assert.equal((await call('GET', '/runner/readiness', { token: r.body.token })).status, 200);
      assert.equal((await call('GET', '/api/runners/rot-01')).body.token, undefined, 'never shown again');
      assert.equal((await call('POST', '/api/runners/nope/rotate-token')).status, 404);
    });

    it('drain and undrain flip the flag; unknown runners → 404', async () => {
      const d = await call('POST', '/api/runners/bm-01/drain');
      assert.deepEqual([d.status, d.body.drained], [200, true]);
      assert.equal((await call('GET', '/api/runners/bm-01')).body.drained, true);
      const u = await call('POST', '/api/runners/bm-01/undrain');
      assert.deepEqual([u.status, u.body.drained], [200, false]);
      assert.equal((await call('POST', '/api/runners/nope/drain')).status, 404);
      assert.equal((await call('POST', '/api/runners/bm-03/undrain')).status, 404, 'inactive runners cannot be drained');
    });

    it('every admin change is audited, and no audit row holds a token', async () => {
      const rows = await database.db.select().from(auditLog).orderBy(asc(auditLog.id));
      const actions = rows.map((r) => `${r.action} ${r.target}`);
      for (const expected of ['runner.create rot-01', 'runner.rotate_token rot-01', 'runner.drain bm-01', 'runner.undrain bm-01', 'runner.deactivate bm-03']) {
        assert.ok(actions.includes(expected), expected);
      }
      assert.ok(rows.every((r) => r.actor === 'admin'));
      assert.ok(!JSON.stringify(rows).match(/[A-Za-z0-9_-]{43}/), 'no 43-character token in the audit log');
    });
  });
});
