// `containerd-shim-tsshim-v2 -info`, run as containerd 2.x runs it (core/runtime/v2/task_manager.go:
// no bundle, no namespace, the runtime options Any on stdin): a RuntimeInfo whose features are the
// selected handler's backend's own document, compared with what that backend prints itself.
// This checkout's shim (bin/), whatever is on PATH.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/proc.js';
import { containerdRelease, containerdUnavailable } from '../helpers/containerd-version.js';
import { skipWithReason } from '../helpers/skip.js';
import { Any, introspection, packAny, runtimeOptions, TYPE_URL } from '../../src/shim-api/pb.js';
import { RUNTIME_TYPE } from '../../src/shim-api/runtime-type.js';

const SHIM = join(REPO_ROOT, 'bin', 'containerd-shim-tsshim-v2');
const dir = mkdtempSync('/tmp/tsshim-info-');

function info(stdin: Uint8Array): { status: number | null; info?: introspection.RuntimeInfo; stderr: string } {
  const r = spawnSync(SHIM, ['-info'], { input: stdin, timeout: 60_000 });
  const stderr = r.stderr.toString();
  return { status: r.status, stderr, ...(r.status === 0 ? { info: introspection.RuntimeInfo.decode(r.stdout) } : {}) };
}

/** The runtime options containerd 2.x's CRI sends for a tsshim runtime entry: runtimeoptions.v1.Options{ConfigPath}. */
function withConfig(name: string, toml: string): Uint8Array {
  const p = join(dir, `${name}.toml`);
  writeFileSync(p, toml);
  return Any.encode(packAny(TYPE_URL.RuntimeOptions, runtimeOptions.Options, runtimeOptions.Options.fromPartial({ configPath: p }))).finish();
}

function featuresOf(i: introspection.RuntimeInfo | undefined): unknown {
  assert.ok(i?.features, 'features present');
  assert.is(i!.features!.typeUrl, TYPE_URL.OciFeatures);
  return JSON.parse(Buffer.from(i!.features!.value).toString('utf8'));
}

/** Lists of strings sorted (youki prints its capability set in hash order, different on every run). */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.every((x) => typeof x === 'string') ? [...v].sort() : v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, canonical(x)]));
  return v;
}

function backendFeatures(bin: string): unknown {
  const r = spawnSync(bin, ['features'], { encoding: 'utf8', timeout: 30_000 });
  assert.is(r.status, 0, `${bin} features: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const haveRunc = spawnSync('runc', ['--version']).status === 0;

if (!haveRunc) skipWithReason(test, '-info without options: the default (runc) handler, runc features', 'runc is not installed');
else
  test('-info without options: the default (runc) handler, runc features', () => {
    const r = info(new Uint8Array(0));
    assert.is(r.status, 0, r.stderr);
    assert.is(r.info!.name, RUNTIME_TYPE);
    assert.ok(r.info!.version?.version, 'version');
    assert.is(r.info!.options, undefined);
    assert.is(r.info!.annotations['io.tsshim.info.handler-type'], 'runc');
    assert.equal(featuresOf(r.info), backendFeatures('runc'));
    assert.ok((featuresOf(r.info) as { mountOptions: string[] }).mountOptions.includes('rro'), 'runc lists rro');
  });

if (!haveRunc) skipWithReason(test, '-info with ConfigPath: that handler; options echoed; binary override honoured', 'runc is not installed');
else
  test('-info with ConfigPath: that handler; options echoed; binary override honoured', () => {
    const opts = withConfig('runc', 'handler = "runc"\nname = "tsshim-runc"\nbinary = "/usr/sbin/runc"\n');
    const r = info(opts);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.info!.annotations['io.tsshim.info.handler-name'], 'tsshim-runc');
    assert.is(r.info!.options?.typeUrl, TYPE_URL.RuntimeOptions);
    assert.equal(featuresOf(r.info), backendFeatures('/usr/sbin/runc'));
    // A binary that is not there: no features (CRI keeps the gated features off), not an invented document.
    const missing = info(withConfig('runc-missing', 'handler = "runc"\nname = "x"\nbinary = "/nonexistent/runc"\n'));
    assert.is(missing.status, 0, missing.stderr);
    assert.is(missing.info!.features, undefined);
  });

test('-info for Debian\'s runsc and crun: no OCI features document (neither has `features`)', () => {
  for (const [name, toml] of [
    ['gvisor', 'handler = "gvisor"\nname = "tsshim-gvisor"\nbinary = "/usr/bin/runsc"\n'],
    ['crun', 'handler = "crun"\nname = "tsshim-crun"\n'],
  ] as const) {
    const r = info(withConfig(name, toml));
    assert.is(r.status, 0, r.stderr);
    assert.is(r.info!.annotations['io.tsshim.info.handler-type'], name);
    assert.is(r.info!.features, undefined, `${name}: no features`);
  }
});

// The pinned runsc prints the OCI features document; gVisor's own shim reports the same one from
// its -info (pkg/shim/v1/manager.go Info: runsc/specutils Features()), so CRI gates user namespaces
// (and rro: not listed) alike for tsshim-gvisor and runsc-v1.
const pinnedRunsc = '/opt/tsshim/peers/gvisor/bin/runsc';
if (!existsSync(pinnedRunsc)) skipWithReason(test, '-info for gvisor with the pinned runsc: runsc features', `the pinned runsc is not built (${pinnedRunsc}; scripts/setup.sh)`);
else
  test('-info for gvisor with the pinned runsc: runsc features', () => {
    const r = info(withConfig('gvisor-pinned', 'handler = "gvisor"\nname = "tsshim-gvisor"\n'));
    assert.is(r.status, 0, r.stderr);
    assert.is(r.info!.annotations['io.tsshim.info.handler-type'], 'gvisor');
    assert.equal(canonical(featuresOf(r.info)), canonical(backendFeatures(pinnedRunsc)));
  });

const youki = join('/opt/tsshim/peers/youki/bin/youki');
if (!existsSync(youki)) skipWithReason(test, '-info for youki: youki features', `youki is not built (${youki}; scripts/setup.sh)`);
else
  test('-info for youki: youki features', () => {
    const r = info(withConfig('youki', `handler = "youki"\nname = "tsshim-youki"\nbinary = ${JSON.stringify(youki)}\n`));
    assert.is(r.status, 0, r.stderr);
    assert.equal(canonical(featuresOf(r.info)), canonical(backendFeatures(youki)));
  });

const c2 = containerdUnavailable('2');
if (c2) skipWithReason(test, '-info for kata (stand-in delegate): the delegate\'s own -info features', c2);
else
  test('-info for kata (stand-in delegate): the delegate\'s own -info features', () => {
    // STAND-IN: containerd 2.x's containerd-shim-runc-v2 in place of containerd-shim-kata-v2 (no Kata here).
    const r = info(withConfig('kata', `handler = "kata"\nname = "tsshim-kata"\n[options]\nshim = ${JSON.stringify(containerdRelease('2').shimRunc)}\n`));
    assert.is(r.status, 0, r.stderr);
    assert.equal(featuresOf(r.info), backendFeatures('runc'));
    // 1.6's runc shim has no -info ("flag provided but not defined"): no features, as for Kata 3.x.
    const old = info(withConfig('kata16', `handler = "kata"\nname = "tsshim-kata"\n[options]\nshim = ${JSON.stringify(containerdRelease('1.6').shimRunc)}\n`));
    assert.is(old.status, 0, old.stderr);
    assert.is(old.info!.features, undefined);
  });

test('-info refuses what Create would refuse: a relative ConfigPath, bytes that are no Any', () => {
  const rel = Any.encode(packAny(TYPE_URL.RuntimeOptions, runtimeOptions.Options, runtimeOptions.Options.fromPartial({ configPath: 'runc.toml' }))).finish();
  const r = info(rel);
  assert.is.not(r.status, 0);
  assert.match(r.stderr, /ConfigPath must be an absolute path/);
  const g = info(Buffer.from([0x0a, 0xff, 0xff]));
  assert.is.not(g.status, 0);
  assert.match(g.stderr, /failed to read runtime options/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
