import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, metadataToPairs, pairsToMetadata, WireError } from '../src/wire.js';
import { encodeFrame, FrameDecoder, HEADER_LENGTH, MESSAGE_TYPE, sealFrame } from '../src/channel.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const utf8 = (s: string) => new Uint8Array(Buffer.from(s));

// Observed bytes of a Connect request on stream 3 (50-byte frame).
const CONNECT_FRAME = Buffer.concat([
  Buffer.from('00000028' + '00000003' + '01' + '00', 'hex'),
  Buffer.from([0x0a, 0x17]), Buffer.from('containerd.task.v2.Task'),
  Buffer.from([0x12, 0x07]), Buffer.from('Connect'),
  Buffer.from([0x1a, 0x04, 0x0a, 0x02]), Buffer.from('c1'),
]);

test('known Connect frame: encode produces the exact observed bytes', () => {
  assert.is(CONNECT_FRAME.length, 50);
  const env = encodeRequest({ service: 'containerd.task.v2.Task', method: 'Connect', payload: Buffer.from('0a026331', 'hex') });
  assert.is(hex(encodeFrame(3, MESSAGE_TYPE.Request, 0, env)), hex(CONNECT_FRAME));
  // reserved-header path gives the same bytes without a second copy
  const sealed = sealFrame(encodeRequest({ service: 'containerd.task.v2.Task', method: 'Connect', payload: Buffer.from('0a026331', 'hex') }, HEADER_LENGTH), 3, 1, 0);
  assert.is(hex(sealed), hex(CONNECT_FRAME));
});

test('known Connect frame: decode', () => {
  const frames = new FrameDecoder().push(CONNECT_FRAME);
  assert.is(frames.length, 1);
  assert.equal({ id: frames[0].streamId, type: frames[0].type, flags: frames[0].flags, len: frames[0].payload.length }, { id: 3, type: 1, flags: 0, len: 40 });
  const req = decodeRequest(frames[0].payload);
  assert.is(req.service, 'containerd.task.v2.Task');
  assert.is(req.method, 'Connect');
  assert.is(hex(req.payload), '0a026331');
  assert.is(req.timeoutNano, 0);
  assert.equal(req.metadata, []);
});

test('request round trip with timeout, metadata, unicode', () => {
  const payload = new Uint8Array(300).map((_, i) => i & 0xff);
  const md = [{ key: 'containerd-namespace-ttrpc', value: 'k8s.io' }, { key: 'x', value: 'é漢' }, { key: 'x', value: '' }];
  const buf = encodeRequest({ service: 'svc.ü', method: 'M', payload, timeoutNano: 5_000_000_000, metadata: md });
  const req = decodeRequest(buf);
  assert.is(req.service, 'svc.ü');
  assert.is(req.method, 'M');
  assert.is(hex(req.payload), hex(payload));
  assert.is(req.timeoutNano, 5_000_000_000);
  assert.equal(req.metadata, md);
});

test('negative and large int64 timeout round trip', () => {
  for (const t of [-1, -5_000_000, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER, -(2 ** 50)]) {
    const buf = encodeRequest({ service: 's', method: 'm', payload: new Uint8Array(0), timeoutNano: t });
    assert.is(decodeRequest(buf).timeoutNano, t, String(t));
  }
  // -1 is a 10-byte varint
  assert.is(hex(encodeRequest({ service: '', method: '', payload: new Uint8Array(0), timeoutNano: -1 })), '20ffffffffffffffffff01');
});

test('empty request and empty/OK response encode to zero bytes', () => {
  assert.is(encodeRequest({ service: '', method: '', payload: new Uint8Array(0) }).length, 0);
  assert.is(encodeResponse({ payload: new Uint8Array(0) }).length, 0);
  const r = decodeResponse(new Uint8Array(0));
  assert.is(r.status, undefined);
  assert.is(r.payload.length, 0);
});

test('response round trips: payload, error status, details, negative code', () => {
  const ok = decodeResponse(encodeResponse({ payload: utf8('hi') }));
  assert.is(ok.status, undefined);
  assert.is(Buffer.from(ok.payload).toString(), 'hi');

  const errBuf = encodeResponse({ status: { code: 5, message: 'process already finished: not found' }, payload: new Uint8Array(0) });
  assert.is(hex(errBuf.subarray(0, 4)), '0a270805'); // status{len 39: code=5, message}
  const err = decodeResponse(errBuf);
  assert.equal(err.status, { code: 5, message: 'process already finished: not found', details: [] });

  const det = decodeResponse(encodeResponse({ status: { code: 3, message: 'm', details: [{ typeUrl: 'a.B', value: utf8('xyz') }, { typeUrl: '', value: new Uint8Array(0) }] }, payload: new Uint8Array(0) }));
  assert.is(det.status!.details!.length, 2);
  assert.is(det.status!.details![0].typeUrl, 'a.B');
  assert.is(Buffer.from(det.status!.details![0].value).toString(), 'xyz');

  assert.is(decodeResponse(encodeResponse({ status: { code: -2, message: '' }, payload: new Uint8Array(0) })).status!.code, -2);
  // an explicit empty status (newer Go servers) decodes as code 0
  assert.equal(decodeResponse(Buffer.from('0a00', 'hex')).status, { code: 0, message: '', details: [] });
});

test('unknown fields of every wire type are skipped', () => {
  const known = encodeRequest({ service: 's', method: 'm', payload: utf8('p') });
  const unknown = Buffer.from([
    0x30, 0x96, 0x01, // field 6 varint
    0x39, 1, 2, 3, 4, 5, 6, 7, 8, // field 7 fixed64
    0x42, 0x02, 0xaa, 0xbb, // field 8 bytes
    0x4d, 1, 2, 3, 4, // field 9 fixed32
  ]);
  const req = decodeRequest(Buffer.concat([unknown, known, unknown]));
  assert.is(req.service, 's');
  assert.is(req.method, 'm');
  assert.is(Buffer.from(req.payload).toString(), 'p');
});

test('malformed envelopes throw WireError', () => {
  const bad = [
    '0a05616263', // string overruns
    '0a', // truncated length
    '20ff', // truncated varint
    '20ffffffffffffffffffff01', // 11-byte varint
    '08', // field 1 with wire type 0 (wrong type)
    '00', // field number 0
    '0b', // group (wire type 3)
    '39010203', // truncated fixed64
    '2a020a05', // metadata KeyValue with overrunning key
  ];
  for (const h of bad) assert.throws(() => decodeRequest(Buffer.from(h, 'hex')), (e: unknown) => e instanceof WireError, h);
  assert.throws(() => decodeResponse(Buffer.from('0a0308', 'hex')), (e: unknown) => e instanceof WireError);
});

test('decoded bytes are views of the input (no copy)', () => {
  const buf = encodeRequest({ service: 's', method: 'm', payload: utf8('payload') });
  const req = decodeRequest(buf);
  assert.is(req.payload.buffer, buf.buffer);
});

test('metadata helpers lower-case keys and keep multiple values', () => {
  const pairs = metadataToPairs(new Map([['X-Key', ['a', 'b']], ['y', ['c']]]));
  assert.equal(pairs, [{ key: 'x-key', value: 'a' }, { key: 'x-key', value: 'b' }, { key: 'y', value: 'c' }]);
  assert.equal(metadataToPairs({ Foo: 'bar' }), [{ key: 'foo', value: 'bar' }]);
  const md = pairsToMetadata([{ key: 'A', value: '1' }, { key: 'a', value: '2' }, { key: 'b', value: '3' }]);
  assert.equal([...md], [['a', ['1', '2']], ['b', ['3']]]);
});

test.run();
