import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFrame, FrameDecoder, type Frame } from '../src/channel.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const simple = (f: Frame) => ({ id: f.streamId, type: f.type, flags: f.flags, payload: hex(f.payload), oversized: f.oversized });

const f1 = encodeFrame(1, 1, 0, Buffer.from('first'));
const f2 = encodeFrame(3, 2, 0, new Uint8Array(0));
const f3 = encodeFrame(0xfffffffd, 3, 0x05, Buffer.alloc(1000, 7));
const all = Buffer.concat([f1, f2, f3]);
const expected = [
  { id: 1, type: 1, flags: 0, payload: hex(Buffer.from('first')), oversized: undefined },
  { id: 3, type: 2, flags: 0, payload: '', oversized: undefined },
  { id: 0xfffffffd, type: 3, flags: 5, payload: hex(Buffer.alloc(1000, 7)), oversized: undefined },
];

test('header layout is big-endian length, stream id, type, flags', () => {
  assert.is(hex(encodeFrame(0x01020304, 2, 9, Buffer.from([0xaa, 0xbb]))), '00000002' + '01020304' + '02' + '09' + 'aabb');
});

test('three coalesced frames in one chunk; payloads are views, not copies', () => {
  const frames = new FrameDecoder().push(all);
  assert.equal(frames.map(simple), expected);
  assert.is(frames[0].payload.buffer, all.buffer);
});

test('byte-by-byte input yields the same frames', () => {
  const d = new FrameDecoder();
  const out: Frame[] = [];
  for (let i = 0; i < all.length; i++) {
    const got = d.push(all.subarray(i, i + 1));
    out.push(...got);
  }
  assert.equal(out.map(simple), expected);
  assert.is(d.pending, 0);
});

test('every split point of the stream yields the same frames', () => {
  for (let cut = 0; cut <= all.length; cut += 7) {
    const d = new FrameDecoder();
    const out = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
    assert.equal(out.map(simple), expected, `cut ${cut}`);
  }
});

test('truncated frame waits for the rest', () => {
  const d = new FrameDecoder();
  assert.equal(d.push(f1.subarray(0, 4)), []);
  assert.is(d.pending, 4);
  assert.equal(d.push(f1.subarray(4, f1.length - 1)), []);
  assert.is(d.pending, f1.length - 1);
  assert.equal(d.push(f1.subarray(f1.length - 1)).map(simple), [expected[0]]);
});

test('oversized frame: reported at header time, exactly its payload discarded, next frame parsed', () => {
  const d = new FrameDecoder(16);
  const big = encodeFrame(5, 1, 0, Buffer.alloc(17, 1));
  const exact = encodeFrame(7, 1, 0, Buffer.alloc(16, 2));
  const stream = Buffer.concat([big, exact]);
  const out: Frame[] = [];
  out.push(...d.push(stream.subarray(0, 12)));
  assert.is(out.length, 1);
  assert.is(out[0].oversized, 17);
  assert.is(out[0].streamId, 5);
  assert.is(out[0].payload.length, 0);
  for (let i = 12; i < stream.length; i += 5) out.push(...d.push(stream.subarray(i, i + 5)));
  assert.is(out.length, 2);
  assert.is(out[1].streamId, 7);
  assert.is(out[1].oversized, undefined);
  assert.is(hex(out[1].payload), hex(Buffer.alloc(16, 2)));
});

test('huge declared length (4 GiB - 1) is discarded, not buffered', () => {
  const d = new FrameDecoder();
  const hdr = Buffer.from('ffffffff00000009' + '0100', 'hex');
  const out = d.push(Buffer.concat([hdr, Buffer.alloc(1 << 16)]));
  assert.is(out.length, 1);
  assert.is(out[0].oversized, 0xffffffff);
  assert.is(d.discarding, 0xffffffff - (1 << 16));
  assert.is(d.pending, 0);
});

test('accepts plain Uint8Array chunks', () => {
  const d = new FrameDecoder();
  const u = new Uint8Array(all);
  assert.equal(d.push(u).map(simple), expected);
});

test.run();
