/**
 * Handler packages through real containerd (ADR 0023): the example package examples/tsshim-handler-hooks,
 * built with tsc and named by package (`handler = "module:tsshim-handler-hooks"`, resolved from the
 * config file's directory like Node does), runs a container through ctr and its createRuntime and
 * poststop hooks run (their records name the container, its pid and the handler); broken modules
 * (one that throws on import, one of another handler API version, one not installed) fail their
 * own Create with the loader's message and status, while a task already served by the same shim
 * (one io.containerd.runc.v2.group) keeps running and execs; `tsshim doctor` reports both kinds;
 * and the kit (`tsshim conformance --handler-config`) passes a subset of the catalogue on the
 * example (the full catalogue's report is examples/tsshim-handler-hooks/conformance.md).
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { importTestImage, REPO_ROOT, startContainerd, TEST_BASE_DIR, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { buildPackage, linkPackageDeps, tsshimCli } from '../helpers/handler-package.js';
import { isAlive, waitFor } from '../helpers/proc.js';
import { bundleDir, shimPids, taskStatus, TSSHIM, waitNoLeftovers } from '../helpers/tasks.js';

const EXAMPLE = join(REPO_ROOT, 'examples', 'tsshim-handler-hooks');
const t = suite<{ cd: PrivateContainerd; image: string; dir: string }>('handler-package');

/** The kit's CI subset (the whole catalogue takes ~5 minutes here: its report is committed, examples/tsshim-handler-hooks/conformance.md). */
const KIT_SUBSET = ['run-exit-0', 'exec-output', 'events-run-order', 'cleanup-after-rm'];

t.before(async (ctx) => {
  linkPackageDeps(EXAMPLE);
  await buildPackage(EXAMPLE);
  ctx.dir = join(TEST_BASE_DIR, uniqueId('hpkg'));
  mkdirSync(join(ctx.dir, 'node_modules'), { recursive: true });
  // Installed beside the config, as `npm install` in /etc/tsshim would.
  symlinkSync(EXAMPLE, join(ctx.dir, 'node_modules', 'tsshim-handler-hooks'));
  const hook = (stage: string) =>
    `[[options.hooks.${stage}]]\npath = "/bin/sh"\nargs = ["sh", "-c", ${JSON.stringify(`s=$(cat); echo "${stage} $TSSHIM_HANDLER $s" >> ${join(ctx.dir, 'hooks.log')}`)}]\ntimeout = 10\n`;
  writeFileSync(join(ctx.dir, 'audited.toml'), `handler = "module:tsshim-handler-hooks"\nname = "tsshim-audited"\n\n${hook('createRuntime')}\n${hook('poststop')}`);
  writeFileSync(join(ctx.dir, 'runc.toml'), 'handler = "runc"\nname = "tsshim-runc"\n');
  writeFileSync(join(ctx.dir, 'broken.mjs'), 'throw new Error("this handler package is broken on purpose");\n');
  writeFileSync(join(ctx.dir, 'broken.toml'), 'handler = "module:./broken.mjs"\n');
  writeFileSync(join(ctx.dir, 'v2.mjs'), "export default { apiVersion: 2, type: 'future', summary: 'written for handler API 2' };\n");
  writeFileSync(join(ctx.dir, 'v2.toml'), 'handler = "module:./v2.mjs"\n');
  writeFileSync(join(ctx.dir, 'absent.toml'), 'handler = "module:@acme/tsshim-handler-absent"\n');
  ctx.cd = await startContainerd({ name: 'hpkg' });
  ctx.image = await importTestImage(ctx.cd);
});

t.after(async (ctx) => {
  await ctx.cd?.stop();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

const hookLines = (dir: string) => (existsSync(join(dir, 'hooks.log')) ? readFileSync(join(dir, 'hooks.log'), 'utf8').split('\n').filter(Boolean) : []);

t('the example package through ctr: its hooks are in the spec and run at create and after stop, naming the container, its pid and the handler', async ({ cd, image, dir }) => {
  const id = uniqueId('hooks');
  const r = await cd.ctr(['run', '-d', '--runtime', TSSHIM, '--runtime-config-path', join(dir, 'audited.toml'), image, id, 'sleep', '300']);
  assert.is(r.exitCode, 0, r.stderr);
  const row = await taskStatus(cd, id);
  assert.is(row?.status, 'RUNNING');
  const bundle = bundleDir(cd, id);
  // What the shim recorded: the package's own type, its file, the config's name.
  const recorded = JSON.parse(readFileSync(join(bundle, 'tsshim.json'), 'utf8')).handler;
  assert.is(recorded.type, 'hooks');
  assert.is(recorded.name, 'tsshim-audited');
  // The file as found from the config's directory (Node imports it by its real path).
  assert.is(recorded.module.path, join(dir, 'node_modules', 'tsshim-handler-hooks', 'dist', 'index.js'));
  assert.is(realpathSync(recorded.module.path), join(realpathSync(EXAMPLE), 'dist', 'index.js'));
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  assert.is(spec.hooks.createRuntime.length, 1);
  assert.ok(spec.hooks.createRuntime[0].env.includes('TSSHIM_HANDLER=tsshim-audited'), JSON.stringify(spec.hooks));
  // runc ran the createRuntime hook with the container's state on stdin.
  const created = hookLines(dir).filter((l) => l.startsWith('createRuntime tsshim-audited ') && l.includes(`"id":"${id}"`));
  assert.is(created.length, 1, hookLines(dir).join('\n'));
  assert.match(created[0]!, `"pid":${row!.pid}`);
  assert.match(created[0]!, `"bundle":"${bundle}"`);

  const shims = shimPids(cd, id);
  assert.is((await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id])).exitCode, 0);
  assert.ok(await waitFor(async () => (await taskStatus(cd, id))?.status === 'STOPPED', 10_000));
  assert.is((await cd.ctr(['task', 'rm', id])).exitCode, 0);
  assert.is((await cd.ctr(['c', 'rm', id])).exitCode, 0);
  const stopped = hookLines(dir).filter((l) => l.startsWith('poststop tsshim-audited ') && l.includes(`"id":"${id}"`));
  assert.is(stopped.length, 1, hookLines(dir).join('\n'));
  assert.equal(await waitNoLeftovers(cd, id, [row!.pid, ...shims]), []);
});

t('broken modules fail their own Create with the loader\'s error; the task the same shim serves keeps running and execs', async ({ cd, image, dir }) => {
  const group = uniqueId('g');
  const flags = ['--annotation', `io.containerd.runc.v2.group=${group}`];
  const a = uniqueId('keep');
  const r = await cd.ctr(['run', '-d', ...flags, '--runtime', TSSHIM, '--runtime-config-path', join(dir, 'runc.toml'), image, a, 'sleep', '300']);
  assert.is(r.exitCode, 0, r.stderr);
  const shims = shimPids(cd, a);
  assert.is(shims.length, 1);
  const pid = (await taskStatus(cd, a))!.pid;
  try {
    for (const [config, code, message] of [
      ['broken.toml', 'failed precondition', 'failed to load: this handler package is broken on purpose'],
      ['v2.toml', 'invalid argument', 'apiVersion 2 is not served by this tsshim (it serves handler API 1)'],
      ['absent.toml', 'failed precondition', 'not found: no @acme/tsshim-handler-absent in'],
    ] as const) {
      const b = uniqueId('bad');
      const run = await cd.ctr(['run', '--rm', ...flags, '--runtime', TSSHIM, '--runtime-config-path', join(dir, config), image, b, 'true']);
      assert.is.not(run.exitCode, 0, `${config}: ctr run succeeded`);
      assert.match(run.stderr, message, config);
      assert.match(run.stderr, join(dir, config), `${config}: the message names the config file`);
      assert.match(run.stderr, code, `${config}: status`);
      assert.equal(await waitNoLeftovers(cd, b), [], config);
      // The same shim daemon, still serving the group's other task.
      assert.equal(shimPids(cd, a), shims, `${config}: the shim`);
      assert.ok(isAlive(shims[0]!), `${config}: shim alive`);
      assert.is((await taskStatus(cd, a))?.status, 'RUNNING', `${config}: the other task`);
      const x = await cd.ctr(['task', 'exec', '--exec-id', uniqueId('x'), a, 'echo', 'alive']);
      assert.is(x.exitCode, 0, x.stderr);
      assert.is(x.stdout, 'alive\n');
    }
  } finally {
    await cd.ctr(['task', 'kill', '-s', 'SIGKILL', a]);
    await waitFor(async () => (await taskStatus(cd, a))?.status === 'STOPPED', 10_000);
    await cd.ctr(['task', 'rm', a]);
    await cd.ctr(['c', 'rm', a]);
  }
  assert.equal(await waitNoLeftovers(cd, a, [pid, ...shims]), []);
});

interface DoctorRow {
  type: string;
  runtimeEntry: string;
  usable: boolean;
  reason: string;
  config: string;
  module?: { specifier: string; path: string | null };
}

t('doctor: the package\'s row with its verdict, and a row and a problem line for each broken module', async ({ dir }) => {
  const env = { ...process.env, TSSHIM_CONFIG: '/nonexistent/tsshim-test/config.toml' };
  const json = await tsshimCli(['doctor', '--json', '--config-dir', dir], { env });
  assert.is(json.exitCode, 0, json.stderr); // the default (runc) is usable
  const report = JSON.parse(json.stdout) as { handlers: DoctorRow[]; problems: string[] };
  const hooks = report.handlers.find((h) => h.config === join(dir, 'audited.toml'))!;
  assert.ok(hooks, json.stdout);
  assert.is(hooks.type, 'hooks');
  assert.is(hooks.usable, true, hooks.reason);
  assert.match(hooks.reason, '2 hooks configured');
  assert.equal(hooks.module, { specifier: 'tsshim-handler-hooks', path: join(dir, 'node_modules', 'tsshim-handler-hooks', 'dist', 'index.js') });
  for (const [file, message] of [
    ['broken.toml', 'failed to load: this handler package is broken on purpose'],
    ['v2.toml', 'apiVersion 2 is not served'],
    ['absent.toml', 'not found: no @acme/tsshim-handler-absent'],
  ] as const) {
    const row = report.handlers.find((h) => h.config === join(dir, file));
    assert.ok(row, `${file}: no row`);
    assert.is(row!.usable, false);
    assert.match(row!.reason, message);
    assert.ok(report.problems.some((p) => p.includes(message) && p.includes(join(dir, file))), `${file}: problem line`);
  }
  const text = await tsshimCli(['doctor', '--config-dir', dir], { env });
  assert.is(text.exitCode, 0, text.stderr);
  assert.match(text.stdout, /^hooks \(module:tsshim-handler-hooks\)\s+tsshim-hooks\s+yes\s/m);
  assert.match(text.stdout, /^module:\.\/broken\.mjs\s+\S+\s+no\s+-\s+cannot be loaded \(problem below\)/m);
  assert.match(text.stdout, `problem: handler module "./broken.mjs" (${join(dir, 'broken.mjs')}, named in ${join(dir, 'broken.toml')}) failed to load: this handler package is broken on purpose`);
  // A broken module as the default handler: doctor says so and exits 1.
  const asDefault = await tsshimCli(['doctor'], { env: { ...process.env, TSSHIM_CONFIG: join(dir, 'broken.toml') } });
  assert.is(asDefault.exitCode, 1);
  assert.match(asDefault.stdout, 'NOT usable');
  assert.match(asDefault.stdout, 'its handler cannot be loaded');
});

t(`the kit on the example: tsshim conformance --handler-config kit.toml --scenarios ${KIT_SUBSET.join(',')}`, async ({ dir }) => {
  const out = join(dir, 'kit');
  const r = await tsshimCli(['conformance', '--handler-config', join(EXAMPLE, 'kit.toml'), '--scenarios', KIT_SUBSET.join(','), '--out', out, '--quiet'], { timeoutMs: 600_000 });
  assert.is(r.exitCode, 0, r.stdout + r.stderr);
  const report = JSON.parse(readFileSync(join(out, 'conformance.json'), 'utf8')) as { command: string; columns: Array<{ id: string; kind: string; available: boolean }>; cells: Array<{ scenario: string; column: string; status: string; detail: string }> };
  assert.equal(report.columns.map((c) => [c.id, c.kind, c.available]), [['reference', 'reference', true], ['hooks', 'handler', true]]);
  assert.match(report.command, 'tsshim conformance --handler-config');
  const mine = report.cells.filter((c) => c.column === 'hooks');
  assert.equal(mine.map((c) => c.scenario).sort(), [...KIT_SUBSET].sort());
  for (const c of mine) assert.is(c.status, 'pass', `${c.scenario}: ${c.detail}`);
  assert.ok(existsSync(join(out, 'conformance.md')) && existsSync(join(out, 'conformance.html')));
  assert.match(readFileSync(join(out, 'conformance.md'), 'utf8'), 'handlers under test (from handler config files, the kit): hooks 4 pass, 0 fail');
});

t.run();
