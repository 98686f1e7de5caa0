/**
 * Handler packages (handler = "module:..."): resolution like Node's (package in node_modules up from
 * the config's directory, then the global dirs; "exports" conditions, "main", a directory's entry,
 * relative and absolute paths), the checks a loaded definition passes (the built-ins' own shape
 * check, the API version, no built-in's type), the error kinds and messages of every failure, and
 * the resolver serving a module handler (its type and file recorded in the bundle) while a broken
 * one fails only its own Create. Real modules on disk, importing tsshim/handler through a
 * node_modules/tsshim link to this repository, exactly as a package does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { Code } from 'ttrpc-ts';
import { ShimError, toStatus } from '../shim-api/errors.js';
import { HANDLER_API_VERSION, definitionProblems } from '../shim-api/definition.js';
import type { HandlerContext } from '../shim-api/handler.js';
import { packAny, runtimeOptions, TYPE_URL } from '../shim-api/pb.js';
import { parseConfig } from './config.js';
import { bindHandler, globalModuleDirs, loadHandlerModule, resolveHandlerModule } from './handler-module.js';
import { registry } from './registry.js';
import { BUNDLE_STATE_FILE, ConfiguredResolver } from './resolver.js';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tsshim-hmod-')));
const write = (rel: string, text: string) => {
  const f = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text);
  return f;
};
// Modules here import tsshim/handler as a package does: through node_modules/tsshim.
fs.mkdirSync(path.join(tmp, 'node_modules'), { recursive: true });
fs.symlinkSync(REPO_ROOT, path.join(tmp, 'node_modules', 'tsshim'));

/** A handler package's source: a definition whose factory records what it was given. */
const definitionSource = (type: string, extra = '') => `
import { defineHandler, HANDLER_API_VERSION, verdict, factOf, unimplemented } from 'tsshim/handler';
export const created = [];
export default defineHandler({
  apiVersion: 1,
  type: ${JSON.stringify(type)},
  summary: 'test handler ${type}',
  binary: 'true',
  supports: ['create', 'start', 'kill', 'delete', 'state'],
  defaultConfig: { description: 'test', settings: '', options: '' },
  binariesFor: () => ['true'],
  assess: (facts) => verdict({ type: ${JSON.stringify(type)}, runtimeEntry: 'tsshim-${type}' }, factOf(facts, 'true'), true, 'test'),
  factory: async () => ({
    type: ${JSON.stringify(type)},
    create(config) {
      if (config.options.refuse) throw unimplemented('refused by ' + config.name);
      created.push(config);
      return { name: config.name };
    },
    async cleanup() { return { pid: 0, exitStatus: 137 }; },
  }),
  ${extra}
});
`;

const ctx = { log: pino({ level: 'silent' }) } as unknown as HandlerContext;
const ref = (specifier: string, base = tmp) => ({ specifier, base });
async function rejects(p: Promise<unknown>, kind: ShimError['kind'], ...messages: Array<string | RegExp>): Promise<ShimError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, ShimError, String(e));
    assert.is((e as ShimError).kind, kind, (e as Error).message);
    for (const m of messages) assert.match((e as Error).message, m);
    return e as ShimError;
  }
  assert.unreachable(`resolved, expected ${kind}`);
  throw new Error('unreachable');
}

test('config: "module:<specifier>" keeps the specifier and the file\'s directory; bad forms are InvalidArgument', () => {
  const c = parseConfig('handler = "module:@acme/tsshim-handler-foo"\n[options]\nx = 1\n', '/etc/tsshim/foo.toml', '/etc/tsshim');
  assert.equal(c.handler.module, { specifier: '@acme/tsshim-handler-foo', base: '/etc/tsshim' });
  assert.is(c.handler.type, 'module:@acme/tsshim-handler-foo');
  assert.is(parseConfig('handler = "module:/opt/h/index.js"\n', 'runtime options ConfigBody').handler.module?.specifier, '/opt/h/index.js');
  for (const [body, msg] of [
    ['handler = "module:./x.js"\n', 'is no file to be relative to'],
    ['handler = "module:"\n', 'name a package'],
    ['handler = "module:https://example.com/x.js"\n', 'URLs are not loaded'],
    ['handler = "Module:x"\n', '"module:<package or path>"'],
  ] as const) {
    try {
      parseConfig(body, 'runtime options ConfigBody');
      assert.unreachable(body);
    } catch (e) {
      assert.is((e as ShimError).kind, 'InvalidArgument', body);
      assert.match((e as Error).message, msg);
    }
  }
});

test('resolution: node_modules up from the config dir, exports conditions, main, directories, relative and absolute paths', async () => {
  write('cfg/deep/node_modules/pkg-exports/package.json', JSON.stringify({ name: 'pkg-exports', exports: { '.': { require: './no.cjs', import: './yes.js' }, './sub': './sub.js' } }));
  write('cfg/deep/node_modules/pkg-exports/yes.js', '');
  write('cfg/deep/node_modules/pkg-exports/sub.js', '');
  write('cfg/node_modules/@acme/pkg-main/package.json', JSON.stringify({ name: '@acme/pkg-main', main: 'lib/entry' }));
  write('cfg/node_modules/@acme/pkg-main/lib/entry.js', '');
  write('node_modules/pkg-index/index.js', '');
  write('node_modules/pkg-string/package.json', JSON.stringify({ exports: './main.js' }));
  write('node_modules/pkg-string/main.js', '');
  write('node_modules/pkg-star/package.json', JSON.stringify({ exports: { './handlers/*': { node: './dist/*.js' } } }));
  write('node_modules/pkg-star/dist/a.js', '');
  write('cfg/local/handler.js', '');
  write('dirpkg/package.json', JSON.stringify({ exports: { default: './d.js' } }));
  write('dirpkg/d.js', '');
  const deep = path.join(tmp, 'cfg', 'deep');
  const cases: Array<[string, string, string]> = [
    ['pkg-exports', deep, 'cfg/deep/node_modules/pkg-exports/yes.js'],
    ['pkg-exports/sub', deep, 'cfg/deep/node_modules/pkg-exports/sub.js'],
    ['@acme/pkg-main', deep, 'cfg/node_modules/@acme/pkg-main/lib/entry.js'],
    ['pkg-index', deep, 'node_modules/pkg-index/index.js'],
    ['pkg-string', deep, 'node_modules/pkg-string/main.js'],
    ['pkg-star/handlers/a', deep, 'node_modules/pkg-star/dist/a.js'],
    ['../local/handler.js', deep, 'cfg/local/handler.js'],
    [path.join(tmp, 'dirpkg'), '/', 'dirpkg/d.js'],
  ];
  for (const [spec, base, want] of cases) assert.is(await resolveHandlerModule(ref(spec, base), 'test.toml'), path.join(tmp, want), spec);

  await rejects(resolveHandlerModule(ref('pkg-exports/nope', deep), 'x.toml'), 'FailedPrecondition', '"exports" has no entry ./nope');
  await rejects(resolveHandlerModule(ref('./missing.js'), 'x.toml'), 'FailedPrecondition', 'not found', path.join(tmp, 'missing.js'), 'fix "handler" in x.toml');
  const missing = await rejects(resolveHandlerModule(ref('@acme/absent', deep), 'x.toml'), 'FailedPrecondition', 'not found: no @acme/absent in');
  // It says where it looked: every node_modules up from the config dir, then the global ones.
  for (const d of [path.join(deep, 'node_modules'), path.join(tmp, 'node_modules'), ...(await globalModuleDirs())]) assert.match(missing.message, d);
  write('node_modules/unbuilt/package.json', JSON.stringify({ main: 'dist/index.js', exports: './dist/index.js' }));
  await rejects(resolveHandlerModule(ref('unbuilt'), 'x.toml'), 'FailedPrecondition', 'which does not exist (not built?');
  await rejects(resolveHandlerModule(ref('Not A Name!'), 'x.toml'), 'InvalidArgument', 'neither a path nor a package name');
  // The global dirs: $npm_config_prefix/lib/node_modules and node's own prefix.
  const g = await globalModuleDirs({ npm_config_prefix: '/opt/npm-global' });
  assert.ok(g.includes('/opt/npm-global/lib/node_modules'), g.join());
  assert.ok(g.includes(path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules')), g.join());
});

test('loading: a valid package binds to its own type and name, once per file; every broken module is a clear error of its kind', async () => {
  write('node_modules/tsshim-handler-good/package.json', JSON.stringify({ name: 'tsshim-handler-good', type: 'module', exports: './index.js' }));
  write('node_modules/tsshim-handler-good/index.js', definitionSource('good'));
  const cfg = parseConfig('handler = "module:tsshim-handler-good"\n', path.join(tmp, 'good.toml'), tmp);
  const bound = await bindHandler(cfg.handler, cfg.source, registry);
  assert.is(bound.definition.type, 'good');
  assert.is(bound.definition.apiVersion, HANDLER_API_VERSION);
  assert.equal(definitionProblems(bound.definition), []);
  assert.equal(bound.config, {
    type: 'good',
    name: 'good',
    binary: undefined,
    root: undefined,
    options: {},
    module: { specifier: 'tsshim-handler-good', base: tmp, path: path.join(tmp, 'node_modules/tsshim-handler-good/index.js') },
  });
  const named = parseConfig('handler = "module:tsshim-handler-good"\nname = "tsshim-good-a"\n', 'x', tmp);
  assert.is((await bindHandler(named.handler, 'x', registry)).config.name, 'tsshim-good-a');
  assert.is((await loadHandlerModule({ specifier: 'tsshim-handler-good', base: tmp }, 'x', registry)).definition, bound.definition, 'loaded once');

  const broken: Array<[string, string, ShimError['kind'], Array<string | RegExp>]> = [
    ['throws.mjs', 'throw new Error("boom at import");', 'FailedPrecondition', ['failed to load: boom at import', path.join(tmp, 'throws.mjs')]],
    ['syntax.mjs', 'export default {', 'FailedPrecondition', ['failed to load:']],
    ['bad-import.mjs', 'import "tsshim-handler-absent-dep";\nexport default {};', 'FailedPrecondition', ['failed to load: ', 'tsshim-handler-absent-dep']],
    ['nodefault.mjs', 'export const definition = 1;', 'InvalidArgument', ['has no default export', 'its exports: definition']],
    ['shape.mjs', 'export default { apiVersion: 1, type: "shape", summary: "s" };', 'InvalidArgument', ['not a valid handler definition', 'binary must be a non-empty string', 'factory must be a function']],
    ['v2.mjs', definitionSource('v2').replace('apiVersion: 1', 'apiVersion: 2'), 'FailedPrecondition', []],
    ['v2plain.mjs', 'export default { apiVersion: 2, type: "v2plain" };', 'InvalidArgument', [`apiVersion 2 is not served by this tsshim (it serves handler API ${HANDLER_API_VERSION})`]],
    ['noversion.mjs', definitionSource('nov').replace('apiVersion: 1,', ''), 'FailedPrecondition', []],
    ['badtype.mjs', 'export default { apiVersion: 1, type: "Bad Type" };', 'InvalidArgument', ['type "Bad Type" must be a string matching']],
    ['builtin.mjs', definitionSource('runc'), 'InvalidArgument', ['declares handler type "runc"', "which is tsshim's built-in runc"]],
  ];
  for (const [file, source, kind, messages] of broken) {
    write(file, source);
    const c = parseConfig(`handler = "module:./${file}"\n`, path.join(tmp, 'b.toml'), tmp);
    if (file === 'v2.mjs' || file === 'noversion.mjs') {
      // defineHandler refuses at the module's own import: its check runs inside the package.
      await rejects(bindHandler(c.handler, c.source, registry), kind, 'failed to load:', file === 'v2.mjs' ? 'apiVersion 2 is not served' : 'apiVersion is missing');
      continue;
    }
    const e = await rejects(bindHandler(c.handler, c.source, registry), kind, ...messages);
    assert.match(e.message, `handler module "./${file}"`);
    // The one error-to-code map: FailedPrecondition 9, InvalidArgument 3.
    assert.is(toStatus(e).code, kind === 'FailedPrecondition' ? Code.FailedPrecondition : Code.InvalidArgument);
  }
});

test('resolver: a module handler serves and is recorded in the bundle; a broken one fails its own Create only; errors thrown by the package keep their code', async () => {
  const good = write('pkg/good2/index.mjs', definitionSource('good2'));
  write('pkg/broken.mjs', 'throw new Error("broken on purpose");');
  const r = new ConfiguredResolver(registry, ctx);
  const sel = (toml: string, id: string) => {
    const bundle = fs.mkdtempSync(path.join(tmp, 'b-'));
    const file = write(`cfg-${id}.toml`, toml);
    const options = packAny(TYPE_URL.RuntimeOptions, runtimeOptions.Options, { typeUrl: '', configPath: file, configBody: new Uint8Array() });
    return { options, annotations: {}, bundle, id };
  };
  const s1 = sel('handler = "module:./pkg/good2/index.mjs"\nname = "tsshim-good2"\n', 'c1');
  const h = await r.resolve(s1);
  assert.is(h.name, 'tsshim-good2');
  const recorded = JSON.parse(fs.readFileSync(path.join(s1.bundle, BUNDLE_STATE_FILE), 'utf8')).handler;
  assert.is(recorded.type, 'good2');
  assert.is(recorded.module.path, good);
  // The bundle's record is enough to find it again (delete, node mode's restarted worker).
  assert.is(await r.forBundle(s1.bundle), h);
  assert.equal(await r.cleanup(s1.bundle, 'c1'), { pid: 0, exitStatus: 137 });

  await rejects(r.resolve(sel('handler = "module:./pkg/broken.mjs"\n', 'c2')), 'FailedPrecondition', 'broken on purpose');
  await rejects(r.resolve(sel('handler = "module:./pkg/absent.mjs"\n', 'c3')), 'FailedPrecondition', 'not found');
  // ... and the resolver serves on.
  assert.is(await r.resolve(sel('handler = "module:./pkg/good2/index.mjs"\nname = "tsshim-good2"\n', 'c4')), h);

  // An error the package throws is its copy's ShimError (the bundle's, here): the code survives.
  const e = await r.resolve(sel('handler = "module:./pkg/good2/index.mjs"\n[options]\nrefuse = true\n', 'c5')).then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.ok(e instanceof Error, String(e));
  assert.not.instance(e, ShimError, 'another copy of errors.ts (the bundle, through tsshim/handler)');
  assert.is(toStatus(e).code, Code.Unimplemented);
  assert.match(toStatus(e).message, 'refused by good2');
});

test('built-in definitions pass the same check, declare this API version', () => {
  for (const d of registry) {
    assert.equal(definitionProblems(d), [], d.type);
    assert.is(d.apiVersion, HANDLER_API_VERSION);
  }
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test.run();
