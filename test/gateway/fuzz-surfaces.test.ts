// Property tests over every surface that takes input from outside, with fixed seeds and bounded
// runs: HTTP routes (bodies, headers, path parameters), agent WebSocket frames, IPC framing and the
// inventory loader. No input may produce a 5xx, a crash or an unhandled rejection; every rejection
// is a 4xx with a detail; and the controller still answers a valid request afterwards.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import fc from 'fast-check';
import { parseFrame } from '../../src/gateway/envelope.js';
import { FrameDecoder } from '../../agent/ipc-framing.js';
import { InventoryError, parseInventory } from '../../src/inventory/inventory-file.js';
import { createPgliteDatabase, type TestDatabase } from '../helpers/databases.js';
import { startDevServerEnv } from '../helpers/temporal.js';
import { ADMIN_TOKEN, startApiHarness, type ApiHarness } from '../helpers/api-harness.js';

let env: TestWorkflowEnvironment;
let database: TestDatabase;
let h: ApiHarness;
let runnerToken: string;
const counts: Record<string, number> = {};
let unhandled = 0;
const onUnhandled = () => void (unhandled += 1);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  [env, database] = await Promise.all([startDevServerEnv(), createPgliteDatabase()]);
  h = await startApiHarness(env, database);
  runnerToken = await h.registerRunner('fuzz-runner');
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await h?.close();
  await env?.teardown();
  await database?.drop();
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`fuzz: ${total} generated inputs ${JSON.stringify(counts)}`);
});

const ROUTES: Array<[string, string]> = [
  ['GET', '/healthz'], ['GET', '/health'],
  ['POST', '/checkpoint/create'], ['POST', '/checkpoint/finalize'], ['GET', '/checkpoint/status/:name'], ['GET', '/runner/readiness'],
  ['POST', '/api/runners'], ['GET', '/api/runners'], ['GET', '/api/runners/:id'], ['DELETE', '/api/runners/:id'],
  ['POST', '/api/runners/:id/rotate-token'], ['POST', '/api/runners/:id/rotate-agent-token'], ['POST', '/api/runners/:id/drain'], ['POST', '/api/runners/:id/undrain'],
  ['GET', '/api/checkpoints'], ['GET', '/api/checkpoints/:name'], ['POST', '/api/checkpoints/:name/retry-reset'], ['POST', '/api/checkpoints/:name/release'],
  ['GET', '/api/admin/maintenance'], ['POST', '/api/admin/maintenance'],
];

const pathParam = fc.oneof(
  fc.constantFrom('fuzz-runner', 'job-1-1700000000-abcdef12', '..', '%2e%2e', '%00', 'a'.repeat(300), '%F0%9F%92%A9', '%ZZ'),
  fc.stringMatching(/^[A-Za-z0-9._~-]{1,40}$/),
);
const authorization = fc.oneof(
  fc.constant(undefined),
  fc.constant(`Bearer ${ADMIN_TOKEN}`),
  fc.constant('__runner__'),
  fc.constantFrom('Bearer', 'bearer x', 'Basic Zm9vOmJhcg==', 'Bearer \u00e9\u00e8', ''),
  fc.string({ maxLength: 60 }).map((s) => `Bearer ${s.replace(/[\r\n]/g, '')}`),
);
const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record({ runner_id: fc.oneof(fc.constant('fuzz-runner'), fc.string({ maxLength: 300 })), job_id: fc.oneof(fc.string({ maxLength: 80 }), fc.integer(), fc.constant(null)) }, { requiredKeys: [] }),
  fc.record({ checkpoint_name: fc.string({ maxLength: 80 }), status: fc.oneof(fc.constantFrom('success', 'failure', 'canceled', 'failed'), fc.string()), source: fc.string({ maxLength: 80 }) }, { requiredKeys: [] }),
  fc.record({ runner_id: fc.string({ maxLength: 40 }), backend: fc.oneof(fc.constantFrom('bare_metal', 'proxmox'), fc.string()), reset_cmd: fc.string({ maxLength: 100 }), gitlab_url: fc.string({ maxLength: 60 }), tags: fc.array(fc.string()), proxmox_vmid: fc.oneof(fc.integer(), fc.string()) }, { requiredKeys: [] }),
  fc.record({ enabled: fc.oneof(fc.boolean(), fc.string()), message: fc.string({ maxLength: 300 }), deleteSnapshot: fc.oneof(fc.boolean(), fc.string(), fc.constant(null)) }, { requiredKeys: [] }),
);
const rawBody = fc.oneof(
  jsonBody.map((v) => ({ text: JSON.stringify(v) ?? 'null', type: 'application/json' })),
  fc.string({ maxLength: 200 }).map((text) => ({ text, type: 'application/json' })),
  fc.string({ maxLength: 100 }).map((text) => ({ text, type: fc.sample(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', ''), 1)[0]! })),
  fc.constant(null),
);

describe('fuzzing every surface', { timeout: 600_000 }, () => {
  it('HTTP routes: never a 5xx, every rejection a 4xx with a detail, and a valid request works afterwards', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), fc.array(pathParam, { minLength: 2, maxLength: 2 }), authorization, rawBody, fc.stringMatching(/^[a-z_]{0,12}=[^&#]{0,20}$/), async ([method, template], [a, b], auth, body, query) => {
        runs += 1;
        const path = template.replace(':name', a!).replace(':id', b!);
        const headers: Record<string, string> = {};
        if (auth !== undefined) headers.authorization = auth === '__runner__' ? `Bearer ${runnerToken}` : auth;
        if (body && body.type) headers['content-type'] = body.type;
        const res = await fetch(`${h.api.base}${path}?${query}`, { method, headers, body: body && method !== 'GET' ? body.text : undefined });
        const text = await res.text();
        assert.ok(res.status < 500 || (res.status === 503 && /maintenance|not ready|not configured|Controller did not answer/i.test(text)), `${method} ${path} → ${res.status} ${text.slice(0, 200)}`);
        if (res.status >= 400) {
          const parsed = JSON.parse(text) as { detail?: unknown };
          assert.ok(parsed.detail !== undefined, `${method} ${path} → ${res.status} without a detail: ${text.slice(0, 200)}`);
        }
      }),
      { numRuns: 8_000, seed: 20261201 },
    );
    counts.http = runs;
    // Undo whatever the fuzzer switched on, then a valid call still answers.
    await fetch(`${h.api.base}/api/admin/maintenance`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ enabled: false }) });
    assert.equal((await fetch(`${h.api.base}/healthz`)).status, 200);
    // The fuzzer may have rotated or deleted its runner: a new one works from end to end.
    const fresh = await h.registerRunner('fuzz-after');
    const readiness = await fetch(`${h.api.base}/runner/readiness`, { headers: { authorization: `Bearer ${fresh}` } });
    assert.ok([200, 503].includes(readiness.status), `readiness answered ${readiness.status}`);
    assert.equal(unhandled, 0, 'no unhandled rejection');
  });

  it('agent WebSocket frames: every input is classified, never thrown', () => {
    let runs = 0;
    const frame = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.string({ maxLength: 300 }),
      fc.record({ id: fc.oneof(fc.string({ maxLength: 300 }), fc.integer(), fc.constant(undefined)), type: fc.oneof(fc.constantFrom('create', 'finalize', 'status', 'ping', 'hello', 'toString', '__proto__'), fc.string(), fc.integer()), payload: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(undefined)), status: fc.oneof(fc.constant(undefined), fc.string()) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    );
    fc.assert(
      fc.property(frame, (data) => {
        runs += 1;
        const parsed = parseFrame(data);
        assert.ok(['request', 'reply', 'stray-reply', 'invalid'].includes(parsed.kind));
        if (parsed.kind === 'invalid') assert.equal(typeof parsed.detail, 'string');
      }),
      { numRuns: 40_000, seed: 20261202 },
    );
    counts.websocketFrames = runs;
  });

  it('IPC framing: arbitrary bytes in arbitrary chunks decode to frames or one fatal error', () => {
    let runs = 0;
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        runs += 1;
        const decoder = new FrameDecoder(1024);
        for (const chunk of chunks) {
          for (const out of decoder.push(chunk)) if (!out.ok) assert.equal(typeof out.error, 'string');
        }
      }),
      { numRuns: 30_000, seed: 20261203 },
    );
    counts.ipcFrames = runs;
  });

  it('inventory loader: any text loads or fails with InventoryError naming problems, never the token', () => {
    let runs = 0;
    const entry = fc.record({ runner_id: fc.oneof(fc.string({ maxLength: 20 }), fc.integer()), backend: fc.oneof(fc.constantFrom('bare_metal', 'proxmox'), fc.string({ maxLength: 8 })), token: fc.constantFrom('fuzz-inventory-secret-0123456789', 'short'), reset_cmd: fc.string({ maxLength: 20 }), proxmox_vmid: fc.oneof(fc.integer(), fc.string({ maxLength: 5 })), gitlab_url: fc.string({ maxLength: 30 }), tags: fc.oneof(fc.array(fc.string({ maxLength: 5 })), fc.string()) }, { requiredKeys: [] });
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.array(entry, { maxLength: 4 }).map((runners) => `runners:\n${runners.map((r) => `  - ${JSON.stringify(r)}`).join('\n')}\n`));
    fc.assert(
      fc.property(text, (yaml) => {
        runs += 1;
        try {
          parseInventory(yaml, { env: {} });
        } catch (err) {
          assert.ok(err instanceof InventoryError, `not an InventoryError: ${String(err)}`);
          assert.ok(!err.message.includes('fuzz-inventory-secret'), 'a token in a message');
        }
      }),
      { numRuns: 25_000, seed: 20261204 },
    );
    counts.inventory = runs;
  });
});
