/**
 * The one handler list: every definition is well-formed and distinct, its factory loads
 * the handler it names, its default config renders to a file that config.ts and the
 * handler's own parser accept, and its verdicts (pure assess() over hand-written host
 * facts) read right for hosts we do not have here. The real host is probed in
 * src/cli/tsshim.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from './config.js';
import { renderHandlerConfig } from './handler-config.js';
import { cpuVirtFlag, parseVersion, which } from './host.js';
import { findHandler, registry } from './registry.js';
import type { HostFacts } from '../shim-api/host-facts.js';
import { ALL_OPERATIONS } from '../shim-api/operations.js';
import { gvisorOptions, runscBuildYear } from '../handlers/gvisor/definition.js';
import { profileFromConfig } from '../handlers/oci/definition.js';
import { kataConfig } from '../handlers/kata/factory.js';
import { crunProfile } from '../handlers/crun/profile.js';
import { runcProfile } from '../handlers/runc/profile.js';

function facts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    binaries: {
      runc: { name: 'runc', path: '/usr/sbin/runc', version: '1.1.5' },
      runsc: { name: 'runsc', path: '/usr/bin/runsc', version: '0.0~20221219.0' },
      youki: { name: 'youki', path: '/usr/local/bin/youki', version: '0.3.3' },
      crun: { name: 'crun', path: '/usr/bin/crun', version: '1.8.1' },
      'containerd-shim-kata-v2': { name: 'containerd-shim-kata-v2', path: '/opt/kata/bin/containerd-shim-kata-v2', version: '3.2.0' },
    },
    cgroup: { mode: 'v2', unifiedPath: '/sys/fs/cgroup', unifiedControllers: ['cpu', 'memory', 'pids'], v1Controllers: [] },
    systemd: { pid1: true, pid1Name: 'systemd', booted: true },
    kvm: { present: true, readWrite: true },
    cpuVirt: 'svm',
    ...over,
  };
}
const hybridHugetlb: HostFacts['cgroup'] = {
  mode: 'hybrid',
  unifiedPath: '/sys/fs/cgroup/unified',
  unifiedControllers: ['hugetlb'],
  v1Controllers: ['cpu', 'memory', 'pids'],
};
const entry = (t: string) => findHandler(t)!;

test('one definition per type; runtime entries, config files and docs pages follow the type', () => {
  assert.equal(registry.map((e) => e.type), ['runc', 'gvisor', 'youki', 'kata', 'crun', 'oci']);
  assert.equal(new Set(registry.map((e) => e.type)).size, registry.length);
  for (const e of registry) {
    assert.is(e.runtimeEntry, `tsshim-${e.type}`);
    assert.is(e.configFile, `${e.type}.toml`);
    assert.is(e.docsPage, `docs/handlers/${e.type}.md`);
    assert.ok(Object.isFrozen(e), e.type);
    assert.ok(e.supports.length > 0 && e.supports.every((op) => ALL_OPERATIONS.includes(op)), e.type);
    assert.equal(e.binariesFor(), [e.binary], e.type);
  }
  assert.is(findHandler('crun'), entry('crun'));
  assert.is(findHandler('tsshim-oci'), entry('oci'));
  assert.is(findHandler('tsshim-gvisor'), entry('gvisor'));
  assert.is(findHandler('nope'), undefined);
  assert.equal([...entry('kata').supports].includes('checkpoint'), false);
  assert.equal(entry('runc').supports, [...runcProfile.supports]);
  assert.equal(entry('crun').supports, [...crunProfile.supports]);
  assert.equal(entry('crun').notes, crunProfile.notes);
});

test('every factory loads and builds the handler type of its definition', async () => {
  for (const e of registry) {
    const f = await e.factory();
    assert.is(f.type, e.type);
    assert.type(f.create, 'function');
    assert.type(f.cleanup, 'function');
  }
});

test('every default config is accepted by config.ts and by its handler\'s own parser', () => {
  for (const e of registry) {
    const text = renderHandlerConfig(e);
    assert.match(text, new RegExp(`^# tsshim handler config: ${e.type} \\(`));
    assert.match(text, `\nhandler = "${e.type}"\nname = "${e.runtimeEntry}"\n`);
    const cfg = parseConfig(text, e.configFile);
    assert.is(cfg.handler.type, e.type, e.type);
    assert.is(cfg.handler.name, e.runtimeEntry, e.type);
    assert.equal(cfg.annotationAllowlist, []);
    assert.is(cfg.debug, false);
  }
  const g = gvisorOptions(parseConfig(renderHandlerConfig(entry('gvisor')), 'g').handler);
  assert.is(g.platform, 'ptrace');
  assert.is(g.network, 'none');
  const p = profileFromConfig(parseConfig(renderHandlerConfig(entry('oci')), 'o').handler);
  assert.is(p.binary, 'crun');
  assert.is(p.defaultRoot, '/run/containerd/crun');
  assert.equal([...p.supports].sort(), [...crunProfile.supports].sort());
  assert.is(parseConfig(renderHandlerConfig(entry('crun')), 'c').handler.options.systemd_cgroup, false);
  assert.is(kataConfig(parseConfig(renderHandlerConfig(entry('kata')), 'k').handler).binary, 'containerd-shim-kata-v2');
});

test('parseVersion / runscBuildYear / cpuVirtFlag', () => {
  assert.is(parseVersion('runc version 1.1.5+ds1\ncommit: x\n'), '1.1.5+ds1');
  assert.is(parseVersion('runsc version 0.0~20221219.0\nspec: 1.0.2-dev'), '0.0~20221219.0');
  assert.is(parseVersion('Kata Containers containerd shim (Golang): id: "io.containerd.kata.v2", version: 3.2.0, commit: abc'), '3.2.0');
  assert.is(parseVersion('youki version 0.3.3\ncommit: 0.3.3-0'), '0.3.3');
  assert.is(runscBuildYear('0.0~20221219.0'), 2022);
  assert.is(runscBuildYear('release-20240212.0'), 2024);
  assert.is(runscBuildYear('1.0'), undefined);
  assert.is(cpuVirtFlag('processor: 0\nflags\t\t: fpu vme svm sse\n'), 'svm');
  assert.is(cpuVirtFlag('flags\t\t: fpu vmx\n'), 'vmx');
  assert.is(cpuVirtFlag('flags\t\t: fpu vmxfoo hypervisor\n'), null);
});

test('which: PATH lookup and absolute paths', () => {
  assert.is(which('sh', '/nonexistent:/bin'), '/bin/sh');
  assert.is(which('definitely-not-a-binary-xyz', '/bin:/usr/bin'), undefined);
  assert.is(which('/bin/sh'), '/bin/sh');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsshim-which-'));
  try {
    fs.writeFileSync(path.join(dir, 'plain'), 'x', { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
    assert.is(which(path.join(dir, 'plain')), undefined); // not executable
    assert.is(which('plain', dir), undefined);
    assert.is(which('tool', `/nonexistent:${dir}`), path.join(dir, 'tool'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.is(which('/etc'), undefined); // a directory
});

test('runc: systemd cgroup driver only with systemd as PID 1', () => {
  const r = entry('runc');
  const good = r.assess(facts());
  assert.ok(good.usable);
  assert.match(good.reason, 'SystemdCgroup usable');
  const noSystemd = facts({ systemd: { pid1: false, pid1Name: 'tini', booted: false } });
  const plain = r.assess(noSystemd);
  assert.ok(plain.usable);
  assert.match(plain.reason, 'systemd is not PID 1 (PID 1 is tini)');
  const wanted = r.assess(noSystemd, { type: 'runc', name: 'tsshim-runc', options: { systemd_cgroup: true } });
  assert.is(wanted.usable, false);
  assert.match(wanted.reason, 'systemd not running on this host');
  const missing = r.assess(facts({ binaries: {} }));
  assert.is(missing.usable, false);
  assert.match(missing.reason, /^not installed: runc not found on PATH/);
  const broken = r.assess(facts({ binaries: { runc: { name: 'runc', path: '/usr/sbin/runc', versionError: 'runc --version failed: exit status 2' } } }));
  assert.is(broken.usable, false);
  assert.match(broken.reason, '/usr/sbin/runc is not runnable');
});

test('gvisor: platform checks', () => {
  const g = entry('gvisor');
  // binary = "runsc": the fake facts know that name (the default may be the pinned build's path).
  const cfg = (platform: string) => ({ type: 'gvisor', name: 'g', binary: 'runsc', options: { platform } });
  const debian = { type: 'gvisor', name: 'g', binary: 'runsc', options: {} };
  assert.ok(g.assess(facts({ cpuVirt: null }), debian).usable);
  assert.is(g.assess(facts(), debian).details.platform, 'ptrace');
  const kvmNested = g.assess(facts({ cpuVirt: null }), cfg('kvm'));
  assert.is(kvmNested.usable, false);
  assert.match(kvmNested.reason, 'kvm platform hangs on this host');
  assert.match(kvmNested.reason, 'vmx/svm');
  assert.ok(g.assess(facts(), cfg('kvm')).usable);
  assert.is(g.assess(facts({ kvm: { present: false, readWrite: false } }), cfg('kvm')).usable, false);
  const systrapOld = g.assess(facts(), cfg('systrap'));
  assert.is(systrapOld.usable, false);
  assert.match(systrapOld.reason, 'systrap');
  const newer = facts();
  newer.binaries.runsc = { name: 'runsc', path: '/usr/bin/runsc', version: 'release-20240212.0' };
  assert.ok(g.assess(newer, cfg('systrap')).usable);
  assert.is(g.assess(facts(), cfg('bogus')).usable, false);
});

test('crun: refuses hybrid layouts whose v2 hierarchy has controllers; oci only when its binary is crun', () => {
  for (const type of ['crun', 'oci']) {
    const o = entry(type);
    assert.ok(o.assess(facts()).usable, type);
    const bad = o.assess(facts({ cgroup: hybridHugetlb }));
    assert.is(bad.usable, false, type);
    assert.match(bad.reason, /^crun fails on hybrid cgroup layout/);
    assert.match(bad.reason, 'hugetlb');
    assert.match(bad.reason, 'crun 1.8.1 says');
    assert.ok(o.assess(facts({ cgroup: { ...hybridHugetlb, unifiedControllers: [] } })).usable, type);
  }
  const missing = entry('crun').assess(facts({ binaries: {} }));
  assert.is(missing.reason, 'not installed: crun not found on PATH (Debian: apt-get install crun)');
  const other = facts({ cgroup: hybridHugetlb });
  other.binaries['/opt/bin/myrt'] = { name: '/opt/bin/myrt', path: '/opt/bin/myrt', version: '2.0' };
  const myrt = entry('oci').assess(other, { type: 'oci', name: 'myrt', binary: '/opt/bin/myrt', options: {} });
  assert.ok(myrt.usable);
  assert.is(myrt.reason, 'myrt 2.0; cgroups hybrid (v1 controllers + v2 at /sys/fs/cgroup/unified with hugetlb)');
});

test('youki and kata: not installed / virtualisation', () => {
  const y = entry('youki').assess(facts({ binaries: {} }));
  assert.is(y.usable, false);
  assert.is(y.reason, 'not installed: youki is not packaged for Debian 12; install from its releases');
  assert.ok(entry('youki').assess(facts()).usable);
  const k = entry('kata');
  assert.ok(k.assess(facts()).usable);
  const noVirt = k.assess(facts({ cpuVirt: null }));
  assert.is(noVirt.usable, false);
  assert.match(noVirt.reason, 'vmx/svm');
  const noShim = k.assess(facts({ binaries: {} }));
  assert.match(noShim.reason, 'containerd-shim-kata-v2 not found on PATH');
  assert.is(k.assess(facts({ kvm: { present: true, readWrite: false } })).usable, false);
  // [options] shim names the delegate
  assert.equal(k.binariesFor({ type: 'kata', name: 'k', options: { shim: '/opt/kata/bin/containerd-shim-kata-v2' } }), ['/opt/kata/bin/containerd-shim-kata-v2']);
});

test.run();
