// IPC framing between the CLI and the agent (wire-compatible with e2epool): a 4-byte unsigned
// big-endian length, then that many bytes of UTF-8 JSON. Both sides refuse frames over 1 MiB.

export const MAX_FRAME_BYTES = 1024 * 1024;
const HEADER_BYTES = 4;

export class FrameTooLargeError extends Error {
  constructor(readonly length: number, readonly max: number) {
    super(`IPC message of ${length} bytes exceeds maximum of ${max} bytes`);
    this.name = 'FrameTooLargeError';
  }
}

/** Encodes one JSON value as a frame; throws FrameTooLargeError rather than send what the peer refuses. */
export function encodeFrame(value: unknown, maxBytes = MAX_FRAME_BYTES): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  if (body.length > maxBytes) throw new FrameTooLargeError(body.length, maxBytes);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

export type DecodedFrame =
  | { ok: true; value: unknown }
  | { ok: false; error: string; fatal: boolean };

/**
 * Incremental decoder: feed chunks as they arrive, get back every complete frame. A frame whose
 * body is not JSON is reported and skipped (the length still delimits it); an oversize header is
 * fatal because nothing after it can be trusted, so the decoder then ignores further input.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed = false;

  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  /** Bytes received but not yet part of a complete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  get isFailed(): boolean {
    return this.failed;
  }

  push(chunk: Uint8Array): DecodedFrame[] {
    if (this.failed || chunk.length === 0) return [];
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.length;
    const out: DecodedFrame[] = [];
    let data = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    let offset = 0;
    while (data.length - offset >= HEADER_BYTES) {
      const length = data.readUInt32BE(offset);
      if (length > this.maxBytes) {
        out.push({ ok: false, error: new FrameTooLargeError(length, this.maxBytes).message, fatal: true });
        this.failed = true;
        this.chunks = [];
        this.buffered = 0;
        return out;
      }
      if (data.length - offset - HEADER_BYTES < length) break;
      const body = data.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
      offset += HEADER_BYTES + length;
      out.push(parseBody(body));
    }
    data = offset === 0 ? data : data.subarray(offset);
    // Copy the remainder so a large chunk is not kept alive by a small unread tail.
    this.chunks = data.length ? [offset === 0 ? data : Buffer.from(data)] : [];
    this.buffered = data.length;
    return out;
  }
}

function parseBody(body: Buffer): DecodedFrame {
  const text = new TextDecoder('utf-8', { fatal: true });
  let json: string;
  try {
    json = text.decode(body);
  } catch {
    return { ok: false, error: 'IPC message is not valid UTF-8', fatal: false };
  }
  try {
    return { ok: true, value: JSON.parse(json) };
  } catch {
    return { ok: false, error: 'IPC message is not valid JSON', fatal: false };
  }
}
