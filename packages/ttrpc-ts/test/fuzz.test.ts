/**
 * Seeded fuzzing of the server over real unix sockets: several raw connections
 * send malformed, truncated, random, oversized frames and random envelopes
 * while a well-behaved Client keeps checking echo answers. Seed: TTRPC_FUZZ_SEED
 * (default 0x5eed); case count: TTRPC_FUZZ_CASES (default 3000).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Client, Code, Server, TtrpcError, decodeResponse, encodeFrame, encodeRequest, type Frame } from '../src/index.js';
import { RawConn, tempDir } from '../src/testing.js';

const SEED = Number(process.env.TTRPC_FUZZ_SEED ?? 0x5eed);
const CASES = Number(process.env.TTRPC_FUZZ_CASES ?? 3000);
const WORKERS = 6;
const MAX = 64 * 1024;
const TIME_LIMIT_MS = 18_000;

class Rng {
  #s: number;
  constructor(seed: number) { this.#s = seed >>> 0; }
  next(): number { // mulberry32
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  bytes(n: number): Uint8Array { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = this.int(256); return b; }
  str(max: number): string { let s = ''; const n = this.int(max + 1); for (let i = 0; i < n; i++) s += String.fromCharCode(this.pick([0x41 + this.int(26), 0x2e, 0x30 + this.int(10), 0xe9, 0x4e2d])); return s; }
}

const tmp = tempDir('ttrpc-fuzz-');
const sock = tmp.sock('fuzz.sock');
const status = (f: Frame) => decodeResponse(f.payload).status;
const codeOf = (f: Frame) => status(f)?.code ?? Code.OK;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface Stats { cases: number; byKind: Record<string, number>; reconnects: number; closedByServer: number }

async function worker(w: number, budget: number, stats: Stats, deadline: number): Promise<void> {
  const rnd = new Rng(SEED + w * 7919);
  let conn = await RawConn.open(sock);
  let seen = 0;
  let nextOdd = 1;
  let lastUsed = 0;
  const odd = () => { const id = nextOdd; lastUsed = id; nextOdd += 2 + 2 * rnd.int(3); return id; };
  const reconnect = async () => { conn.destroy(); conn = await RawConn.open(sock); seen = 0; nextOdd = 1; lastUsed = 0; stats.reconnects++; };
  const send = async (buf: Uint8Array) => {
    let off = 0;
    while (off < buf.length) {
      const k = rnd.int(3) === 0 ? buf.length - off : 1 + rnd.int(buf.length - off);
      conn.write(buf.subarray(off, off + k));
      off += k;
      if (rnd.int(4) === 0) await new Promise((r) => setImmediate(r));
    }
  };
  const expect = async (k: number, what: string): Promise<Frame[]> => {
    try { await conn.waitFrames(seen + k, 3000); } catch (e) { throw new Error(`worker ${w} ${what}: ${(e as Error).message}`); }
    const got = conn.frames.slice(seen, seen + k);
    seen += k;
    return got;
  };
  const probe = () => { const id = odd(); const p = rnd.bytes(rnd.int(64)); return { id, p, buf: encodeFrame(id, 1, 0, encodeRequest({ service: 'fuzz.Svc', method: 'Echo', payload: p })) }; };
  const checkProbe = (f: Frame, pr: { id: number; p: Uint8Array }, what: string) => {
    assert.is(f.streamId, pr.id, `${what}: probe stream id`);
    const r = decodeResponse(f.payload);
    assert.is(r.status?.code ?? 0, 0, `${what}: probe status ${r.status?.message}`);
    assert.is(hex(r.payload), hex(pr.p), `${what}: probe payload`);
  };
  const kinds = ['randomEnvelope', 'structured', 'evenId', 'reusedId', 'streaming', 'unknownType', 'oversized', 'coalesced', 'hugeLength', 'garbage', 'truncated'] as const;
  const weights = [18, 22, 6, 6, 5, 8, 6, 10, 3, 3, 3];
  const total = weights.reduce((a, b) => a + b, 0);
  const choose = () => { let x = rnd.int(total); for (let i = 0; i < kinds.length; i++) { x -= weights[i]; if (x < 0) return kinds[i]; } return kinds[0]; };

  for (let c = 0; c < budget; c++) {
    if (Date.now() > deadline) throw new Error(`fuzz exceeded ${TIME_LIMIT_MS} ms`);
    const kind = choose();
    stats.byKind[kind] = (stats.byKind[kind] ?? 0) + 1;
    stats.cases++;
    const what = `case ${c} ${kind}`;
    switch (kind) {
      case 'randomEnvelope': {
        const id = odd();
        await send(encodeFrame(id, 1, 0, rnd.bytes(rnd.int(200))));
        const [f] = await expect(1, what);
        assert.is(f.streamId, id, what);
        assert.ok([Code.InvalidArgument, Code.Unimplemented].includes(codeOf(f)), `${what}: code ${codeOf(f)}`);
        break;
      }
      case 'structured': {
        const id = odd();
        const service = rnd.int(2) ? 'fuzz.Svc' : rnd.str(20);
        const method = rnd.pick(['Echo', 'Fail', 'Echo', rnd.str(10)]);
        const payload = rnd.bytes(rnd.int(300));
        const timeoutNano = rnd.pick([0, 0, 0, -1, -(2 ** 40), 1, 5e9, 2 ** 62]);
        const metadata = Array.from({ length: rnd.int(4) }, () => ({ key: rnd.str(8), value: rnd.str(8) }));
        await send(encodeFrame(id, 1, 0, encodeRequest({ service, method, payload, timeoutNano, metadata })));
        const [f] = await expect(1, what);
        assert.is(f.streamId, id, what);
        const code = codeOf(f);
        if (service !== 'fuzz.Svc' || (method !== 'Echo' && method !== 'Fail')) assert.is(code, Code.Unimplemented, what);
        else if (timeoutNano < 0) assert.is(code, Code.DeadlineExceeded, what);
        else if (method === 'Fail') assert.is(code, payload.length % 16 || Code.Unknown, what);
        else if (timeoutNano === 1) assert.ok(code === Code.OK || code === Code.DeadlineExceeded, what);
        else { assert.is(code, Code.OK, what); assert.is(hex(decodeResponse(f.payload).payload), hex(payload), what); }
        break;
      }
      case 'evenId': {
        const id = 2 * rnd.int(0x7fffffff);
        await send(encodeFrame(id, 1, 0, encodeRequest({ service: 'fuzz.Svc', method: 'Echo', payload: rnd.bytes(8) })));
        const [f] = await expect(1, what);
        assert.is(f.streamId, id, what);
        assert.is(codeOf(f), Code.InvalidArgument, what);
        break;
      }
      case 'reusedId': {
        if (lastUsed === 0) { const pr = probe(); await send(pr.buf); checkProbe((await expect(1, what))[0], pr, what); }
        const id = lastUsed - 2 * rnd.int(Math.min(3, (lastUsed + 1) / 2));
        await send(encodeFrame(id, 1, 0, encodeRequest({ service: 'fuzz.Svc', method: 'Echo', payload: rnd.bytes(8) })));
        const [f] = await expect(1, what);
        assert.is(f.streamId, id, what);
        assert.is(codeOf(f), Code.InvalidArgument, what);
        break;
      }
      case 'streaming': {
        const id = odd();
        await send(encodeFrame(id, 1, 1 + rnd.int(255), encodeRequest({ service: 'fuzz.Svc', method: 'Echo', payload: rnd.bytes(8) })));
        const [f] = await expect(1, what);
        assert.is(f.streamId, id, what);
        assert.is(codeOf(f), Code.Unimplemented, what);
        break;
      }
      case 'unknownType': {
        const type = rnd.pick([0, 2, 3, 4, 0x7f, 0xff]);
        const pr = probe();
        await send(Buffer.concat([encodeFrame(rnd.int(0x100000000), type, rnd.int(256), rnd.bytes(rnd.int(2000))), pr.buf]));
        checkProbe((await expect(1, what))[0], pr, what);
        break;
      }
      case 'oversized': {
        const id = rnd.int(0x100000000);
        const len = MAX + 1 + rnd.int(5000);
        const pr = probe();
        const hdr = Buffer.alloc(10);
        hdr.writeUInt32BE(len, 0); hdr.writeUInt32BE(id, 4); hdr[8] = rnd.pick([1, 1, 2, 3, 9]); hdr[9] = rnd.int(256);
        await send(Buffer.concat([hdr, rnd.bytes(len), pr.buf]));
        const [f, g] = await expect(2, what);
        assert.is(f.streamId, id, what);
        assert.is(codeOf(f), Code.ResourceExhausted, what);
        assert.match(status(f)!.message, new RegExp(`${len}.*${MAX}`), what);
        checkProbe(g, pr, what);
        break;
      }
      case 'coalesced': {
        const parts: Buffer[] = [];
        const checks: Array<(f: Frame) => void> = [];
        const k = 2 + rnd.int(6);
        for (let i = 0; i < k; i++) {
          const sub = rnd.int(4);
          if (sub === 0) { const pr = probe(); parts.push(pr.buf); checks.push((f) => checkProbe(f, pr, what)); }
          else if (sub === 1) { const id = odd(); parts.push(encodeFrame(id, 1, 0, rnd.bytes(rnd.int(50)))); checks.push((f) => { assert.is(f.streamId, id, what); assert.ok([Code.InvalidArgument, Code.Unimplemented].includes(codeOf(f)), what); }); }
          else if (sub === 2) { const id = odd(); const len = rnd.int(16); parts.push(encodeFrame(id, 1, 0, encodeRequest({ service: 'fuzz.Svc', method: 'Fail', payload: rnd.bytes(len) }))); checks.push((f) => { assert.is(f.streamId, id, what); assert.is(codeOf(f), len || Code.Unknown, what); }); }
          else { parts.push(encodeFrame(rnd.int(0x100000000), 3, rnd.int(256), rnd.bytes(rnd.int(30)))); }
        }
        await send(Buffer.concat(parts));
        const frames = await expect(checks.length, what);
        // answers come in completion order; every handler here completes synchronously-ish, so match by stream id
        const byId = new Map(frames.map((f) => [f.streamId, f]));
        assert.is(byId.size, checks.length, `${what}: distinct answers`);
        let i = 0;
        for (const part of parts) {
          if (part[8] !== 1) continue;
          const f = byId.get(part.readUInt32BE(4));
          assert.ok(f, `${what}: answer for stream ${part.readUInt32BE(4)}`);
          checks[i++](f!);
        }
        break;
      }
      case 'hugeLength': {
        const id = rnd.int(0x100000000);
        const hdr = Buffer.alloc(10);
        hdr.writeUInt32BE(MAX + 1 + rnd.int(0xffffffff - MAX), 0); hdr.writeUInt32BE(id, 4); hdr[8] = rnd.int(256); hdr[9] = rnd.int(256);
        await send(Buffer.concat([hdr, rnd.bytes(rnd.int(3000))]));
        const [f] = await expect(1, what);
        assert.is(f.streamId, id, what);
        assert.is(codeOf(f), Code.ResourceExhausted, what);
        await reconnect();
        break;
      }
      case 'garbage':
      case 'truncated': {
        const bytes = kind === 'garbage'
          ? rnd.bytes(1 + rnd.int(300))
          : (() => { const fr = encodeFrame(odd(), 1, 0, encodeRequest({ service: 'fuzz.Svc', method: 'Echo', payload: rnd.bytes(1 + rnd.int(500)) })); return fr.subarray(0, 1 + rnd.int(fr.length - 1)); })();
        await send(bytes);
        conn.socket.end();
        const closed = await conn.waitClosed(3000);
        assert.ok(closed, `${what}: server closed the connection after our end()`);
        for (const f of conn.frames.slice(seen)) assert.is(f.type, 2, `${what}: only responses`);
        if (kind === 'truncated') assert.is(conn.frames.length, seen, `${what}: no answer to a truncated frame`);
        stats.closedByServer++;
        await reconnect();
        break;
      }
    }
  }
  conn.destroy();
}

test(`fuzz: ${CASES} malformed/random cases over ${WORKERS} raw connections (seed ${SEED})`, async () => {
  const started = Date.now();
  const deadline = started + TIME_LIMIT_MS;
  const processErrors: unknown[] = [];
  const onProcErr = (e: unknown) => processErrors.push(e);
  process.on('uncaughtException', onProcErr);
  process.on('unhandledRejection', onProcErr);
  const serverErrors: Array<[string, unknown]> = [];
  const server = new Server({ maxMessageSize: MAX, onError: (e, where) => serverErrors.push([where, e]) });
  server.register('fuzz.Svc', {
    Echo: async (p) => p,
    Fail: async (p) => { const code = p.length % 16; if (code === 0) throw new Error('plain'); throw new TtrpcError(code, `code ${code}`); },
  });
  await server.listen(sock);

  // the well-behaved client, checking answers throughout
  const good = await Client.connect(sock);
  const grnd = new Rng(SEED ^ 0xabcdef);
  const goodFailures: string[] = [];
  let goodOk = 0;
  let stop = false;
  const goodLoop = async () => {
    while (!stop) {
      const p = grnd.bytes(grnd.int(4096));
      try {
        const r = await good.call('fuzz.Svc', 'Echo', p, { timeoutMs: 5000 });
        if (hex(r) !== hex(p)) goodFailures.push('payload mismatch'); else goodOk++;
      } catch (e) { goodFailures.push(String(e)); if (good.closed) return; }
    }
  };
  const loops = [goodLoop(), goodLoop(), goodLoop()];

  const stats: Stats = { cases: 0, byKind: {}, reconnects: 0, closedByServer: 0 };
  const per = Math.ceil(CASES / WORKERS);
  try {
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w, per, stats, deadline)));
  } catch (e) {
    // do not leave the server holding the process open after a failure
    stop = true;
    good.close();
    await server.close();
    throw e;
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  const duringOk = goodOk;

  // and after: the good connection and a fresh one still answer correctly
  for (let i = 0; i < 50; i++) assert.is(Buffer.from(await good.call('fuzz.Svc', 'Echo', Buffer.from(`after ${i}`))).toString(), `after ${i}`);
  const fresh = await Client.connect(sock);
  assert.is(Buffer.from(await fresh.call('fuzz.Svc', 'Echo', Buffer.from('fresh'))).toString(), 'fresh');
  fresh.close();
  await new Promise((r) => setTimeout(r, 50));
  assert.is(server.connectionCount, 1, 'only the good client remains connected');

  process.off('uncaughtException', onProcErr);
  process.off('unhandledRejection', onProcErr);
  good.close();
  await server.close();
  const took = Date.now() - started;
  console.log(`  fuzz: ${stats.cases} cases in ${took} ms, ${stats.reconnects} reconnects, ${stats.closedByServer} closed by server after end(), good client ${duringOk} ok during fuzz; kinds ${JSON.stringify(stats.byKind)}`);
  assert.equal(processErrors, [], 'no uncaught exceptions / unhandled rejections');
  assert.equal(serverErrors, [], 'server reported no internal errors');
  assert.equal(goodFailures, [], 'well-behaved client never failed');
  assert.ok(duringOk > 0, 'good client made progress during the fuzz');
  assert.ok(stats.cases >= CASES);
  assert.ok(took < TIME_LIMIT_MS + 2000);
});

test.after(() => tmp.remove());
test.run();
