// Typed services (src/service.ts) over a real Server and Client on a unix socket.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Client, Code, Server, TtrpcError, bytesCodec, defineService, serveService, serviceClient, type Codec } from '../src/index.js';
import { tempDir } from '../src/testing.js';

const tmp = tempDir();
const json = <T>(): Codec<T> => ({
  encode: (v) => new TextEncoder().encode(JSON.stringify(v)),
  decode: (b) => JSON.parse(new TextDecoder().decode(b)) as T,
});

const Calc = defineService('test.v1.Calc', {
  Add: { request: json<{ a: number; b: number }>(), response: json<{ sum: number }>() },
  Who: { request: json<Record<string, never>>(), response: json<{ user: string[]; deadline: boolean }>() },
  Raw: { request: bytesCodec, response: bytesCodec },
  Fail: { request: json<{ code: Code }>(), response: json<object>() },
});

async function pair(register: (s: Server) => void) {
  const server = new Server();
  register(server);
  const path = tmp.sock(`s${Math.random().toString(36).slice(2)}.sock`);
  await server.listen(path);
  const client = await Client.connect(path);
  return { server, client, close: async () => { client.close(); await server.close(); } };
}

test('a typed service: requests and responses through the codecs, context and errors as with register()', async () => {
  const p = await pair((s) => serveService(s, Calc, {
    Add: async ({ a, b }) => ({ sum: a + b }),
    Who: async (_req, ctx) => ({ user: ctx.metadata.get('user') ?? [], deadline: ctx.deadline !== undefined }),
    Raw: async (b) => b.slice().reverse(),
    Fail: async ({ code }) => { throw new TtrpcError(code, 'asked to fail'); },
  }));
  try {
    const calc = serviceClient(p.client, Calc);
    assert.equal(await calc.Add({ a: 2, b: 40 }), { sum: 42 });
    assert.equal(await calc.Who({}, { metadata: new Map([['user', ['x', 'y']]]), timeoutMs: 5000 }), { user: ['x', 'y'], deadline: true });
    assert.equal([...await calc.Raw(new Uint8Array([1, 2, 3]))], [3, 2, 1]);
    const err = await calc.Fail({ code: Code.PermissionDenied }).then(() => undefined, (e: unknown) => e);
    assert.instance(err, TtrpcError);
    assert.is((err as TtrpcError).code, Code.PermissionDenied);
    assert.is((err as TtrpcError).message, 'asked to fail');
    // the untyped call reaches the same method
    const sum = JSON.parse(Buffer.from(await p.client.call('test.v1.Calc', 'Add', Buffer.from('{"a":1,"b":1}'))).toString());
    assert.equal(sum, { sum: 2 });
  } finally {
    await p.close();
  }
});

test('a request that does not decode is answered Internal; a response that does not decode rejects Internal', async () => {
  const p = await pair((s) => {
    serveService(s, Calc, {
      Add: async () => ({ sum: 0 }), Who: async () => ({ user: [], deadline: false }), Raw: async (b) => b, Fail: async () => ({}),
    });
    s.register('test.v1.Liar', { Add: async () => new TextEncoder().encode('not json') });
  });
  try {
    const bad = await p.client.call('test.v1.Calc', 'Add', new TextEncoder().encode('{')).then(() => undefined, (e: unknown) => e as TtrpcError);
    assert.is(bad?.code, Code.Internal);
    assert.match(bad!.message, /^ttrpc: error unmarshalling payload: /);
    const liar = serviceClient(p.client, defineService('test.v1.Liar', { Add: Calc.methods.Add }));
    const e2 = await liar.Add({ a: 1, b: 2 }).then(() => undefined, (e: unknown) => e as TtrpcError);
    assert.is(e2?.code, Code.Internal);
    assert.match(e2!.message, /test\.v1\.Liar\/Add: error unmarshalling response/);
  } finally {
    await p.close();
  }
});

test('a missing method implementation is refused at registration, a request that does not encode is never sent', async () => {
  const server = new Server();
  // @ts-expect-error Raw and Fail are missing
  assert.throws(() => serveService(server, Calc, { Add: async () => ({ sum: 0 }), Who: async () => ({ user: [], deadline: false }) }), /test\.v1\.Calc\/Raw has no implementation/);
  await server.close();
  const p = await pair(() => {});
  try {
    const cyclic: { a: number; b: number; self?: unknown } = { a: 1, b: 2 };
    cyclic.self = cyclic;
    const err = await serviceClient(p.client, Calc).Add(cyclic).then(() => undefined, (e: unknown) => e as TtrpcError);
    assert.is(err?.code, Code.InvalidArgument);
    assert.match(err!.message, /cannot encode request/);
    assert.is(p.client.pendingCalls, 0);
  } finally {
    await p.close();
  }
});

test.after(() => tmp.remove());
test.run();
