/**
 * ttrpc framing: 10-byte big-endian header (u32 payload length, u32 stream id,
 * u8 type, u8 flags) followed by the payload.
 */

export const MESSAGE_TYPE = { Request: 1, Response: 2, Data: 3 } as const;
export const HEADER_LENGTH = 10;
/** Default maximum payload size, 4 MiB, as in containerd/ttrpc. */
export const DEFAULT_MAX_MESSAGE_SIZE = 4 << 20;

export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  payload: Uint8Array;
  /** Set (to the declared length) when the payload was over the limit and is discarded. */
  oversized?: number;
}

const EMPTY = Buffer.alloc(0);

/** Write a header for a payload of `length` bytes at `buf[off..off+10)`. */
export function writeHeader(buf: Uint8Array, off: number, length: number, streamId: number, type: number, flags: number): void {
  buf[off] = length >>> 24; buf[off + 1] = length >>> 16; buf[off + 2] = length >>> 8; buf[off + 3] = length;
  buf[off + 4] = streamId >>> 24; buf[off + 5] = streamId >>> 16; buf[off + 6] = streamId >>> 8; buf[off + 7] = streamId;
  buf[off + 8] = type;
  buf[off + 9] = flags;
}

/** Header + payload in one new buffer. */
export function encodeFrame(streamId: number, type: number, flags: number, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LENGTH + payload.length);
  writeHeader(buf, 0, payload.length, streamId, type, flags);
  buf.set(payload, HEADER_LENGTH);
  return buf;
}

/**
 * Fill in the header of a buffer whose first HEADER_LENGTH bytes were reserved
 * (see encodeRequest/encodeResponse `reserve`), turning it into a frame in place.
 */
export function sealFrame(buf: Buffer, streamId: number, type: number, flags: number): Buffer {
  writeHeader(buf, 0, buf.length - HEADER_LENGTH, streamId, type, flags);
  return buf;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/**
 * Incremental frame parser. push() accepts arbitrary chunk boundaries and
 * returns every frame completed by that chunk. Complete frames inside a chunk
 * are returned as views (no copy); only a frame split across chunks is copied,
 * once, into a buffer of its exact size. A frame whose declared length exceeds
 * the limit is returned immediately (empty payload, `oversized` = declared
 * length) and its payload bytes are then skipped as they arrive.
 */
export class FrameDecoder {
  readonly maxMessageSize: number;
  #hdr = Buffer.alloc(HEADER_LENGTH);
  #hdrFill = 0;
  #body: Buffer | null = null;
  #bodyFill = 0;
  #streamId = 0;
  #type = 0;
  #flags = 0;
  #discard = 0;

  constructor(maxMessageSize: number = DEFAULT_MAX_MESSAGE_SIZE) {
    this.maxMessageSize = maxMessageSize;
  }

  /** Bytes of an incomplete frame received so far (header included). */
  get pending(): number {
    return this.#body !== null ? HEADER_LENGTH + this.#bodyFill : this.#hdrFill;
  }

  /** Payload bytes of an oversized frame still to be skipped. */
  get discarding(): number {
    return this.#discard;
  }

  push(chunk: Uint8Array): Frame[] {
    const out: Frame[] = [];
    const n = chunk.length;
    let off = 0;
    while (off < n) {
      if (this.#discard > 0) {
        const k = Math.min(this.#discard, n - off);
        this.#discard -= k;
        off += k;
        continue;
      }
      const body = this.#body;
      if (body !== null) {
        const k = Math.min(body.length - this.#bodyFill, n - off);
        body.set(chunk.subarray(off, off + k), this.#bodyFill);
        this.#bodyFill += k;
        off += k;
        if (this.#bodyFill === body.length) {
          out.push({ streamId: this.#streamId, type: this.#type, flags: this.#flags, payload: body });
          this.#body = null;
          this.#bodyFill = 0;
        }
        continue;
      }
      let h: Uint8Array, ho: number;
      if (this.#hdrFill > 0 || n - off < HEADER_LENGTH) {
        const k = Math.min(HEADER_LENGTH - this.#hdrFill, n - off);
        this.#hdr.set(chunk.subarray(off, off + k), this.#hdrFill);
        this.#hdrFill += k;
        off += k;
        if (this.#hdrFill < HEADER_LENGTH) break;
        this.#hdrFill = 0;
        h = this.#hdr; ho = 0;
      } else {
        h = chunk; ho = off;
        off += HEADER_LENGTH;
      }
      const length = readU32(h, ho), streamId = readU32(h, ho + 4), type = h[ho + 8], flags = h[ho + 9];
      if (length > this.maxMessageSize) {
        out.push({ streamId, type, flags, payload: EMPTY, oversized: length });
        this.#discard = length;
      } else if (n - off >= length) {
        out.push({ streamId, type, flags, payload: length === 0 ? EMPTY : chunk.subarray(off, off + length) });
        off += length;
      } else {
        const b = Buffer.allocUnsafe(length);
        b.set(chunk.subarray(off), 0);
        this.#bodyFill = n - off;
        off = n;
        this.#body = b;
        this.#streamId = streamId; this.#type = type; this.#flags = flags;
      }
    }
    return out;
  }
}
