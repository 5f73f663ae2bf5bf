// Envelope parsing and payload validation of the agent protocol: exact answers, and totality for
// arbitrary input.
import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import fc from 'fast-check';
import {
  createPayloadSchema,
  errorEnvelope,
  finalizePayloadSchema,
  helloPayloadSchema,
  MAX_FRAME_BYTES,
  okEnvelope,
  parseCommandReply,
  parseFrame,
  statusPayloadSchema,
  validatePayload,
} from '../../src/gateway/envelope.js';

describe('parseFrame', () => {
  it('classifies requests, replies and invalid frames', () => {
    assert.deepEqual(parseFrame('{"id":"p1","type":"ping","payload":{}}'), { kind: 'request', id: 'p1', type: 'ping', payload: {} });
    assert.deepEqual(parseFrame('{"id":"p1","type":"create"}'), { kind: 'request', id: 'p1', type: 'create', payload: {} });
    assert.deepEqual(parseFrame(Buffer.from('{"id":"p1","type":"status","payload":null}')), { kind: 'request', id: 'p1', type: 'status', payload: {} });
    assert.deepEqual(parseFrame('{"id":"c1","status":"ok","data":{"exit_code":0}}'), {
      kind: 'reply',
      id: 'c1',
      status: 'ok',
      data: { exit_code: 0 },
      error: undefined,
    });
    // Any object with a status key is a reply, even with a type (e2epool's discrimination rule).
    assert.equal(parseFrame('{"id":"c1","type":"ping","status":"x"}').kind, 'reply');
    assert.equal(parseFrame('{"status":"ok"}').kind, 'stray-reply');
    assert.equal(parseFrame('{"id":5,"status":"ok"}').kind, 'stray-reply');
  });

  it('gives clear details for malformed frames', () => {
    const detail = (f: string | Buffer) => {
      const r = parseFrame(f);
      assert.equal(r.kind, 'invalid');
      return r.kind === 'invalid' ? [r.id, r.detail] : [];
    };
    assert.deepEqual(detail('{'), ['', 'Frame is not valid JSON']);
    assert.deepEqual(detail(''), ['', 'Frame is not valid JSON']);
    assert.deepEqual(detail('42'), ['', 'Frame must be a JSON object']);
    assert.deepEqual(detail('{"type":"ping"}'), ['', 'id is required']);
    assert.deepEqual(detail('{"id":7,"type":"ping"}'), ['', 'id must be a string of 1-256 characters']);
    assert.deepEqual(detail(`{"id":"${'x'.repeat(257)}","type":"ping"}`), ['', 'id must be a string of 1-256 characters']);
    assert.deepEqual(detail('{"id":"a"}'), ['a', 'type is required']);
    assert.deepEqual(detail('{"id":"a","type":3}'), ['a', 'type must be a string']);
    assert.deepEqual(detail('{"id":"a","type":"exec"}'), ['a', 'Unknown request type "exec"; expected one of create, finalize, status, ping, hello']);
    assert.deepEqual(detail('{"id":"a","type":"ping","payload":"x"}'), ['a', 'payload must be an object']);
    assert.deepEqual(detail(Buffer.from([0xc3, 0x28])), ['', 'Frame is not valid UTF-8']);
    assert.deepEqual(detail('x'.repeat(MAX_FRAME_BYTES + 1)), ['', `Frame exceeds the maximum size of ${MAX_FRAME_BYTES} bytes`]);
    // The size limit counts bytes, not characters.
    assert.equal(parseFrame('é'.repeat(MAX_FRAME_BYTES / 2 + 1)).kind, 'invalid');
  });

  it('is total: arbitrary strings and bytes never throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.json(), fc.uint8Array().map((a) => Buffer.from(a))), (input) => {
        const r = parseFrame(input);
        assert.ok(['request', 'reply', 'stray-reply', 'invalid'].includes(r.kind));
        if (r.kind === 'invalid') assert.ok(r.detail.length > 0 && r.detail.length < 200);
      }),
      { numRuns: 2000 },
    );
  });

  it('builds envelopes with all four keys', () => {
    assert.deepEqual(JSON.parse(okEnvelope('a', { pong: true })), { id: 'a', status: 'ok', data: { pong: true }, error: null });
    assert.deepEqual(JSON.parse(okEnvelope('a', undefined)), { id: 'a', status: 'ok', data: null, error: null });
    assert.deepEqual(JSON.parse(errorEnvelope('', 400, 'x')), { id: '', status: 'error', data: null, error: { code: 400, detail: 'x' } });
  });
});

describe('payload validation', () => {
  // JSON round trip: absent and undefined keys compare alike.
  const check = (schema: Parameters<typeof validatePayload>[0], payload: Record<string, unknown>) =>
    JSON.parse(JSON.stringify(validatePayload(schema, payload)));

  it('create', () => {
    assert.deepEqual(check(createPayloadSchema, { job_id: '42', caller: 'ci', extra: 1 }), { ok: true, value: { job_id: '42', caller: 'ci' } });
    assert.deepEqual(check(createPayloadSchema, { job_id: 42, project_id: 7 }), { ok: true, value: { job_id: '42', project_id: '7' } });
    assert.deepEqual(check(createPayloadSchema, { job_id: '1', caller: null }), { ok: true, value: { job_id: '1' } });
    for (const bad of [{}, { job_id: '' }, { job_id: null }, { job_id: [] }, { job_id: -1 }, { job_id: 1.5 }]) {
      assert.deepEqual(check(createPayloadSchema, bad), { ok: false, detail: 'job_id is required' }, JSON.stringify(bad));
    }
    assert.deepEqual(check(createPayloadSchema, { job_id: 'x'.repeat(256) }), { ok: false, detail: 'job_id must be at most 255 characters' });
    assert.deepEqual(check(createPayloadSchema, { job_id: '1', caller: 5 }), { ok: false, detail: 'caller must be a string' });
  });

  it('finalize', () => {
    assert.deepEqual(check(finalizePayloadSchema, { checkpoint_name: 'n', status: 'success' }), {
      ok: true,
      value: { checkpoint_name: 'n', status: 'success', source: 'agent' },
    });
    assert.deepEqual(check(finalizePayloadSchema, { checkpoint_name: 'n', status: 'failed', source: 'hook' }), {
      ok: true,
      value: { checkpoint_name: 'n', status: 'failure', source: 'hook' },
    });
    for (const bad of [{}, { checkpoint_name: 'n' }, { status: 'success' }, { checkpoint_name: '', status: 'success' }, { checkpoint_name: 'n', status: '' }]) {
      assert.deepEqual(check(finalizePayloadSchema, bad), { ok: false, detail: 'checkpoint_name and status are required' }, JSON.stringify(bad));
    }
    assert.deepEqual(check(finalizePayloadSchema, { checkpoint_name: 'n', status: 'bogus' }), { ok: false, detail: 'status must be one of success, failure, canceled' });
    assert.deepEqual(check(finalizePayloadSchema, { checkpoint_name: 'n', status: 'success', source: 'bad source!' }), {
      ok: false,
      detail: 'source must contain only letters, digits, _ . -',
    });
    assert.deepEqual(check(finalizePayloadSchema, { checkpoint_name: 'n', status: 'success', source: 's'.repeat(51) }), {
      ok: false,
      detail: 'source must be at most 50 characters',
    });
  });

  it('status and hello', () => {
    assert.deepEqual(check(statusPayloadSchema, {}), { ok: false, detail: 'checkpoint_name is required' });
    assert.deepEqual(check(statusPayloadSchema, { checkpoint_name: 'job-1-2-abcdef01' }), { ok: true, value: { checkpoint_name: 'job-1-2-abcdef01' } });
    assert.deepEqual(check(helloPayloadSchema, { protocol: 2, commands: ['reset', 'reset', 'pause_runner'] }), {
      ok: true,
      value: { protocol: 2, commands: ['reset', 'pause_runner'] },
    });
    assert.deepEqual(check(helloPayloadSchema, { protocol: 2 }), { ok: true, value: { protocol: 2, commands: [] } });
    assert.deepEqual(check(helloPayloadSchema, {}), { ok: false, detail: 'protocol must be an integer >= 2' });
    assert.equal(check(helloPayloadSchema, { protocol: 2, commands: ['rm -rf /'] }).ok, false);
    assert.equal(check(helloPayloadSchema, { protocol: 2, commands: 'reset' }).ok, false);
  });
});

describe('parseCommandReply', () => {
  it('reads exit code and output; success only for ok + exit 0', () => {
    assert.deepEqual(parseCommandReply({ status: 'ok', data: { exit_code: 0, stdout: 'a', stderr: '' }, error: undefined }), {
      ok: true,
      exitCode: 0,
      stdout: 'a',
      stderr: '',
      agentError: null,
    });
    assert.equal(parseCommandReply({ status: 'error', data: { exit_code: 2, stdout: '', stderr: 'x' }, error: null }).ok, false);
    assert.equal(parseCommandReply({ status: 'ok', data: { exit_code: 1 }, error: null }).ok, false);
    assert.equal(parseCommandReply({ status: 'error', data: { exit_code: 0 }, error: null }).ok, false);
    assert.deepEqual(parseCommandReply({ status: 'error', data: null, error: { code: 409, detail: 'id reused' } }), {
      ok: false,
      exitCode: -1,
      stdout: '',
      stderr: 'id reused',
      agentError: { code: 409, detail: 'id reused' },
    });
    assert.equal(parseCommandReply({ status: 'ok', data: 'nonsense', error: undefined }).exitCode, -1);
  });
});
