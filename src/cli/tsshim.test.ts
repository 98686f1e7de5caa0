/**
 * The built `tsshim` CLI, run as a real process (bin/tsshim -> dist/src/cli/tsshim.js),
 * against this host's real binaries, /proc and /sys.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse as parseToml } from 'smol-toml';
import { registry } from '../composition/registry.js';
import { renderHandlerConfig } from '../composition/handler-config.js';
import { RUNTIME_TYPE } from '../shim-api/runtime-type.js';
import { parseConfig } from '../composition/config.js';
import { containerdConfig, runtimeClasses } from './generate.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(REPO, 'bin/tsshim');
const NO_CONFIG = '/nonexistent/tsshim-test/config.toml';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
function tsshim(args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TSSHIM_CONFIG: NO_CONFIG, ...env },
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsshim-cli-'));

type Table = Record<string, unknown>;
function runtimesOf(doc: Table, version: '1.6' | '1.7' | '2'): Record<string, Table> {
  const plugins = doc.plugins as Table;
  const cri = (version === '2' ? plugins['io.containerd.cri.v1.runtime'] : plugins['io.containerd.grpc.v1.cri']) as Table;
  return (cri.containerd as Table).runtimes as Record<string, Table>;
}

for (const version of ['1.6', '1.7', '2'] as const) {
  test(`config containerd --version ${version}: valid TOML with every handler entry`, () => {
    const r = tsshim(['config', 'containerd', '--version', version, '--config-dir', '/etc/tsshim-x']);
    assert.is(r.code, 0, r.stderr);
    const doc = parseToml(r.stdout) as Table;
    assert.is(doc.version, version === '2' ? 3 : 2);
    const runtimes = runtimesOf(doc, version);
    // no drift: exactly the registry's runtime entries
    assert.equal(Object.keys(runtimes).sort(), registry.map((e) => e.runtimeEntry).sort());
    for (const e of registry) {
      const rt = runtimes[e.runtimeEntry]!;
      assert.is(rt.runtime_type, RUNTIME_TYPE, e.type);
      assert.is((rt.options as Table).ConfigPath, `/etc/tsshim-x/${e.type}.toml`, e.type);
      assert.equal(rt.pod_annotations ?? [], [...e.podAnnotations], e.type);
      assert.is(rt.privileged_without_host_devices ?? false, e.type === 'kata', e.type);
      if (version === '2') assert.is(rt.sandboxer, 'podsandbox');
    }
    assert.equal(runtimes['tsshim-gvisor']!.pod_annotations, ['dev.gvisor.*']);
    assert.equal(runtimes['tsshim-kata']!.pod_annotations, ['io.katacontainers.*']);
    // the default_runtime_name reminder, and it is valid TOML once uncommented
    assert.match(r.stdout, 'default_runtime_name');
    const uncommented = r.stdout.replace(/^# (\[plugins|  default_runtime_name|  runtime_type)/gm, '$1');
    const full = parseToml(uncommented) as Table;
    assert.is(runtimesOf(full, version).runc!.runtime_type, 'io.containerd.runc.v2');
    assert.is(Object.keys(runtimesOf(full, version)).length, registry.length + 1);
  });
}

test('config containerd --handlers picks entries by type or entry name; bad input exits 2', () => {
  const r = tsshim(['config', 'containerd', '--handlers', 'gvisor,crun,gvisor']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(Object.keys(runtimesOf(parseToml(r.stdout) as Table, '1.7')), ['tsshim-gvisor', 'tsshim-crun']);
  assert.match((runtimesOf(parseToml(r.stdout) as Table, '1.7')['tsshim-crun']!.options as Table).ConfigPath as string, '/etc/tsshim/crun.toml');
  const bad = tsshim(['config', 'containerd', '--handlers', 'runc,nope']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, 'unknown handler "nope"');
  assert.is(tsshim(['config', 'containerd', '--version', '1.5']).code, 2);
  assert.is(tsshim(['config', 'containerd', '--config-dir', 'relative/dir']).code, 2);
  assert.is(tsshim(['config', 'containerd', '--bogus']).code, 2);
  assert.is(tsshim(['frobnicate']).code, 2);
});

test('config runtimeclass: one RuntimeClass per handler, handler = name = runtime entry', () => {
  const r = tsshim(['config', 'runtimeclass']);
  assert.is(r.code, 0, r.stderr);
  const docs = r.stdout.split(/^---$/m).slice(1);
  assert.is(docs.length, registry.length);
  const field = (doc: string, re: RegExp) => re.exec(doc)?.[1];
  for (const [i, e] of registry.entries()) {
    const doc = docs[i]!;
    assert.is(field(doc, /^apiVersion: (.+)$/m), 'node.k8s.io/v1');
    assert.is(field(doc, /^kind: (.+)$/m), 'RuntimeClass');
    assert.is(field(doc, /^metadata:\n  name: (.+)$/m), e.runtimeEntry);
    assert.is(field(doc, /^handler: (.+)$/m), e.runtimeEntry);
    if (e.type === 'kata') {
      assert.match(doc, /^overhead:\n  podFixed:\n    # .+\n    memory: 160Mi\n    cpu: 250m$/m);
    } else {
      assert.not.match(doc, 'overhead');
    }
  }
  const one = tsshim(['config', 'runtimeclass', '--handlers', 'kata']);
  assert.is(one.stdout.split(/^---$/m).length - 1, 1);
});

test('config handlers --out writes the files the entries point at; no silent overwrite', () => {
  const out = path.join(tmp, 'etc-tsshim');
  const r = tsshim(['config', 'handlers', '--out', out]);
  assert.is(r.code, 0, r.stderr);
  for (const e of registry) {
    const text = fs.readFileSync(path.join(out, `${e.type}.toml`), 'utf8');
    assert.is(text, renderHandlerConfig(e));
    assert.is(parseConfig(text, e.type).handler.type, e.type);
  }
  fs.writeFileSync(path.join(out, 'runc.toml'), 'handler = "runc"\n# mine\n');
  const again = tsshim(['config', 'handlers', '--out', out]);
  assert.is(again.code, 1);
  assert.match(again.stderr, 'not overwriting');
  assert.is(fs.readFileSync(path.join(out, 'runc.toml'), 'utf8'), 'handler = "runc"\n# mine\n');
  assert.is(tsshim(['config', 'handlers', '--out', out, '--force', '--handlers', 'runc']).code, 0);
  assert.is(fs.readFileSync(path.join(out, 'runc.toml'), 'utf8'), renderHandlerConfig(registry[0]!));
  assert.is(tsshim(['config', 'handlers']).code, 2);
});

interface DoctorReport {
  ok: boolean;
  defaultHandler: { type: string; source: string | null; usable: boolean };
  handlers: Array<{ type: string; runtimeEntry: string; usable: boolean; version: string | null; path: string | null; reason: string; details: Record<string, unknown>; config: string }>;
  problems: string[];
}
const doctorJson = (env: Record<string, string> = {}, extra: string[] = []) => {
  const r = tsshim(['doctor', '--json', '--config-dir', path.join(tmp, 'no-such-dir'), ...extra], env);
  return { r, report: JSON.parse(r.stdout) as DoctorReport };
};

/** youki is usable wherever it is on PATH (scripts/setup.sh links the pinned youki 0.7.0 into /usr/local/bin). */
const youkiOnPath = (process.env.PATH ?? '').split(':').some((d) => d !== '' && fs.existsSync(path.join(d, 'youki')));

test('doctor --json on this host: runc usable, youki as installed, kata not installed, gvisor on ptrace', () => {
  const { r, report } = doctorJson();
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.is(report.ok, true);
  assert.equal(report.defaultHandler, { type: 'runc', source: 'built-in default', usable: true });
  assert.equal(report.handlers.map((h) => h.runtimeEntry), registry.map((e) => e.runtimeEntry));
  const h = Object.fromEntries(report.handlers.map((x) => [x.type, x]));
  assert.is(h.runc!.usable, true);
  assert.is(h.runc!.path, '/usr/sbin/runc');
  assert.match(h.runc!.version ?? '', /^1\.1\./);
  assert.is(h.youki!.usable, youkiOnPath, h.youki!.reason);
  if (youkiOnPath) assert.match(h.youki!.reason, /^youki \d+\.\d+/);
  else assert.match(h.youki!.reason, 'not installed');
  assert.is(h.kata!.usable, false);
  assert.match(h.kata!.reason, 'containerd-shim-kata-v2');
  assert.is(h.gvisor!.usable, true);
  assert.is(h.gvisor!.details.platform, 'ptrace');
  assert.match(h.gvisor!.reason, 'platform ptrace OK');
  // crun is installed, but this host's cgroup layout is hybrid with hugetlb on v2
  const unified = '/sys/fs/cgroup/unified/cgroup.controllers';
  const hybridWithControllers = fs.existsSync(unified) && fs.readFileSync(unified, 'utf8').trim() !== '';
  for (const type of ['crun', 'oci']) {
    assert.is(h[type]!.usable, !hybridWithControllers, type);
    if (hybridWithControllers) assert.match(h[type]!.reason, /^crun fails on hybrid cgroup layout/);
  }
});

test('doctor table: one row per handler, exit 0 with the default (runc)', () => {
  const r = tsshim(['doctor', '--config-dir', path.join(tmp, 'no-such-dir')]);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, /^HANDLER\s+RUNTIME ENTRY\s+USABLE\s+BACKEND VERSION\s+REASON$/);
  for (const [i, e] of registry.entries()) assert.match(lines[i + 1]!, new RegExp(`^${e.type}\\s+${e.runtimeEntry}\\s+(yes|no)\\s+`));
  assert.match(lines[1]!, /^runc\s+tsshim-runc\s+yes\s+1\.1\./);
  assert.match(r.stdout, 'default handler: runc (built-in default): usable');
});

test('doctor exit code follows the configured default handler', () => {
  const cfg = (name: string, body: string) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, body);
    return f;
  };
  const youki = doctorJson({ TSSHIM_CONFIG: cfg('youki.toml', 'handler = "youki"\n') });
  assert.is(youki.r.code, youkiOnPath ? 0 : 1);
  assert.equal(youki.report.defaultHandler.type, 'youki');
  assert.is(youki.report.ok, youkiOnPath);

  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const kvmReadWrite = (() => {
    try {
      fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  })();
  // The doctor's own three conditions (gvisor definition kvmState): /dev/kvm, read-write, vmx/svm.
  const kvmWorks = /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo) && kvmReadWrite;
  const kvm = doctorJson({ TSSHIM_CONFIG: cfg('gvisor-kvm.toml', 'handler = "gvisor"\n[options]\nplatform = "kvm"\n') });
  assert.is(kvm.r.code, kvmWorks ? 0 : 1);
  const g = kvm.report.handlers.find((x) => x.type === 'gvisor')!;
  assert.is(g.details.platform, 'kvm');
  assert.is(g.config, path.join(tmp, 'gvisor-kvm.toml'));
  // Whichever of the three is missing on this host, the reason names the kvm platform's problem.
  if (!kvmWorks) assert.match(g.reason, /platform kvm: kvm platform (unusable: no \/dev\/kvm|unusable: \/dev\/kvm is not readable and writable|hangs on this host: )/);

  const ptrace = doctorJson({ TSSHIM_CONFIG: cfg('gvisor.toml', 'handler = "gvisor"\n[options]\nplatform = "ptrace"\n') });
  assert.is(ptrace.r.code, 0);

  const missingBinary = doctorJson({ TSSHIM_CONFIG: cfg('runc-missing.toml', 'handler = "runc"\nbinary = "/opt/none/runc"\n') });
  assert.is(missingBinary.r.code, 1);
  assert.match(missingBinary.report.handlers[0]!.reason, 'not installed: /opt/none/runc');

  const unknown = doctorJson({ TSSHIM_CONFIG: cfg('unknown.toml', 'handler = "qemu"\n') });
  assert.is(unknown.r.code, 1);
  assert.match(unknown.report.problems.join('\n'), 'unknown tsshim handler "qemu"');

  const broken = doctorJson({ TSSHIM_CONFIG: cfg('broken.toml', 'handler = \n') });
  assert.is(broken.r.code, 1);
  assert.match(broken.report.problems.join('\n'), 'default config');
});

test('doctor reads <config-dir>/<type>.toml for the other handlers', () => {
  const dir = path.join(tmp, 'cfgdir');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'gvisor.toml'), 'handler = "gvisor"\n[options]\nplatform = "systrap"\n');
  fs.writeFileSync(path.join(dir, 'youki.toml'), 'handler = "kata"\n');
  const r = tsshim(['doctor', '--json', '--config-dir', dir]);
  const report = JSON.parse(r.stdout) as DoctorReport;
  assert.is(r.code, 0); // the default (runc) is still usable
  const g = report.handlers.find((x) => x.type === 'gvisor')!;
  assert.is(g.config, path.join(dir, 'gvisor.toml'));
  assert.is(g.details.platform, 'systrap');
  assert.match(report.problems.join('\n'), 'expected "youki"');
});

test('docs/handlers/<type>.md quote the generated config file, containerd entry and RuntimeClass', () => {
  for (const e of registry) {
    const doc = fs.readFileSync(path.join(REPO, 'docs/handlers', `${e.type}.md`), 'utf8');
    const body = renderHandlerConfig(e).split('\n').filter((l, i, all) => !(l.startsWith('#') && i < 2) && !(i === 2 && l === '' && all[0]!.startsWith('#'))).join('\n');
    assert.ok(doc.includes(body.trim()), `${e.type}.md: config file out of date`);
    const cd = containerdConfig({ version: '1.6', entries: [e], configDir: '/etc/tsshim' });
    const entryBlock = cd.slice(cd.indexOf('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.tsshim-')).trim();
    assert.ok(doc.includes(entryBlock), `${e.type}.md: containerd entry out of date`);
    const rc = runtimeClasses([e]);
    assert.ok(doc.includes(rc.slice(rc.indexOf('apiVersion:')).trim()), `${e.type}.md: RuntimeClass out of date`);
  }
});

test('install / uninstall: usage errors are clear; uninstall of a root with nothing installed is a no-op', () => {
  const a = tsshim(['install']);
  assert.is(a.code, 2);
  assert.match(a.stderr, 'install needs --host-root DIR');
  const b = tsshim(['install', '--host-root', tmp, '--node', 'static']);
  assert.is(b.code, 2);
  assert.match(b.stderr, '--node must be copy or host');
  const c = tsshim(['install', '--host-root', 'relative/dir', '--containerd-version', '2']);
  assert.is(c.code, 1);
  assert.match(c.stderr, '--host-root must be an absolute path');
  const d = tsshim(['install', '--host-root', tmp, '--handlers', 'nope']);
  assert.is(d.code, 2);
  assert.match(d.stderr, 'unknown handler "nope"');
  const u = tsshim(['uninstall', '--host-root', tmp]);
  assert.is(u.code, 0, u.stderr);
  assert.match(u.stdout, `nothing installed under ${tmp}`);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test.run();
