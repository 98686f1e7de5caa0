// Interop with Go's ttrpc (github.com/containerd/ttrpc, the module containerd itself uses): a small
// Go peer (test/go-peer, built here with `go build`) serves a service our Client calls, and calls
// the same service on our Server. Payloads are protobuf wrapper types, encoded by hand below.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { Client, Code, Server, TtrpcError, defineService, serveService, serviceClient, type Codec } from '../src/index.js';
import { tempDir } from '../src/testing.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/test
const source = path.resolve(here, '../../test/go-peer');
const binary = path.join(here, 'go-peer', 'ttrpc-interop-peer');
const hasGo = spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
const tmp = tempDir('ttrpc-interop-');

// --- protobuf wrapper types (field 1) ---
function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
  out.push(Number(v));
  return out;
}
function readVarint(b: Uint8Array, at: number): [bigint, number] {
  let v = 0n, shift = 0n, i = at;
  for (;;) { const x = b[i++]!; v |= BigInt(x & 0x7f) << shift; shift += 7n; if (x < 0x80) return [v, i]; }
}
/** Field 1 of a message holding only field 1 (absent = default). */
function field1(b: Uint8Array): { bytes?: Uint8Array; int?: bigint } {
  if (b.length === 0) return {};
  const [key, i] = readVarint(b, 0);
  if (key === 0x0an) { const [len, j] = readVarint(b, i); return { bytes: b.subarray(j, j + Number(len)) }; }
  if (key === 0x08n) return { int: readVarint(b, i)[0] };
  throw new Error(`unexpected key ${key}`);
}
const BytesValue: Codec<Uint8Array> = {
  encode: (v) => v.length === 0 ? new Uint8Array() : Uint8Array.from([0x0a, ...varint(BigInt(v.length)), ...v]),
  decode: (b) => field1(b).bytes ?? new Uint8Array(),
};
const StringValue: Codec<string> = {
  encode: (s) => BytesValue.encode(new TextEncoder().encode(s)),
  decode: (b) => new TextDecoder().decode(BytesValue.decode(b)),
};
const Int64Value: Codec<number> = {
  encode: (n) => n === 0 ? new Uint8Array() : Uint8Array.from([0x08, ...varint(BigInt(n))]),
  decode: (b) => Number(BigInt.asIntN(64, field1(b).int ?? 0n)),
};
const Int32Value = Int64Value;
const Empty: Codec<void> = { encode: () => new Uint8Array(), decode: () => undefined };

const Echo = defineService('ttrpc.interop.v1.Echo', {
  Echo: { request: BytesValue, response: BytesValue },
  Metadata: { request: StringValue, response: StringValue },
  Deadline: { request: Empty, response: Int64Value },
  Fail: { request: Int32Value, response: Empty },
});

async function codeOf(p: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, TtrpcError);
    return { code: (err as TtrpcError).code, message: (err as TtrpcError).message };
  }
  throw new Error('the call succeeded');
}

test.before(() => {
  if (!hasGo) return;
  // Go's build cache makes this a link step after the first run.
  const r = spawnSync('go', ['build', '-o', binary, '.'], {
    cwd: source, encoding: 'utf8',
    env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local', CGO_ENABLED: '0' },
  });
  if (r.status !== 0) throw new Error(`go build of the interop peer failed: ${r.stderr}`);
});
test.after(() => tmp.remove());

const goTest = hasGo ? test : test.skip;
if (!hasGo) console.log('SKIP: ttrpc-ts interop with Go ttrpc: `go` is not on PATH (the Go peer is built from test/go-peer)');

goTest('our Client -> Go ttrpc server: payloads, 1 MiB, metadata with several values, deadline, status codes, 64 calls at once', async () => {
  const sock = tmp.sock('go-server.sock');
  const peer: ChildProcess = spawn(binary, ['serve', sock], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      peer.stdout!.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
      peer.once('exit', (code) => reject(new Error(`Go peer exited ${code}`)));
    });
    const client = await Client.connect(sock);
    try {
      const echo = serviceClient(client, Echo);
      assert.is(new TextDecoder().decode(await echo.Echo(new TextEncoder().encode('hello from ts'))), 'hello from ts');
      const big = new Uint8Array(1 << 20).map((_, i) => (i * 13) & 0xff);
      assert.equal(Buffer.compare(Buffer.from(await echo.Echo(big)), Buffer.from(big)), 0);
      assert.is(await echo.Metadata('x-interop', { metadata: new Map([['X-Interop', ['one', 'two']]]) }), 'one,two');
      const left = await echo.Deadline(undefined, { timeoutMs: 3000 });
      assert.ok(left > 0 && left <= 3000, `deadline left ${left} ms`);
      assert.is(await echo.Deadline(undefined), -1, 'no timeout -> no deadline on the Go side');
      assert.equal(await codeOf(echo.Fail(Code.FailedPrecondition)), { code: Code.FailedPrecondition, message: 'interop failure 9' });
      const unknown = await codeOf(client.call(Echo.name, 'Frobnicate', new Uint8Array()));
      assert.is(unknown.code, Code.Unimplemented, unknown.message);
      const words = Array.from({ length: 64 }, (_, i) => `call-${i}`);
      const back = await Promise.all(words.map((w) => echo.Echo(new TextEncoder().encode(w))));
      assert.equal(back.map((b) => new TextDecoder().decode(b)), words);
    } finally {
      client.close();
    }
  } finally {
    peer.stdin!.end();
    await new Promise((r) => (peer.exitCode !== null ? r(undefined) : peer.once('exit', r)));
  }
});

goTest('Go ttrpc client -> our Server: what the Go client saw', async () => {
  const sock = tmp.sock('ts-server.sock');
  const server = new Server();
  serveService(server, Echo, {
    Echo: async (b) => b,
    Metadata: async (key, ctx) => (ctx.metadata.get(key) ?? []).join(','),
    Deadline: async (_req, ctx) => (ctx.deadline === undefined ? -1 : Math.round(ctx.deadline - Date.now())),
    Fail: async (code) => { throw new TtrpcError(code, `interop failure ${code}`); },
  });
  await server.listen(sock);
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(binary, ['call', sock], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      c.stdout.on('data', (d) => (text += d));
      c.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`Go client exited ${code}: ${text}`))));
    });
    const seen = JSON.parse(out);
    const ok = { code: 0, message: '' };
    assert.is(seen.echo, 'hello from go');
    assert.equal(seen.echoStatus, ok);
    assert.is(seen.largeSame, true);
    assert.equal(seen.largeStatus, ok);
    assert.is(seen.metadata, 'a,b');
    assert.ok(seen.deadlineLeftMs > 0 && seen.deadlineLeftMs <= 3000, `deadline left ${seen.deadlineLeftMs} ms`);
    assert.equal(seen.deadlineStatus, ok);
    assert.equal(seen.fail, { code: Code.NotFound, message: 'interop failure 5' });
    assert.is(seen.unknownMethod.code, Code.Unimplemented);
    assert.match(seen.unknownMethod.message, /Frobnicate/);
    assert.is(seen.unknownService.code, Code.Unimplemented);
    assert.match(seen.unknownService.message, /ttrpc\.interop\.v1\.Nope/);
    assert.is(seen.parallelMatched, 64);
  } finally {
    await server.close();
  }
});

test.run();
