/**
 * `tsshim new-handler`: the package it scaffolds builds with tsc against tsshim/handler's types (and
 * a definition of another API version does not), doctor loads it, and it passes a subset of the kit
 * through a private containerd. No registry: node_modules links stand in for `npm install`
 * (test/helpers/handler-package.ts).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT, TEST_BASE_DIR, uniqueId } from '../helpers/containerd.js';
import { buildPackage, linkPackageDeps, tsshimCli } from '../helpers/handler-package.js';

const t = suite<{ dir: string; pkg: string }>('new-handler');
const KIT_SUBSET = ['run-exit-0', 'exit-code-42', 'exec-output'];

t.before((ctx) => {
  ctx.dir = join(TEST_BASE_DIR, uniqueId('newh'));
  mkdirSync(ctx.dir, { recursive: true });
  ctx.pkg = join(ctx.dir, 'tsshim-handler-demo');
});
t.after((ctx) => {
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

t('bad names and a non-empty directory are refused', async ({ dir }) => {
  for (const [name, code, msg] of [
    ['runc', 2, 'is a built-in handler type'],
    ['Bad_Name', 2, 'must match'],
  ] as const) {
    const r = await tsshimCli(['new-handler', name, '--dir', join(dir, name)]);
    assert.is(r.exitCode, code, r.stderr);
    assert.match(r.stderr, msg);
  }
  mkdirSync(join(dir, 'full'));
  writeFileSync(join(dir, 'full', 'x'), '');
  const full = await tsshimCli(['new-handler', 'demo', '--dir', join(dir, 'full')]);
  assert.is(full.exitCode, 1);
  assert.match(full.stderr, 'exists and is not empty');
  assert.is((await tsshimCli(['new-handler'])).exitCode, 2);
});

t('scaffold: an ES module package depending on tsshim, a definition through tsshim/handler, a config, a README', async ({ pkg }) => {
  const r = await tsshimCli(['new-handler', 'demo', '--dir', pkg]);
  assert.is(r.exitCode, 0, r.stderr);
  const json = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  assert.is(json.name, 'tsshim-handler-demo');
  assert.is(json.type, 'module');
  assert.is(json.devDependencies.tsshim, `file:${REPO_ROOT.replace(/\/$/, '')}`);
  assert.equal(json.peerDependenciesMeta, { tsshim: { optional: true } });
  assert.is(json.exports['.'].default, './dist/index.js');
  const src = readFileSync(join(pkg, 'src', 'index.ts'), 'utf8');
  assert.match(src, "from 'tsshim/handler'");
  assert.match(src, 'apiVersion: 1');
  assert.not.match(src, /from '(\.\.\/)+|tsshim\/dist/);
  assert.match(readFileSync(join(pkg, 'demo.toml'), 'utf8'), 'handler = "module:./dist/index.js"');
  assert.ok(existsSync(join(pkg, 'README.md')));
});

t('it builds with tsc against the published types; a definition for another API version does not type-check', async ({ pkg }) => {
  linkPackageDeps(pkg);
  await buildPackage(pkg);
  assert.ok(existsSync(join(pkg, 'dist', 'index.js')) && existsSync(join(pkg, 'dist', 'index.d.ts')));
  const src = join(pkg, 'src', 'index.ts');
  const good = readFileSync(src, 'utf8');
  writeFileSync(src, good.replace('apiVersion: 1', 'apiVersion: 2'));
  try {
    const e = await buildPackage(pkg).then(
      () => undefined,
      (err: Error) => err,
    );
    assert.ok(e, 'tsc accepted apiVersion: 2');
    assert.match(e!.message, /error TS2322: Type '2' is not assignable to type '1'/);
  } finally {
    writeFileSync(src, good);
    await buildPackage(pkg);
  }
});

t('doctor loads it: usable here, from its config', async ({ pkg }) => {
  const r = await tsshimCli(['doctor', '--json', '--handler-config', join(pkg, 'demo.toml')], { env: { ...process.env, TSSHIM_CONFIG: '/nonexistent/tsshim-test/config.toml' } });
  assert.is(r.exitCode, 0, r.stderr);
  const row = (JSON.parse(r.stdout) as { handlers: Array<{ type: string; usable: boolean; reason: string; config: string }> }).handlers.find((h) => h.config === join(pkg, 'demo.toml'));
  assert.is(row?.type, 'demo');
  assert.is(row?.usable, true, row?.reason);
});

t(`it passes the kit: tsshim conformance --handler-config demo.toml --scenarios ${KIT_SUBSET.join(',')}`, async ({ pkg }) => {
  const config = join(pkg, 'demo.toml');
  const out = join(pkg, 'conformance');
  const r = await tsshimCli(['conformance', '--handler-config', config, '--scenarios', KIT_SUBSET.join(','), '--out', out, '--quiet'], { timeoutMs: 600_000, cwd: pkg });
  assert.is(r.exitCode, 0, r.stdout + r.stderr);
  const report = JSON.parse(readFileSync(join(out, 'conformance.json'), 'utf8')) as { columns: Array<{ id: string; available: boolean }>; cells: Array<{ scenario: string; column: string; status: string; detail: string }> };
  assert.equal(report.columns.map((c) => [c.id, c.available]), [['reference', true], ['demo', true]]);
  const mine = report.cells.filter((c) => c.column === 'demo');
  assert.is(mine.length, KIT_SUBSET.length);
  for (const c of mine) assert.is(c.status, 'pass', `${c.scenario}: ${c.detail}`);
});

t.run();
