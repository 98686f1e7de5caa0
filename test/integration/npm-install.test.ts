/**
 * Install like a Node tool (issue 13 part 2, ADR 0022): `npm pack` at the repository root, then
 * `npm install -g --prefix DIR ./tsshim-*.tgz` from the npm registry (no build step, no install
 * scripts: npm 11 skips them, koffi loads from its prebuilt binaries), then a real containerd
 * whose PATH starts with DIR/bin runs a container through the installed shim.
 *
 * Packs the build this test runs from (`--ignore-scripts` skips prepack's rebuild).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, importTestImage, startContainerd, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { containerdUnavailable, selectedContainerd } from '../helpers/containerd-version.js';
import { runCommand, runChecked, waitFor } from '../helpers/proc.js';
import { skipWithReason } from '../helpers/skip.js';
import { shimDaemons, taskStatus, TSSHIM } from '../helpers/tasks.js';

interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  files: Array<{ path: string; size: number }>;
}
interface Ctx {
  tmp: string;
  prefix: string;
  packed: Packed;
  cd?: PrivateContainerd;
}

const t = suite<Ctx>('npm-install');
const version = selectedContainerd();
const npmOk = (await runCommand('npm', ['--version']).catch(() => undefined))?.exitCode === 0;
const registry = npmOk ? await runCommand('npm', ['ping'], { timeoutMs: 60_000 }).catch((e: Error) => ({ exitCode: -1, stderr: e.message, stdout: '' })) : undefined;
const UNAVAILABLE =
  (process.getuid?.() !== 0 ? 'needs root (a private containerd)' : undefined) ??
  (!npmOk ? 'npm is not on PATH' : undefined) ??
  (registry && registry.exitCode !== 0 ? `the npm registry does not answer (npm ping: ${registry.stderr.trim().split('\n').pop()})` : undefined) ??
  containerdUnavailable(version);

const NAMES = [
  'the tarball: built dist, both bins, ttrpc-ts bundled; no tests, no source maps',
  'npm install -g puts containerd-shim-tsshim-v2 and tsshim on PATH (symlinks into the installed package), the CLI runs, a handler package beside it loads',
  'containerd runs a container through the installed shim: exit status 7, and the shim daemon is the installed one',
];

if (UNAVAILABLE) {
  for (const n of NAMES) skipWithReason(t, n, UNAVAILABLE);
} else {
  t.before(async (ctx) => {
    ctx.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsshim-npm-install-'));
    ctx.prefix = path.join(ctx.tmp, 'prefix');
    const out = await runChecked('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', ctx.tmp], { cwd: REPO_ROOT, timeoutMs: 120_000 });
    ctx.packed = (JSON.parse(out) as Packed[])[0]!;
    const started = Date.now();
    await runChecked('npm', ['install', '-g', '--prefix', ctx.prefix, '--no-audit', '--no-fund', `./${ctx.packed.filename}`], { cwd: ctx.tmp, timeoutMs: 600_000 });
    console.log(
      `tarball ${ctx.packed.filename}: ${(ctx.packed.size / 1024).toFixed(0)} KiB packed, ${(ctx.packed.unpackedSize / 1024).toFixed(0)} KiB unpacked, ` +
        `${ctx.packed.files.length} files; npm install -g took ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });
  t.after(async (ctx) => {
    await ctx.cd?.stop();
    if (ctx.tmp) fs.rmSync(ctx.tmp, { recursive: true, force: true });
  });

  t(NAMES[0]!, ({ packed }) => {
    const files = new Set(packed.files.map((f) => f.path));
    for (const f of [
      'package.json',
      'README.md',
      'bin/containerd-shim-tsshim-v2',
      'bin/tsshim',
      'dist/bundle/containerd-shim-tsshim-v2',
      'dist/bundle/main.js',
      'dist/src/cli/tsshim.js',
      'dist/bundle/handler.js', // tsshim/handler (ADR 0023)
      'dist/src/sdk/handler.d.ts',
      'node_modules/ttrpc-ts/package.json',
      'node_modules/ttrpc-ts/dist/src/index.js',
    ]) {
      assert.ok(files.has(f), `${f} is not in the tarball`);
    }
    const unwanted = [...files].filter((f) => /\.test\.js$|\.map$|\.ts$/.test(f) && !f.endsWith('.d.ts'));
    assert.equal(unwanted, [], 'tests, source maps or TypeScript sources in the tarball');
    assert.equal([...files].filter((f) => /^(dist\/(test|conformance|bench|demo)|test|src|packages)\//.test(f)), [], 'test/dev trees in the tarball');
  });

  t(NAMES[1]!, async ({ prefix, tmp }) => {
    const pkg = path.join(prefix, 'lib/node_modules/tsshim');
    for (const b of ['containerd-shim-tsshim-v2', 'tsshim']) {
      const link = path.join(prefix, 'bin', b);
      assert.ok(fs.lstatSync(link).isSymbolicLink(), `${link} is not a symlink`);
      assert.is(fs.realpathSync(link), path.join(pkg, 'bin', b));
    }
    // the bundled workspace package, not one fetched from the registry (ttrpc-ts is not published)
    assert.is(JSON.parse(fs.readFileSync(path.join(pkg, 'node_modules/ttrpc-ts/package.json'), 'utf8')).version, '0.1.0');
    const env = { ...process.env, PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}` };
    const v = await runCommand('tsshim', ['--version'], { env });
    assert.is(v.exitCode, 0, v.stderr);
    assert.is(v.stdout.trim(), `tsshim ${JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version}`);
    const rc = await runCommand('tsshim', ['config', 'runtimeclass', '--handlers', 'runc'], { env });
    assert.is(rc.exitCode, 0, rc.stderr);
    assert.match(rc.stdout, /kind: RuntimeClass/);
    // A handler package installed beside it (ADR 0023): found in the global node_modules tsshim lives in,
    // its `import 'tsshim/handler'` gets the installed bundle's.
    const probe = path.join(prefix, 'lib/node_modules/tsshim-handler-probe');
    fs.mkdirSync(probe, { recursive: true });
    fs.writeFileSync(path.join(probe, 'package.json'), JSON.stringify({ name: 'tsshim-handler-probe', type: 'module', exports: './index.js' }));
    fs.writeFileSync(
      path.join(probe, 'index.js'),
      "import { defineOciHandler, defineProfile } from 'tsshim/handler';\n" +
        "export default defineOciHandler({ apiVersion: 1, type: 'probe', summary: 'probe', profile: defineProfile({ name: 'runc', binary: 'runc', defaultRoot: '/run/containerd/runc' }), config: { description: 'probe', options: '' } });\n",
    );
    const cfg = path.join(tmp, 'probe.toml'); // outside the prefix: only the global lookup finds the package
    fs.writeFileSync(cfg, 'handler = "module:tsshim-handler-probe"\n');
    const doctor = await runCommand('tsshim', ['doctor', '--json', '--handler-config', cfg], { env: { ...env, TSSHIM_CONFIG: '/nonexistent/tsshim-test/config.toml' } });
    assert.is(doctor.exitCode, 0, doctor.stderr);
    const row = (JSON.parse(doctor.stdout) as { handlers: Array<{ type: string; usable: boolean; reason: string; module?: { path: string } }> }).handlers.find((h) => h.type === 'probe');
    assert.ok(row?.usable, JSON.stringify(row));
    assert.is(row!.module!.path, path.join(probe, 'index.js'));
  });

  t(NAMES[2]!, async (ctx) => {
    const bin = path.join(ctx.prefix, 'bin');
    ctx.cd = await startContainerd({ name: 'npm-install', pathFirst: [bin] });
    const cd = ctx.cd;
    const image = await importTestImage(cd);
    const id = uniqueId('npmi');
    // The container waits for /tmp/go, so its shim can be looked at while it runs.
    const run = cd.ctr(['run', '--rm', '--runtime', TSSHIM, image, id, 'sh', '-c', 'until [ -e /tmp/go ]; do sleep 0.1; done; exit 7'], { timeoutMs: 120_000 });
    let daemons: Array<{ pid: number }> = [];
    const seen = await waitFor(() => (daemons = shimDaemons(cd, [id])).length > 0, 60_000, 100);
    assert.ok(seen, `no shim daemon for ${id}; containerd log:\n${cd.logTail(30)}`);
    const argv = fs.readFileSync(`/proc/${daemons[0]!.pid}/cmdline`, 'utf8').split('\0');
    const entry = path.join(ctx.prefix, 'lib/node_modules/tsshim/dist/bundle/containerd-shim-tsshim-v2');
    assert.ok(argv.includes(entry), `the shim daemon runs ${argv.join(' ')}, not ${entry}`);
    assert.ok(await waitFor(async () => (await taskStatus(cd, id))?.status === 'RUNNING', 60_000, 100), `task ${id} never ran`);
    const exec = await cd.ctr(['task', 'exec', '--exec-id', 'go', id, 'touch', '/tmp/go']);
    assert.is(exec.exitCode, 0, exec.stderr);
    const r = await run;
    assert.is(r.exitCode, 7, `ctr run: ${r.stderr}`);
  });
}

t.run();
