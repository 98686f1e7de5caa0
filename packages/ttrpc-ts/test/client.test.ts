import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { Client, Code, FrameDecoder, TtrpcError, decodeRequest, encodeFrame, encodeResponse, type Frame } from '../src/index.js';
import { sleep, tempDir } from '../src/testing.js';

const tmp = tempDir();
let n = 0;
const enc = (s: string) => new Uint8Array(Buffer.from(s));
const dec = (b: Uint8Array) => Buffer.from(b).toString();

/** A scripted peer: records every frame the client sends and lets the test answer by hand. */
async function peer(onFrame: (f: Frame, sock: net.Socket) => void = () => {}) {
  const path = tmp.sock(`p${n++}.sock`);
  const frames: Frame[] = [];
  let bytes = 0;
  const sockets: net.Socket[] = [];
  const srv = net.createServer((s) => {
    sockets.push(s);
    const d = new FrameDecoder(Number.MAX_SAFE_INTEGER);
    s.on('data', (c) => { bytes += c.length; for (const f of d.push(c)) { frames.push(f); onFrame(f, s); } });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(path, r));
  return {
    path, frames, sockets,
    get bytes() { return bytes; },
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }),
  };
}

const reply = (s: net.Socket, id: number, payload: Uint8Array, status?: { code: number; message: string }) =>
  s.write(encodeFrame(id, 2, 0, encodeResponse({ status, payload })));

async function rejectsWith(p: Promise<unknown>, code: Code, msg?: RegExp): Promise<TtrpcError> {
  try { await p; } catch (e) {
    assert.instance(e, TtrpcError);
    const err = e as TtrpcError;
    assert.is(Code[err.code], Code[code], err.message);
    if (msg) assert.match(err.message, msg);
    return err;
  }
  throw new Error(`expected rejection with ${Code[code]}`);
}

test('stream ids are odd, start at 1, +2 per call; envelope carries service, method, payload, timeout, metadata', async () => {
  const pr = await peer((f, s) => reply(s, f.streamId, decodeRequest(f.payload).payload));
  const c = await Client.connect(pr.path);
  for (let i = 0; i < 3; i++) assert.is(dec(await c.call('svc.S', 'M', enc(`p${i}`))), `p${i}`);
  await c.call('svc.S', 'T', enc('t'), { timeoutMs: 1500, metadata: { 'X-Up': 'v' } });
  assert.equal(pr.frames.map((f) => [f.streamId, f.type, f.flags]), [[1, 1, 0], [3, 1, 0], [5, 1, 0], [7, 1, 0]]);
  const req = decodeRequest(pr.frames[3].payload);
  assert.equal([req.service, req.method, dec(req.payload), req.timeoutNano, req.metadata], ['svc.S', 'T', 't', 1.5e9, [{ key: 'x-up', value: 'v' }]]);
  assert.is(decodeRequest(pr.frames[0].payload).timeoutNano, 0);
  c.close();
  await pr.close();
});

test('responses in any order are matched by stream id; absent status and status{code 0} both succeed', async () => {
  const held: Frame[] = [];
  const pr = await peer((f, s) => {
    held.push(f);
    if (held.length === 3) {
      reply(s, held[2].streamId, enc('c'), { code: 0, message: '' });   // explicit OK status
      s.write(encodeFrame(99, 2, 0, encodeResponse({ payload: enc('unknown stream') }))); // ignored
      s.write(encodeFrame(held[0].streamId, 3, 0, enc('data frame')));  // unknown type for a client: ignored
      reply(s, held[0].streamId, enc('a'));
      reply(s, held[1].streamId, new Uint8Array(0));                     // bare header
    }
  });
  const c = await Client.connect(pr.path);
  const r = await Promise.all([c.call('s', 'm', enc('1')), c.call('s', 'm', enc('2')), c.call('s', 'm', enc('3'))]);
  assert.equal(r.map(dec), ['a', '', 'c']);
  assert.is(c.pendingCalls, 0);
  c.close();
  await pr.close();
});

test('error status -> TtrpcError with code, message and details', async () => {
  const pr = await peer((f, s) => s.write(encodeFrame(f.streamId, 2, 0, encodeResponse({
    status: { code: Code.NotFound, message: 'process already finished: not found', details: [{ typeUrl: 't', value: enc('v') }] },
    payload: new Uint8Array(0),
  }))));
  const c = await Client.connect(pr.path);
  const err = await rejectsWith(c.call('s', 'm', enc('')), Code.NotFound, /^process already finished: not found$/);
  assert.is(err.details.length, 1);
  assert.is(err.details[0].typeUrl, 't');
  c.close();
  await pr.close();
});

test('local timeout -> DeadlineExceeded when the peer never answers; late answer ignored', async () => {
  const held: Frame[] = [];
  const pr = await peer((f) => held.push(f));
  const c = await Client.connect(pr.path);
  const t0 = Date.now();
  await rejectsWith(c.call('s', 'm', enc(''), { timeoutMs: 50 }), Code.DeadlineExceeded);
  const took = Date.now() - t0;
  assert.ok(took >= 45 && took < 500, `took ${took}`);
  assert.is(decodeRequest(held[0].payload).timeoutNano, 50e6);
  reply(pr.sockets[0], held[0].streamId, enc('late'));
  await sleep(20);
  assert.not.ok(c.closed);
  assert.is(c.pendingCalls, 0);
  await rejectsWith(c.call('s', 'm', enc(''), { timeoutMs: 0 }), Code.DeadlineExceeded);
  c.close();
  await pr.close();
});

test('AbortSignal cancels a call with Canceled', async () => {
  const pr = await peer();
  const c = await Client.connect(pr.path);
  const ac = new AbortController();
  const p = c.call('s', 'm', enc(''), { signal: ac.signal });
  setTimeout(() => ac.abort(), 10);
  await rejectsWith(p, Code.Canceled);
  await rejectsWith(c.call('s', 'm', enc(''), { signal: ac.signal }), Code.Canceled);
  assert.is(pr.frames.length, 1, 'an already-aborted call is not sent');
  c.close();
  await pr.close();
});

test('connection close rejects every pending call with Unavailable; later calls reject at once; close event', async () => {
  const pr = await peer();
  const c = await Client.connect(pr.path);
  let closeEvents = 0;
  c.on('close', () => closeEvents++);
  const pending = Array.from({ length: 5 }, () => rejectsWith(c.call('s', 'm', enc('')), Code.Unavailable, /ttrpc: connection closed/));
  await sleep(20);
  assert.is(c.pendingCalls, 5);
  pr.sockets[0].destroy();
  await Promise.all(pending);
  await c.whenClosed;
  assert.ok(c.closed);
  assert.is(closeEvents, 1);
  await rejectsWith(c.call('s', 'm', enc('')), Code.Unavailable, /connection closed/);
  await pr.close();
});

test('client.close() rejects pending calls', async () => {
  const pr = await peer();
  const c = await Client.connect(pr.path);
  const p = rejectsWith(c.call('s', 'm', enc('')), Code.Unavailable);
  await sleep(5);
  c.close();
  await p;
  await pr.close();
});

test('oversized request is refused locally (nothing written, no stream id used); oversized response rejects only that call', async () => {
  const pr = await peer((f, s) => {
    const want = Number(dec(decodeRequest(f.payload).payload));
    reply(s, f.streamId, new Uint8Array(want));
  });
  const c = await Client.connect(pr.path, { maxMessageSize: 1024 });
  const err = await rejectsWith(c.call('s', 'm', new Uint8Array(2000)), Code.ResourceExhausted);
  assert.match(err.message, /1024/);
  await sleep(20);
  assert.is(pr.bytes, 0, 'nothing written');
  await rejectsWith(c.call('s', 'm', enc('100000')), Code.ResourceExhausted, /100003.*1024|1000\d\d.*1024/);
  assert.is((await c.call('s', 'm', enc('500'))).length, 500);
  assert.equal(pr.frames.map((f) => f.streamId), [1, 3]);
  c.close();
  await pr.close();
});

test('undecodable response envelope rejects that call with Internal, connection stays usable', async () => {
  let first = true;
  const pr = await peer((f, s) => {
    if (first) { first = false; s.write(encodeFrame(f.streamId, 2, 0, Buffer.from('0a05ab', 'hex'))); }
    else reply(s, f.streamId, enc('fine'));
  });
  const c = await Client.connect(pr.path);
  await rejectsWith(c.call('s', 'm', enc('')), Code.Internal);
  assert.is(dec(await c.call('s', 'm', enc(''))), 'fine');
  c.close();
  await pr.close();
});

test('connect to a missing socket rejects with ENOENT', async () => {
  await Client.connect(tmp.sock('missing.sock')).then(() => assert.unreachable(), (e) => assert.is(e.code, 'ENOENT'));
});

test.after(() => tmp.remove());
test.run();
