// `npm pack` gives a tarball another project installs (offline: ttrpc-ts has no runtime
// dependencies) and uses from plain JavaScript, with types a TypeScript project checks against.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../src/testing.js';
import { Code } from '../src/index.js';

const run = promisify(execFile);
const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = tempDir('ttrpc-ts-pack-');
const project = path.join(tmp.dir, 'consumer');
let packed: { filename: string; files: Array<{ path: string }>; size: number };

test.before(async () => {
  // --ignore-scripts: pack the build this test runs from (prepack would rebuild it).
  const r = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp.dir], { cwd: pkgDir });
  packed = JSON.parse(r.stdout)[0];
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(tmp.dir, packed.filename)], { cwd: project });
});
test.after(() => tmp.remove());

test('the tarball holds the compiled library, its types and README; no tests', () => {
  const files = packed.files.map((f) => f.path);
  for (const f of ['package.json', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/server.js', 'dist/src/client.js', 'dist/src/testing.js']) {
    assert.ok(files.includes(f), `${f} missing from ${files.join(' ')}`);
  }
  assert.equal(files.filter((f) => /test|\.map$|\.ts$/.test(f) && !f.endsWith('.d.ts') && f !== 'dist/src/testing.js'), []);
  const installed = fs.readdirSync(path.join(project, 'node_modules')).filter((n) => !n.startsWith('.'));
  assert.equal(installed, ['ttrpc-ts'], 'no runtime dependencies came along');
});

test('plain JavaScript in another project: a server and a client round trip through the installed package', async () => {
  fs.writeFileSync(path.join(project, 'main.js'), `
    import { Server, Client, Code, TtrpcError } from 'ttrpc-ts';
    import { tmpdir } from 'node:os';
    import { join } from 'node:path';
    const sock = join(process.argv[2], 'greeter.sock');
    const server = new Server();
    server.register('demo.v1.Greeter', {
      Hello: async (payload, ctx) => new TextEncoder().encode('hello ' + new TextDecoder().decode(payload) + ' from ' + ctx.metadata.get('who')),
      Fail: async () => { throw new TtrpcError(Code.NotFound, 'no such greeting'); },
    });
    await server.listen(sock);
    const client = await Client.connect(sock);
    const reply = await client.call('demo.v1.Greeter', 'Hello', new TextEncoder().encode('js'), { metadata: { who: 'consumer' }, timeoutMs: 5000 });
    const failed = await client.call('demo.v1.Greeter', 'Fail', new Uint8Array()).catch((e) => e);
    client.close();
    await server.close();
    console.log(JSON.stringify({ reply: new TextDecoder().decode(reply), code: failed.code, message: failed.message, isError: failed instanceof TtrpcError }));
  `);
  const r = await run(process.execPath, ['main.js', tmp.dir], { cwd: project });
  assert.equal(JSON.parse(r.stdout), { reply: 'hello js from consumer', code: Code.NotFound, message: 'no such greeting', isError: true });
});

test('TypeScript in another project type-checks against the installed declarations (typed service stubs)', async () => {
  const require = createRequire(import.meta.url);
  const tsc = require.resolve('typescript/bin/tsc');
  const typeRoots = path.dirname(path.dirname(require.resolve('@types/node/package.json')));
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [typeRoots] },
    files: ['typed.ts'],
  }));
  fs.writeFileSync(path.join(project, 'typed.ts'), `
    import { Client, defineService, serviceClient, type Codec } from 'ttrpc-ts';
    const json = <T>(): Codec<T> => ({ encode: (v) => new TextEncoder().encode(JSON.stringify(v)), decode: (b) => JSON.parse(new TextDecoder().decode(b)) as T });
    const Calc = defineService('demo.v1.Calc', { Add: { request: json<{ a: number; b: number }>(), response: json<{ sum: number }>() } });
    export async function add(client: Client): Promise<number> {
      const calc = serviceClient(client, Calc);
      // @ts-expect-error b must be a number: the stubs are typed from the definition
      await calc.Add({ a: 1, b: 'two' });
      return (await calc.Add({ a: 1, b: 2 }, { timeoutMs: 1000 })).sum;
    }
  `);
  const r = await run(process.execPath, [tsc, '-p', project]).then(() => ({ code: 0, out: '' }), (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }));
  assert.is(r.code, 0, r.out);
});

test.run();
