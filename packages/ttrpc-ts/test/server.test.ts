import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client, Code, Server, TtrpcError, decodeResponse, encodeFrame, encodeRequest, type RequestContext } from '../src/index.js';
import { RawConn, sleep, tempDir } from '../src/testing.js';

const tmp = tempDir();
let n = 0;
const sockPath = () => tmp.sock(`s${n++}.sock`);
const enc = (s: string) => new Uint8Array(Buffer.from(s));
const dec = (b: Uint8Array) => Buffer.from(b).toString();

function reqFrame(id: number, service: string, method: string, payload: Uint8Array, extra: { timeoutNano?: number; flags?: number; metadata?: { key: string; value: string }[] } = {}) {
  return encodeFrame(id, 1, extra.flags ?? 0, encodeRequest({ service, method, payload, timeoutNano: extra.timeoutNano, metadata: extra.metadata }));
}

async function rejectsWith(p: Promise<unknown>, code: Code, msg?: RegExp): Promise<TtrpcError> {
  try { await p; } catch (e) {
    assert.instance(e, TtrpcError);
    const err = e as TtrpcError;
    assert.is(Code[err.code], Code[code], err.message);
    if (msg) assert.match(err.message, msg);
    return err;
  }
  throw new assert.Assertion({ message: `expected rejection with ${Code[code]}`, operator: 'rejects', actual: 'resolved', expects: Code[code], generated: true });
}

const seen: { ctx?: RequestContext; lateAnswered?: boolean; aborted?: unknown } = {};

function makeServer(opts: ConstructorParameters<typeof Server>[0] = {}): Server {
  const s = new Server(opts);
  s.register('test.Echo', {
    Echo: async (p) => p,
    Empty: async () => undefined,
    Delay: async (p) => { await sleep(Number(dec(p))); return p; },
    Meta: async (_p, ctx) => enc(JSON.stringify([...ctx.metadata])),
    Big: async (p) => new Uint8Array(Number(dec(p))),
    Throw: async (p) => {
      const [kind, msg] = dec(p).split(':');
      if (kind === 'ttrpc') throw new TtrpcError(Code.NotFound, msg);
      if (kind === 'error') throw new Error(msg);
      if (kind === 'string') throw msg;
      return undefined;
    },
    SyncThrow: (() => { throw new TtrpcError(Code.FailedPrecondition, 'sync'); }) as never,
    NotBytes: (async () => 'str') as never,
    Hang: async (_p, ctx) => {
      seen.ctx = ctx;
      await new Promise((r) => ctx.signal.addEventListener('abort', r));
      seen.aborted = ctx.signal.reason;
      await sleep(20);
      seen.lateAnswered = true;
      return enc('late');
    },
  });
  return s;
}

test('100 concurrent calls on one connection, answered out of order, all matched', async () => {
  const server2 = makeServer();
  const p2 = sockPath();
  await server2.listen(p2);
  const c2 = await Client.connect(p2);
  const done: number[] = [];
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => {
    const delay = (i * 37) % 50;
    return c2.call('test.Echo', 'Delay', enc(String(delay))).then((r) => { done.push(i); return [i, Number(dec(r))]; });
  }));
  for (const [i, d] of results) assert.is(d, (i * 37) % 50);
  const inOrder = done.every((v, k) => k === 0 || v > done[k - 1]);
  assert.not.ok(inOrder, 'answers should complete out of issue order');
  assert.is(c2.pendingCalls, 0);
  c2.close();
  await server2.close();
});

test('metadata: keys lower-cased, multiple values per key, empty without metadata', async () => {
  const p = sockPath();
  const server = makeServer();
  await server.listen(p);
  const client = await Client.connect(p);
  const r = await client.call('test.Echo', 'Meta', enc(''), { metadata: new Map([['Containerd-Namespace-TTRPC', ['k8s.io']], ['x', ['1', '2']]]) });
  assert.equal(JSON.parse(dec(r)), [['containerd-namespace-ttrpc', ['k8s.io']], ['x', ['1', '2']]]);
  const r2 = await client.call('test.Echo', 'Meta', enc(''), { metadata: { Foo: 'bar' } });
  assert.equal(JSON.parse(dec(r2)), [['foo', ['bar']]]);
  assert.equal(JSON.parse(dec(await client.call('test.Echo', 'Meta', enc('')))), []);
  client.close();
  await server.close();
});

test('server-side deadline: DeadlineExceeded at the deadline, signal aborted, late result dropped', async () => {
  const p = sockPath();
  const server = makeServer();
  await server.listen(p);
  const raw = await RawConn.open(p);
  const t0 = Date.now();
  raw.write(reqFrame(1, 'test.Echo', 'Hang', enc(''), { timeoutNano: 80e6 }));
  const [f] = await raw.waitFrames(1);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 75 && elapsed < 1000, `answered after ${elapsed} ms`);
  assert.is(f.streamId, 1);
  const st = decodeResponse(f.payload).status!;
  assert.is(st.code, Code.DeadlineExceeded);
  assert.is(st.message, 'context deadline exceeded');
  assert.ok(seen.ctx!.deadline! >= t0 + 75 && seen.ctx!.deadline! <= t0 + 80 + elapsed, 'deadline is Date.now() based: arrival + 80 ms');
  assert.ok(seen.ctx!.signal.aborted);
  assert.instance(seen.aborted, TtrpcError);
  await sleep(60);
  assert.ok(seen.lateAnswered, 'handler finished later');
  // the late answer was dropped; the connection still works
  raw.write(reqFrame(3, 'test.Echo', 'Echo', enc('after')));
  const frames = await raw.waitFrames(2);
  assert.is(frames.length, 2);
  assert.is(frames[1].streamId, 3);
  assert.is(dec(decodeResponse(frames[1].payload).payload), 'after');
  // an already-expired (negative) timeout is answered at once without running the handler
  seen.ctx = undefined;
  raw.write(reqFrame(5, 'test.Echo', 'Hang', enc(''), { timeoutNano: -1 }));
  const f3 = (await raw.waitFrames(3))[2];
  assert.is(decodeResponse(f3.payload).status!.code, Code.DeadlineExceeded);
  assert.is(seen.ctx, undefined);
  raw.destroy();
  await server.close();
});

test('client timeout: server sees a deadline and both sides give DeadlineExceeded', async () => {
  const p = sockPath();
  const server = makeServer();
  await server.listen(p);
  const client = await Client.connect(p);
  const t0 = Date.now();
  await rejectsWith(client.call('test.Echo', 'Hang', enc(''), { timeoutMs: 60 }), Code.DeadlineExceeded);
  const took = Date.now() - t0;
  assert.ok(took < 1000);
  assert.ok(seen.ctx!.deadline! > t0 && seen.ctx!.deadline! <= t0 + 60 + took, 'deadline is arrival + 60 ms');
  assert.is(dec(await client.call('test.Echo', 'Echo', enc('ok'), { timeoutMs: 1000 })), 'ok');
  client.close();
  await server.close();
});

test('unknown service and method -> Unimplemented naming both', async () => {
  const p = sockPath();
  const server = makeServer();
  await server.listen(p);
  const client = await Client.connect(p);
  await rejectsWith(client.call('no.Such', 'Thing', enc('')), Code.Unimplemented, /no\.Such.*Thing/);
  await rejectsWith(client.call('test.Echo', 'Nope', enc('')), Code.Unimplemented, /Nope.*test\.Echo/);
  client.close();
  await server.close();
});

test('handler outcomes: TtrpcError code, Error -> Unknown, sync throw, non-bytes -> Internal, empty success is a bare header', async () => {
  const p = sockPath();
  const server = makeServer();
  await server.listen(p);
  const client = await Client.connect(p);
  await rejectsWith(client.call('test.Echo', 'Throw', enc('ttrpc:process already finished')), Code.NotFound, /^process already finished$/);
  await rejectsWith(client.call('test.Echo', 'Throw', enc('error:boom')), Code.Unknown, /^boom$/);
  await rejectsWith(client.call('test.Echo', 'Throw', enc('string:raw')), Code.Unknown, /^raw$/);
  await rejectsWith(client.call('test.Echo', 'SyncThrow', enc('')), Code.FailedPrecondition, /^sync$/);
  await rejectsWith(client.call('test.Echo', 'NotBytes', enc('')), Code.Internal);
  const empty = await client.call('test.Echo', 'Empty', enc(''));
  assert.is(empty.length, 0);
  client.close();

  const raw = await RawConn.open(p);
  raw.write(reqFrame(1, 'test.Echo', 'Empty', enc('')));
  raw.write(reqFrame(3, 'test.Echo', 'Echo', new Uint8Array(0)));
  const frames = await raw.waitFrames(2);
  for (const f of frames) {
    assert.is(f.type, 2);
    assert.is(f.payload.length, 0, 'success without payload: no status, no payload');
  }
  raw.destroy();
  await server.close();
});

test('protocol violations: even id, non-increasing id, bad envelope, streaming flags, unknown type; connection survives', async () => {
  const p = sockPath();
  const errors: string[] = [];
  const server = makeServer({ onError: (_e, where) => errors.push(where) });
  await server.listen(p);
  const raw = await RawConn.open(p);
  raw.write(reqFrame(2, 'test.Echo', 'Echo', enc('x')));                 // even
  raw.write(reqFrame(7, 'test.Echo', 'Echo', enc('seven')));             // ok
  raw.write(reqFrame(5, 'test.Echo', 'Echo', enc('x')));                 // decreasing
  raw.write(reqFrame(7, 'test.Echo', 'Echo', enc('x')));                 // re-used
  raw.write(encodeFrame(9, 1, 0, Buffer.from('0a05ab', 'hex')));         // undecodable
  raw.write(reqFrame(11, 'test.Echo', 'Echo', enc('x'), { flags: 2 }));  // streaming
  raw.write(encodeFrame(13, 3, 0, enc('data frame')));                   // unknown/Data type: ignored
  raw.write(encodeFrame(13, 9, 0, enc('type 9')));                       // ignored
  raw.write(reqFrame(13, 'test.Echo', 'Echo', enc('thirteen')));         // ok
  const frames = await raw.waitFrames(7);
  await sleep(30);
  assert.is(raw.frames.length, 7);
  const got = frames.map((f) => {
    const r = decodeResponse(f.payload);
    return [f.streamId, r.status ? Code[r.status.code] : dec(r.payload)];
  });
  const byId = new Map(got.map(([id, v]) => [`${id}:${v}`, true]));
  for (const want of ['2:InvalidArgument', '7:seven', '5:InvalidArgument', '7:InvalidArgument', '9:InvalidArgument', '11:Unimplemented', '13:thirteen']) {
    assert.ok(byId.has(want), `missing ${want} in ${JSON.stringify(got)}`);
  }
  const streaming = frames.find((f) => f.streamId === 11)!;
  assert.is(decodeResponse(streaming.payload).status!.message, 'streaming not supported');
  assert.not.ok(raw.closed);
  assert.equal(errors, []);
  raw.destroy();
  await server.close();
});

test('oversized frames: incoming discarded with ResourceExhausted, oversized response replaced; connection keeps working', async () => {
  const p = sockPath();
  const server = makeServer({ maxMessageSize: 1024 });
  await server.listen(p);
  const raw = await RawConn.open(p);
  raw.write(reqFrame(1, 'test.Echo', 'Echo', new Uint8Array(2000)));
  raw.write(reqFrame(3, 'test.Echo', 'Echo', enc('small')));
  const frames = await raw.waitFrames(2);
  assert.is(frames[0].streamId, 1);
  const st = decodeResponse(frames[0].payload).status!;
  assert.is(st.code, Code.ResourceExhausted);
  assert.match(st.message, /20\d\d.*1024/);
  assert.is(dec(decodeResponse(frames[1].payload).payload), 'small');
  raw.destroy();

  const client = await Client.connect(p);
  const err = await rejectsWith(client.call('test.Echo', 'Big', enc('5000')), Code.ResourceExhausted);
  assert.match(err.message, /1024/);
  assert.is((await client.call('test.Echo', 'Big', enc('1000'))).length, 1000);
  client.close();
  await server.close();
});

test('close(): pending client calls reject Unavailable, events and connectionCount follow', async () => {
  const p = sockPath();
  const server = makeServer();
  const events: string[] = [];
  server.on('connection', () => events.push('connection'));
  server.on('disconnect', () => events.push('disconnect'));
  await server.listen(p);
  const client = await Client.connect(p);
  await client.call('test.Echo', 'Echo', enc('x'));
  assert.is(server.connectionCount, 1);
  const pending = rejectsWith(client.call('test.Echo', 'Hang', enc('')), Code.Unavailable, /connection closed/);
  await sleep(10);
  await server.close();
  await pending;
  assert.is(server.connectionCount, 0);
  assert.equal(events, ['connection', 'disconnect']);
  assert.ok(seen.ctx!.signal.aborted, 'handler signal aborted when the connection closes');
  assert.not.ok(fs.existsSync(p), 'socket file removed');
});

test('shutdown(): in-flight call completes, then the connection closes; new connections refused', async () => {
  const p = sockPath();
  const server = makeServer();
  await server.listen(p);
  const busy = await Client.connect(p);
  const idle = await Client.connect(p);
  let slowDone = false;
  const slow = busy.call('test.Echo', 'Delay', enc('100')).finally(() => (slowDone = true));
  await sleep(10);
  const down = server.shutdown(5000);
  await idle.whenClosed;
  assert.not.ok(slowDone, 'idle connection closed at once, before the in-flight call finished');
  assert.is(dec(await slow), '100');
  await down;
  assert.ok(busy.closed);
  assert.is(server.connectionCount, 0);
  await Client.connect(p).then(() => assert.unreachable('connected after shutdown'), (e) => assert.ok(['ENOENT', 'ECONNREFUSED'].includes(e.code)));
});

test('shutdown(graceMs) closes stuck connections after the grace period', async () => {
  const p = sockPath();
  const server = makeServer();
  await server.listen(p);
  const c = await Client.connect(p);
  const stuck = rejectsWith(c.call('test.Echo', 'Hang', enc('')), Code.Unavailable);
  await sleep(10);
  const t0 = Date.now();
  await server.shutdown(100);
  const took = Date.now() - t0;
  assert.ok(took >= 95 && took < 1000, `took ${took}`);
  await stuck;
});

test('authorize hook: refusal closes the connection before any frame is served', async () => {
  const p = sockPath();
  let allow = false;
  const refused: unknown[] = [];
  const server = makeServer({
    authorize: async () => { await sleep(5); if (!allow) throw new Error('peer uid mismatch'); },
    onError: (e, where) => { if (where === 'authorize') refused.push(e); },
  });
  let connections = 0;
  server.on('connection', () => connections++);
  await server.listen(p);
  const bad = await Client.connect(p);
  await rejectsWith(bad.call('test.Echo', 'Echo', enc('x')), Code.Unavailable, /connection closed/);
  assert.ok(bad.closed);
  assert.is(refused.length, 1);
  assert.match((refused[0] as Error).message, /uid mismatch/);
  assert.is(connections, 0);
  assert.is(server.connectionCount, 0);
  allow = true;
  const good = await Client.connect(p);
  assert.is(dec(await good.call('test.Echo', 'Echo', enc('hello'))), 'hello');
  assert.is(server.connectionCount, 1);
  good.close();
  await server.close();
});

test('register rejects a duplicate service; listen on a busy path rejects EADDRINUSE', async () => {
  const s = makeServer();
  assert.throws(() => s.register('test.Echo', {}), /duplicate/);
  const p = sockPath();
  await s.listen(p);
  const s2 = makeServer();
  await s2.listen(p).then(() => assert.unreachable(), (e) => assert.is(e.code, 'EADDRINUSE'));
  await s2.close();
  await s.close();
});

test('listen({fd}) on an inherited listening socket (fd 3, as containerd passes it)', async () => {
  const p = sockPath();
  const here = path.dirname(fileURLToPath(import.meta.url));
  const script = path.join(tmp.dir, 'child.mjs');
  fs.writeFileSync(script, `
    import { Server } from ${JSON.stringify(pathToFileURL(path.join(here, '..', 'src', 'index.js')).href)};
    const s = new Server();
    s.register('child.Svc', { Pid: async () => new TextEncoder().encode(String(process.pid)) });
    await s.listen({ fd: 3 });
    process.stdout.write('ready\\n');
    process.stdin.on('end', () => s.close().then(() => process.exit(0)));
    process.stdin.resume();
  `);
  const py = `import socket,os,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM)\ns.bind(sys.argv[1]);s.listen(16)\nos.dup2(s.fileno(),3) if s.fileno()!=3 else None\nos.set_inheritable(3,True)\nos.execv(sys.argv[2],[sys.argv[2],sys.argv[3]])`;
  const child = spawn('python3', ['-c', py, p, process.execPath, script], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
  const c = await Client.connect(p);
  assert.is(dec(await c.call('child.Svc', 'Pid', enc(''))), String(child.pid));
  c.close();
  child.stdin!.end();
  const code = await new Promise((r) => child.once('exit', r));
  assert.is(code, 0);
});

test('backpressure: a peer that never reads its answers stops being read; reading resumes once it reads', async () => {
  const p = sockPath();
  let handled = 0;
  const s = new Server();
  s.register('test.Echo', { Echo: async (b) => { handled++; return b; } });
  await s.listen(p);
  const raw = await RawConn.open(p);
  raw.socket.pause(); // never read the answers
  const payload = new Uint8Array(256 << 10);
  let id = 1;
  let written = 0;
  // Write until our own socket refuses more (the server stopped reading), at most 256 MiB.
  while (written < (256 << 20)) {
    const ok = raw.socket.write(reqFrame(id, 'test.Echo', 'Echo', payload));
    id += 2;
    written += payload.length;
    if (!ok) {
      const drained = await Promise.race([new Promise((r) => raw.socket.once('drain', () => r(true))), sleep(1000).then(() => false)]);
      if (!drained) break;
    }
  }
  const sent = (id - 1) / 2;
  assert.ok(written < (256 << 20), 'the server stopped reading: our writes stalled');
  await sleep(300);
  const stalledAt = handled;
  await sleep(500);
  assert.is(handled, stalledAt, 'no request handled while the answers are not read');
  assert.ok(handled < sent, `server holds back (${handled} of ${sent} handled)`);
  raw.socket.resume(); // read everything: the rest is handled and answered
  await raw.waitFrames(sent, 30_000);
  assert.is(handled, sent);
  raw.destroy();
  await s.close();
});

test('maxInFlight: at the limit the connection is not read until a call finishes', async () => {
  const p = sockPath();
  const started: number[] = [];
  const release: Array<() => void> = [];
  const s = new Server({ maxInFlight: 2 });
  s.register('test.Echo', { Wait: async (b) => { started.push(b[0]!); await new Promise<void>((r) => release.push(r)); return b; } });
  await s.listen(p);
  const raw = await RawConn.open(p);
  for (let i = 0; i < 4; i++) raw.write(reqFrame(2 * i + 1, 'test.Echo', 'Wait', new Uint8Array([i])));
  await sleep(200);
  assert.equal(started, [0, 1], 'two calls in flight, the others not read yet');
  release.shift()!();
  await raw.waitFrames(1);
  await sleep(100);
  assert.equal(started, [0, 1, 2]);
  while (release.length) release.shift()!();
  await sleep(100);
  while (release.length) release.shift()!();
  await raw.waitFrames(4);
  assert.equal(started, [0, 1, 2, 3]);
  raw.destroy();
  await s.close();
});

test('maxInFlightBytes: payloads held by running calls bound what is read', async () => {
  const p = sockPath();
  let started = 0;
  const release: Array<() => void> = [];
  const s = new Server({ maxInFlightBytes: 100_000 });
  s.register('test.Echo', { Hold: async () => { started++; await new Promise<void>((r) => release.push(r)); return undefined; } });
  await s.listen(p);
  const raw = await RawConn.open(p);
  for (let i = 0; i < 10; i++) raw.write(reqFrame(2 * i + 1, 'test.Echo', 'Hold', new Uint8Array(60_000)));
  await sleep(300);
  assert.ok(started >= 2 && started <= 4, `reading paused past the byte limit (${started} started)`);
  while (started < 10 || release.length) { while (release.length) release.shift()!(); await sleep(20); }
  await raw.waitFrames(10);
  raw.destroy();
  await s.close();
});

test('errors never echo unbounded request data: a 1 MiB method name is cut', async () => {
  const p = sockPath();
  const s = makeServer();
  await s.listen(p);
  const c = await Client.connect(p);
  const long = 'm'.repeat(1 << 20);
  const err = await rejectsWith(c.call('test.Echo', long, new Uint8Array()), Code.Unimplemented, /\(1048576 characters\)/);
  assert.ok(err.message.length < 400, `message of ${err.message.length} characters`);
  const err2 = await rejectsWith(c.call(long, 'X', new Uint8Array()), Code.Unimplemented);
  assert.ok(err2.message.length < 400);
  c.close();
  await s.close();
});

test.after(() => tmp.remove());
test.run();
