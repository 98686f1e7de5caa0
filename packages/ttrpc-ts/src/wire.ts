/**
 * Hand-written protobuf codec for the four ttrpc envelope messages
 * (package ttrpc: Request, KeyValue, Response, google.rpc.Status + Any).
 * proto3 semantics: default values are omitted when encoding, unknown fields
 * are skipped when decoding, the last occurrence of a singular field wins.
 * Decoded `bytes` fields are views (subarray) into the input, not copies.
 */

export interface KeyValue { key: string; value: string }

export interface RequestEnvelope {
  service: string;
  method: string;
  payload: Uint8Array;
  /** Remaining time in nanoseconds; 0/absent = no deadline. */
  timeoutNano?: number;
  metadata?: KeyValue[];
}

/** google.protobuf.Any */
export interface AnyEnvelope { typeUrl: string; value: Uint8Array }

/** google.rpc.Status */
export interface StatusEnvelope { code: number; message: string; details?: AnyEnvelope[] }

export interface ResponseEnvelope {
  /** Absent on success (what Go ttrpc 1.x servers send); code 0 means success too. */
  status?: StatusEnvelope;
  payload: Uint8Array;
}

const EMPTY = new Uint8Array(0);

// ---------------------------------------------------------------- encoding

function varintSize(v: number): number {
  if (v < 0) return 10;
  let n = 1;
  while (v >= 128) { v = Math.floor(v / 128); n++; }
  return n;
}

function writeVarint(buf: Buffer, off: number, v: number): number {
  if (v < 0) {
    // int64/int32 negatives: 64-bit two's complement, always 10 bytes.
    let b = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 9; i++) { buf[off++] = Number(b & 0x7fn) | 0x80; b >>= 7n; }
    buf[off++] = Number(b);
    return off;
  }
  while (v >= 128) { buf[off++] = (v % 128) | 0x80; v = Math.floor(v / 128); }
  buf[off++] = v;
  return off;
}

/** Size of a length-delimited field with a one-byte tag. */
function ldSize(len: number): number { return 1 + varintSize(len) + len; }

function writeBytesField(buf: Buffer, off: number, tag: number, data: Uint8Array): number {
  buf[off++] = tag;
  off = writeVarint(buf, off, data.length);
  buf.set(data, off);
  return off + data.length;
}

function writeStringField(buf: Buffer, off: number, tag: number, s: string, byteLen: number): number {
  buf[off++] = tag;
  off = writeVarint(buf, off, byteLen);
  return off + buf.write(s, off, byteLen, 'utf8');
}

function toInt(v: number | undefined, what: string): number {
  if (v === undefined) return 0;
  if (!Number.isFinite(v)) throw new RangeError(`ttrpc: ${what} must be finite`);
  return Math.trunc(v);
}

function kvSize(kv: KeyValue): number {
  const k = Buffer.byteLength(kv.key), v = Buffer.byteLength(kv.value);
  return (k ? ldSize(k) : 0) + (v ? ldSize(v) : 0);
}

/**
 * Encode a Request. `reserve` leading bytes are left uninitialised at the
 * start of the returned buffer (room for a frame header, avoiding a copy).
 */
export function encodeRequest(req: RequestEnvelope, reserve = 0): Buffer {
  const sLen = Buffer.byteLength(req.service), mLen = Buffer.byteLength(req.method);
  const timeout = toInt(req.timeoutNano, 'timeoutNano');
  const md = req.metadata;
  let size = (sLen ? ldSize(sLen) : 0) + (mLen ? ldSize(mLen) : 0) + (req.payload.length ? ldSize(req.payload.length) : 0);
  if (timeout !== 0) size += 1 + varintSize(timeout);
  if (md) for (const kv of md) size += ldSize(kvSize(kv));

  const buf = Buffer.allocUnsafe(reserve + size);
  let off = reserve;
  if (sLen) off = writeStringField(buf, off, 0x0a, req.service, sLen);
  if (mLen) off = writeStringField(buf, off, 0x12, req.method, mLen);
  if (req.payload.length) off = writeBytesField(buf, off, 0x1a, req.payload);
  if (timeout !== 0) { buf[off++] = 0x20; off = writeVarint(buf, off, timeout); }
  if (md) {
    for (const kv of md) {
      buf[off++] = 0x2a;
      off = writeVarint(buf, off, kvSize(kv));
      const k = Buffer.byteLength(kv.key), v = Buffer.byteLength(kv.value);
      if (k) off = writeStringField(buf, off, 0x0a, kv.key, k);
      if (v) off = writeStringField(buf, off, 0x12, kv.value, v);
    }
  }
  return buf;
}

function anySize(a: AnyEnvelope): number {
  const t = Buffer.byteLength(a.typeUrl);
  return (t ? ldSize(t) : 0) + (a.value.length ? ldSize(a.value.length) : 0);
}

function statusSize(st: StatusEnvelope, msgLen: number): number {
  const code = toInt(st.code, 'status.code') | 0;
  let size = (code !== 0 ? 1 + varintSize(code) : 0) + (msgLen ? ldSize(msgLen) : 0);
  if (st.details) for (const d of st.details) size += ldSize(anySize(d));
  return size;
}

/** Encode a Response; `reserve` as for encodeRequest. Success with no payload encodes to zero bytes. */
export function encodeResponse(res: ResponseEnvelope, reserve = 0): Buffer {
  const st = res.status;
  const msgLen = st ? Buffer.byteLength(st.message) : 0;
  const stSize = st ? statusSize(st, msgLen) : 0;
  const size = (st ? ldSize(stSize) : 0) + (res.payload.length ? ldSize(res.payload.length) : 0);
  const buf = Buffer.allocUnsafe(reserve + size);
  let off = reserve;
  if (st) {
    buf[off++] = 0x0a;
    off = writeVarint(buf, off, stSize);
    const code = toInt(st.code, 'status.code') | 0;
    if (code !== 0) { buf[off++] = 0x08; off = writeVarint(buf, off, code); }
    if (msgLen) off = writeStringField(buf, off, 0x12, st.message, msgLen);
    if (st.details) {
      for (const d of st.details) {
        buf[off++] = 0x1a;
        off = writeVarint(buf, off, anySize(d));
        const t = Buffer.byteLength(d.typeUrl);
        if (t) off = writeStringField(buf, off, 0x0a, d.typeUrl, t);
        if (d.value.length) off = writeBytesField(buf, off, 0x12, d.value);
      }
    }
  }
  if (res.payload.length) off = writeBytesField(buf, off, 0x12, res.payload);
  return buf;
}

// ---------------------------------------------------------------- decoding

/** Thrown for undecodable input. */
export class WireError extends Error {
  constructor(message: string) { super(message); this.name = 'WireError'; }
}

class Reader {
  pos: number;
  lo = 0; // low 32 bits of the last varint (unsigned)
  hi = 0; // high 32 bits of the last varint (unsigned)
  constructor(readonly buf: Buffer, start: number, readonly end: number) { this.pos = start; }

  varint(): void {
    const buf = this.buf, end = this.end;
    let lo = 0, hi = 0, b = 0, shift = 0;
    for (; shift < 28; shift += 7) {
      if (this.pos >= end) throw new WireError('truncated varint');
      b = buf[this.pos++];
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) { this.lo = lo >>> 0; this.hi = 0; return; }
    }
    if (this.pos >= end) throw new WireError('truncated varint');
    b = buf[this.pos++];
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      for (shift = 3; ; shift += 7) {
        if (shift > 31) throw new WireError('varint overflow');
        if (this.pos >= end) throw new WireError('truncated varint');
        b = buf[this.pos++];
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** Reads a tag; returns field number, leaves wire type in `lo & 7`. */
  tag(): number {
    this.varint();
    const field = this.hi === 0 ? this.lo >>> 3 : 0;
    if (field === 0) throw new WireError('invalid field number 0');
    return field;
  }

  /** Length of a length-delimited field; returns its end offset. */
  delimited(): number {
    this.varint();
    if (this.hi !== 0 || this.lo > this.end - this.pos) throw new WireError('length-delimited field overruns message');
    return this.pos + this.lo;
  }

  string(): string {
    const end = this.delimited();
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  bytes(): Uint8Array {
    const end = this.delimited();
    const b = end === this.pos ? EMPTY : this.buf.subarray(this.pos, end);
    this.pos = end;
    return b;
  }

  int64(): number { this.varint(); return (this.hi | 0) * 4294967296 + this.lo; }
  int32(): number { this.varint(); return this.lo | 0; }

  skip(wireType: number): void {
    switch (wireType) {
      case 0: this.varint(); return;
      case 1: this.pos += 8; break;
      case 2: this.pos = this.delimited(); return;
      case 5: this.pos += 4; break;
      default: throw new WireError(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new WireError('truncated fixed-size field');
  }
}

function expect(r: Reader, wireType: number, field: number): void {
  if ((r.lo & 7) !== wireType) throw new WireError(`field ${field}: wrong wire type ${r.lo & 7}`);
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function decodeKeyValue(r: Reader, end: number): KeyValue {
  const sub = new Reader(r.buf, r.pos, end);
  const kv: KeyValue = { key: '', value: '' };
  while (sub.pos < end) {
    const f = sub.tag();
    if (f === 1) { expect(sub, 2, f); kv.key = sub.string(); }
    else if (f === 2) { expect(sub, 2, f); kv.value = sub.string(); }
    else sub.skip(sub.lo & 7);
  }
  r.pos = end;
  return kv;
}

/** Decode a Request envelope; throws WireError on malformed input. */
export function decodeRequest(data: Uint8Array): Required<RequestEnvelope> {
  const r = new Reader(asBuffer(data), 0, data.length);
  const req: Required<RequestEnvelope> = { service: '', method: '', payload: EMPTY, timeoutNano: 0, metadata: [] };
  while (r.pos < r.end) {
    const f = r.tag();
    switch (f) {
      case 1: expect(r, 2, f); req.service = r.string(); break;
      case 2: expect(r, 2, f); req.method = r.string(); break;
      case 3: expect(r, 2, f); req.payload = r.bytes(); break;
      case 4: expect(r, 0, f); req.timeoutNano = r.int64(); break;
      case 5: expect(r, 2, f); req.metadata.push(decodeKeyValue(r, r.delimited())); break;
      default: r.skip(r.lo & 7);
    }
  }
  return req;
}

function decodeAny(r: Reader, end: number): AnyEnvelope {
  const sub = new Reader(r.buf, r.pos, end);
  const a: AnyEnvelope = { typeUrl: '', value: EMPTY };
  while (sub.pos < end) {
    const f = sub.tag();
    if (f === 1) { expect(sub, 2, f); a.typeUrl = sub.string(); }
    else if (f === 2) { expect(sub, 2, f); a.value = sub.bytes(); }
    else sub.skip(sub.lo & 7);
  }
  r.pos = end;
  return a;
}

function decodeStatus(r: Reader, end: number): Required<StatusEnvelope> {
  const sub = new Reader(r.buf, r.pos, end);
  const st: Required<StatusEnvelope> = { code: 0, message: '', details: [] };
  while (sub.pos < end) {
    const f = sub.tag();
    if (f === 1) { expect(sub, 0, f); st.code = sub.int32(); }
    else if (f === 2) { expect(sub, 2, f); st.message = sub.string(); }
    else if (f === 3) { expect(sub, 2, f); st.details.push(decodeAny(sub, sub.delimited())); }
    else sub.skip(sub.lo & 7);
  }
  r.pos = end;
  return st;
}

/** Decode a Response envelope; throws WireError on malformed input. */
export function decodeResponse(data: Uint8Array): ResponseEnvelope {
  const r = new Reader(asBuffer(data), 0, data.length);
  const res: ResponseEnvelope = { payload: EMPTY };
  while (r.pos < r.end) {
    const f = r.tag();
    if (f === 1) { expect(r, 2, f); res.status = decodeStatus(r, r.delimited()); }
    else if (f === 2) { expect(r, 2, f); res.payload = r.bytes(); }
    else r.skip(r.lo & 7);
  }
  return res;
}

// ---------------------------------------------------------------- metadata

/** Request metadata: lower-cased key -> values (repeated KeyValue on the wire). */
export type Metadata = Map<string, string[]>;

/** Flatten metadata to wire KeyValues, lower-casing keys. */
export function metadataToPairs(md: Metadata | Record<string, string>): KeyValue[] {
  const out: KeyValue[] = [];
  if (md instanceof Map) {
    for (const [k, values] of md) {
      const key = k.toLowerCase();
      for (const value of values) out.push({ key, value });
    }
  } else {
    for (const k of Object.keys(md)) out.push({ key: k.toLowerCase(), value: md[k] });
  }
  return out;
}

/** Group wire KeyValues into metadata, lower-casing keys and keeping every value in order. */
export function pairsToMetadata(pairs: readonly KeyValue[]): Metadata {
  const md: Metadata = new Map();
  for (const { key, value } of pairs) {
    const k = key.toLowerCase();
    const list = md.get(k);
    if (list) list.push(value); else md.set(k, [value]);
  }
  return md;
}
