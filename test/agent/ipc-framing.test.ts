import { test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder, FrameTooLargeError, MAX_FRAME_BYTES } from '../../agent/ipc-framing.js';

/** Splits a buffer at the given cut points (any order, duplicates allowed). */
function chunk(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

test('frame is a 4-byte big-endian length followed by UTF-8 JSON', () => {
  const frame = encodeFrame({ type: 'ping', payload: { name: 'é' } });
  const body = Buffer.from(JSON.stringify({ type: 'ping', payload: { name: 'é' } }), 'utf8');
  assert.equal(frame.readUInt32BE(0), body.length);
  assert.deepEqual(frame.subarray(4), body);
  assert.equal(frame[0], 0, 'big-endian: high byte first');
});

test('round trip of arbitrary JSON objects under any chunking', () => {
  fc.assert(
    fc.property(
      fc.array(fc.dictionary(fc.string(), fc.jsonValue()), { minLength: 1, maxLength: 5 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (values, cuts) => {
        const stream = Buffer.concat(values.map((v) => encodeFrame(v)));
        const decoder = new FrameDecoder();
        const decoded = chunk(stream, cuts).flatMap((c) => decoder.push(c));
        assert.equal(decoded.length, values.length);
        decoded.forEach((d, i) => {
          assert.ok(d.ok);
          // JSON normalises -0 to 0; compare through JSON as the peer would see it.
          assert.deepEqual(d.value, JSON.parse(JSON.stringify(values[i])));
        });
        assert.equal(decoder.pendingBytes, 0);
      },
    ),
    { numRuns: 200 },
  );
});

test('arbitrary byte streams in arbitrary chunks never throw and never buffer past the limit', () => {
  const max = 64;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(), { maxLength: 30 }), (bytes, cuts) => {
      const decoder = new FrameDecoder(max);
      for (const c of chunk(Buffer.from(bytes), cuts)) {
        const frames = decoder.push(c);
        for (const f of frames) if (!f.ok) assert.equal(typeof f.error, 'string');
        assert.ok(decoder.pendingBytes < max + 4, `holds ${decoder.pendingBytes} bytes`);
      }
    }),
    { numRuns: 500 },
  );
});

test('valid frames with garbage bodies are reported, not fatal; the next frame still decodes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 50 }), (garbage) => {
      const body = Buffer.from(garbage);
      let isJson = true;
      try {
        JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
      } catch {
        isJson = false;
      }
      fc.pre(!isJson);
      const header = Buffer.alloc(4);
      header.writeUInt32BE(body.length);
      const decoder = new FrameDecoder();
      const frames = decoder.push(Buffer.concat([header, body, encodeFrame({ ok: 1 })]));
      assert.equal(frames.length, 2);
      assert.equal(frames[0]!.ok, false);
      assert.deepEqual(frames[1], { ok: true, value: { ok: 1 } });
    }),
  );
});

test('a header announcing 1 MiB + 1 is refused with "exceeds maximum" and the decoder stops', () => {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(MAX_FRAME_BYTES + 1);
  const decoder = new FrameDecoder();
  const frames = decoder.push(header);
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.ok, false);
  assert.match((frames[0] as { error: string }).error, /exceeds maximum/);
  assert.ok(decoder.isFailed);
  assert.deepEqual(decoder.push(encodeFrame({ a: 1 })), []);
});

test('exactly 1 MiB is accepted; the encoder refuses more', () => {
  const filler = 'x'.repeat(MAX_FRAME_BYTES - 2);
  const frame = encodeFrame(filler); // JSON string adds two quotes
  assert.equal(frame.readUInt32BE(0), MAX_FRAME_BYTES);
  const decoded = new FrameDecoder().push(frame);
  assert.equal(decoded.length, 1);
  assert.ok(decoded[0]!.ok);
  assert.throws(() => encodeFrame(`${filler}y`), FrameTooLargeError);
});

test('partial frames wait for more bytes', () => {
  const frame = encodeFrame({ hello: 'world' });
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(frame.subarray(0, 3)), []);
  assert.deepEqual(decoder.push(frame.subarray(3, 10)), []);
  assert.deepEqual(decoder.push(frame.subarray(10)), [{ ok: true, value: { hello: 'world' } }]);
});
