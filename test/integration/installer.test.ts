// `tsshim install` / `tsshim uninstall` (issue 13.3) into a scratch host root, with real containerd
// 1.6 (Debian's) and 2.x (the peer build): the operator's own config (comments, unrelated settings,
// root/state/sockets inside the scratch root) is snapshotted; install writes the package, handler
// configs, a drop-in and one imports entry; a re-install changes nothing; a private containerd started
// on that config keeps the operator's settings and runs a pod on every RuntimeClass handler this host
// can run through CRI (kata: the stand-in delegate, from the operator's own kata.toml); uninstall is
// refused while a shim runs from the release, then, with containerd stopped, leaves every path
// byte-identical to the snapshot and nothing extra. Two quicker cases: a 2.x config that already
// imports conf.d/*.toml is not touched at all; an operator's edit of the main config after install
// survives uninstall (only the imports entry goes).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { connectCri, criV1, type CriClient } from '../../src/client/cri.js';
import { Instance } from '../helpers/containerd-process.js';
import { binariesFor, containerdRelease, containerdUnavailable, kataStandInDelegate, PEERS_DIR, type ContainerdVersion } from '../helpers/containerd-version.js';
import { CRI_NAMESPACE, PAUSE_IMAGE, appContainerConfig, importCriImages, restrictOomScoreAdj } from '../helpers/cri.js';
import { diffSnapshots, operatorFile, snapshot, type Snapshot } from '../helpers/host-root.js';
import { REPO_ROOT, findProcesses } from '../helpers/proc.js';
import { skipWithReason } from '../helpers/skip.js';
import { registry } from '../../src/composition/registry.js';
import { renderHandlerConfig } from '../../src/composition/handler-config.js';
import { addImport } from '../../src/cli/install/toml-edit.js';

const { NamespaceMode, ContainerState, PodSandboxState } = criV1;
const TSSHIM = path.join(REPO_ROOT, 'bin', 'tsshim');
const YOUKI = path.join(PEERS_DIR, 'youki', 'bin', 'youki');
const BASE = '/run/tsshim-test';
/** containerd's own data under the host root: present before install (a host has them), contents not compared. */
const CONTAINERD_DATA = ['/var/lib/containerd', '/run/containerd', '/opt/containerd'];
const DROP_IN = '/etc/containerd/conf.d/tsshim.toml';
const MAIN = '/etc/containerd/config.toml';

type Table = Record<string, unknown>;
const onPath = (bin: string) => (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, bin)));
const youkiBuilt = () => fs.existsSync(path.join(PEERS_DIR, 'youki', 'VERSION')) && fs.existsSync(YOUKI);

function tsshim(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [TSSHIM, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A scratch host root: R (the host's /) inside W (the test's own files: restart log, pod logs). */
function scratch(label: string): { W: string; R: string } {
  const W = path.join(BASE, `inst${label}-${randomBytes(3).toString('hex')}`);
  const R = path.join(W, 'host');
  fs.mkdirSync(R, { recursive: true, mode: 0o755 });
  return { W, R };
}

function operatorConfig(v: ContainerdVersion, R: string): string {
  const j = (p: string) => JSON.stringify(path.join(R, p));
  const common = [
    '# /etc/containerd/config.toml of this node: the operator\'s own, written by hand.',
    `version = ${v === '2' ? 3 : 2}`,
    `root = ${j('/var/lib/containerd')}`,
    `state = ${j('/run/containerd')}`,
    'oom_score = 0   # an unrelated setting',
    '',
    '[grpc]',
    `  address = ${j('/run/containerd/containerd.sock')}`,
    '',
    '[ttrpc]',
    `  address = ${j('/run/containerd/containerd.sock.ttrpc')}`,
    '',
    '[debug]',
    '  level = "info"   # keep it quiet',
    '',
  ];
  if (v !== '2') {
    return [
      ...common,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${j('/opt/containerd')}`,
      '',
      '# CRI: the local pause image, host-network pods (no CNI config), a loopback streaming server',
      '[plugins."io.containerd.grpc.v1.cri"]',
      `  sandbox_image = ${JSON.stringify(PAUSE_IMAGE)}`,
      '  max_container_log_line_size = 12345   # must survive the drop-in (1.x replaces the whole CRI table)',
      `  restrict_oom_score_adj = ${restrictOomScoreAdj()}`,
      '  stream_server_address = "127.0.0.1"',
      '  stream_server_port = "0"',
      '  [plugins."io.containerd.grpc.v1.cri".cni]',
      `    bin_dir = ${j('/opt/cni/bin')}`,
      `    conf_dir = ${j('/etc/cni/net.d')}`,
      '  [plugins."io.containerd.grpc.v1.cri".containerd]',
      '    snapshotter = "overlayfs"',
      '    default_runtime_name = "runc"',
      '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
      '      runtime_type = "io.containerd.runc.v2"',
      '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
      '        SystemdCgroup = false',
      '',
    ].join('\n');
  }
  return [
    ...common,
    "[plugins.'io.containerd.internal.v1.opt']",
    `  path = ${j('/opt/containerd')}`,
    '',
    "[plugins.'io.containerd.grpc.v1.cri']",
    "  stream_server_address = '127.0.0.1'",
    "  stream_server_port = '0'",
    '',
    "[plugins.'io.containerd.cri.v1.images']",
    "  snapshotter = 'overlayfs'",
    "  [plugins.'io.containerd.cri.v1.images'.pinned_images]",
    `    sandbox = ${JSON.stringify(PAUSE_IMAGE)}`,
    '',
    '# no runtimes table: containerd\'s implicit runc is the default',
    "[plugins.'io.containerd.cri.v1.runtime']",
    '  max_container_log_line_size = 12345',
    `  restrict_oom_score_adj = ${restrictOomScoreAdj()}`,
    "  [plugins.'io.containerd.cri.v1.runtime'.cni]",
    `    bin_dirs = [${j('/opt/cni/bin')}]`,
    `    conf_dir = ${j('/etc/cni/net.d')}`,
    '',
  ].join('\n');
}

/** The operator's host: config, containerd on the host root (for version detection), CNI dirs, their own kata/youki handler files. */
function prepareHost(v: ContainerdVersion, R: string): { mainText: string; own: string[] } {
  const mainText = operatorConfig(v, R);
  operatorFile(R, MAIN, mainText);
  fs.mkdirSync(path.join(R, '/usr/bin'), { recursive: true });
  fs.symlinkSync(containerdRelease(v).containerd, path.join(R, '/usr/bin/containerd'));
  for (const d of ['/opt/cni/bin', '/etc/cni/net.d', ...CONTAINERD_DATA]) fs.mkdirSync(path.join(R, d), { recursive: true, mode: 0o755 });
  // Kata is not installable here: the operator points kata at the stand-in delegate (that containerd's runc shim).
  operatorFile(R, '/etc/tsshim/kata.toml', `# the operator's own: a stand-in delegate, no Kata on this host\nhandler = "kata"\nname = "tsshim-kata"\n\n[options]\nshim = ${JSON.stringify(kataStandInDelegate(v))}\n`);
  const own = ['kata'];
  if (youkiBuilt() && !onPath('youki')) {
    operatorFile(R, '/etc/tsshim/youki.toml', `handler = "youki"\nname = "tsshim-youki"\nbinary = ${JSON.stringify(YOUKI)}\n`);
    own.push('youki');
  }
  return { mainText, own };
}

const HANDLERS: Array<{ entry: string; unavailable?: () => string | undefined }> = [
  { entry: 'runc' }, // the operator's own runc-v2 entry: still there, still works
  { entry: 'tsshim-runc' },
  { entry: 'tsshim-gvisor', unavailable: () => (onPath('runsc') ? undefined : 'runsc is not installed') },
  { entry: 'tsshim-youki', unavailable: () => (youkiBuilt() || onPath('youki') ? undefined : `youki is not built (${YOUKI})`) },
  { entry: 'tsshim-kata' },
  { entry: 'tsshim-crun', unavailable: () => 'crun 1.8.1 (Debian) cannot create containers on this host\'s hybrid cgroups (tsshim doctor)' },
  { entry: 'tsshim-oci', unavailable: () => 'the generic oci handler\'s default binary is crun, which cannot create containers on this host\'s hybrid cgroups (tsshim doctor)' },
];

async function podThrough(cri: CriClient, entry: string, logRoot: string, whileRunning?: () => Promise<void>): Promise<void> {
  const uid = randomBytes(8).toString('hex');
  const logDirectory = path.join(logRoot, uid);
  fs.mkdirSync(logDirectory, { recursive: true });
  const ns = { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD };
  const sandboxConfig = criV1.PodSandboxConfig.fromPartial({
    metadata: { name: `inst-${entry}`, uid, namespace: 'tsshim-test', attempt: 0 },
    logDirectory,
    linux: { securityContext: { namespaceOptions: ns } },
  });
  const { podSandboxId } = await cri.runtime.runPodSandbox({ config: sandboxConfig, runtimeHandler: entry }, { timeoutMs: 120_000 });
  try {
    const ps = await cri.runtime.podSandboxStatus({ podSandboxId, verbose: false });
    assert.is(ps.status?.state, PodSandboxState.SANDBOX_READY);
    assert.is(ps.status?.runtimeHandler, entry);
    const { containerId } = await cri.runtime.createContainer({ podSandboxId, sandboxConfig, config: appContainerConfig({ logPath: 'app.log', namespaceOptions: ns }) }, { timeoutMs: 60_000 });
    await cri.runtime.startContainer({ containerId }, { timeoutMs: 60_000 });
    assert.is((await cri.runtime.containerStatus({ containerId })).status?.state, ContainerState.CONTAINER_RUNNING);
    const ex = await cri.runtime.execSync({ containerId, cmd: ['sh', '-c', 'echo exec-ok; exit 3'], timeout: 30n }, { timeoutMs: 60_000 });
    assert.is(Buffer.from(ex.stdout).toString(), 'exec-ok\n');
    assert.is(ex.exitCode, 3);
    await whileRunning?.();
    await cri.runtime.stopContainer({ containerId, timeout: 2n }, { timeoutMs: 60_000 });
    const code = (await cri.runtime.containerStatus({ containerId })).status?.exitCode;
    assert.ok(code === 137 || code === 143, `exit code 137 or 143 (gVisor), got ${code}`);
    assert.match(fs.readFileSync(path.join(logDirectory, 'app.log'), 'utf8'), /^\S+ stdout F hi$/m, 'CRI log');
    await cri.runtime.removeContainer({ containerId }, { timeoutMs: 60_000 });
  } finally {
    await cri.runtime.stopPodSandbox({ podSandboxId }, { timeoutMs: 60_000 });
    await cri.runtime.removePodSandbox({ podSandboxId }, { timeoutMs: 60_000 });
  }
}

function criTables(dump: string, v: ContainerdVersion): { runtime: Table; images: Table } {
  const plugins = (parseToml(dump) as Table).plugins as Table;
  if (v === '2') return { runtime: plugins['io.containerd.cri.v1.runtime'] as Table, images: plugins['io.containerd.cri.v1.images'] as Table };
  const cri = plugins['io.containerd.grpc.v1.cri'] as Table;
  return { runtime: cri, images: cri };
}

interface Ctx {
  W: string;
  R: string;
  before: Snapshot;
  mainText: string;
  own: string[];
  cd?: Instance;
  cri?: CriClient;
}

for (const v of ['1.6', '2'] as const) {
  const t = suite<Ctx>(`installer on containerd ${v}`);
  const why = containerdUnavailable(v);
  const names = [
    'install: the package, handler configs, the drop-in and one imports entry; the operator\'s own handler files kept',
    're-install changes nothing and restarts nothing',
    'containerd on the installed config: the operator\'s settings and every tsshim entry',
    ...HANDLERS.map((h) => `pod through ${h.entry} via CRI`),
    'uninstall: every path byte-identical to before, nothing left; again: nothing to do',
  ].map((n) => `[containerd ${v}] ${n}`);
  if (why) {
    for (const n of names) skipWithReason(t, n, why);
    t.run();
    continue;
  }
  let i = 0;
  t.before((ctx) => {
    Object.assign(ctx, scratch(v.replace('.', '')));
    Object.assign(ctx, prepareHost(v, ctx.R));
    ctx.before = snapshot(ctx.R, CONTAINERD_DATA);
  });
  t.after(async (ctx) => {
    ctx.cri?.close();
    await ctx.cd?.stop();
    if (ctx.W) fs.rmSync(ctx.W, { recursive: true, force: true });
  });

  t(names[i++]!, ({ W, R, mainText, own }) => {
    const r = tsshim(['install', '--host-root', R, '--prefix-paths', '--restart-cmd', `echo restarted >> ${W}/restart.log`]);
    assert.is(r.code, 0, r.out + r.err);
    assert.match(r.out, `containerd ${v === '2' ? '2.x' : v} (/usr/bin/containerd --version: containerd github.com/containerd/containerd`);
    assert.match(r.out, `config dump shows ${registry.length} tsshim runtime entries`);
    assert.is(fs.readFileSync(path.join(W, 'restart.log'), 'utf8'), 'restarted\n', 'the restart command ran once');
    // the main config: exactly one edit
    assert.is(fs.readFileSync(path.join(R, MAIN), 'utf8'), addImport(mainText, path.join(R, DROP_IN)).text);
    const dropIn = parseToml(fs.readFileSync(path.join(R, DROP_IN), 'utf8')) as Table;
    assert.is(dropIn.version, v === '2' ? 3 : 2);
    for (const e of registry) {
      if (!own.includes(e.type)) assert.is(fs.readFileSync(path.join(R, '/etc/tsshim', e.configFile), 'utf8'), renderHandlerConfig(e), `${e.configFile} written`);
    }
    assert.match(r.out, 'kept /etc/tsshim/kata.toml: not written by tsshim');
    assert.is(fs.readlinkSync(path.join(R, '/usr/local/bin/containerd-shim-tsshim-v2')), '../../../opt/tsshim/current/bin/containerd-shim-tsshim-v2');
    const release = fs.readlinkSync(path.join(R, '/opt/tsshim/current'));
    assert.match(release, /^releases\/\d+\.\d+\.\d+-[0-9a-f]{12}$/);
    assert.ok(fs.statSync(path.join(R, '/opt/tsshim', release, 'bin/node')).isFile(), 'Node went along');
    const cli = spawnSync(path.join(R, '/usr/local/bin/tsshim'), ['config', 'runtimeclass'], { encoding: 'utf8' });
    assert.is(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, 'handler: tsshim-runc', 'the installed CLI runs');
  });

  t(names[i++]!, ({ W, R }) => {
    const mid = snapshot(R, CONTAINERD_DATA);
    const r = tsshim(['install', '--host-root', R, '--prefix-paths', '--restart-cmd', `echo restarted >> ${W}/restart.log`]);
    assert.is(r.code, 0, r.out + r.err);
    assert.match(r.out, 'no restart needed');
    assert.equal(diffSnapshots(mid, snapshot(R, CONTAINERD_DATA)), [], 'nothing changed, the manifest included');
    assert.is(fs.readFileSync(path.join(W, 'restart.log'), 'utf8'), 'restarted\n', 'no second restart');
  });

  t(names[i++]!, async (ctx) => {
    const { W, R } = ctx;
    const bin = containerdRelease(v);
    // containerd's PATH: the host root's /usr/local/bin first (where install put the shim), that
    // version's runc-v2 shim, the standard directories; not the repository's bin/.
    const PATH = [path.join(R, '/usr/local/bin'), bin.binDir, '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');
    ctx.cd = new Instance(W, 'tsshim-test', binariesFor(v), [], {
      configFile: path.join(R, MAIN),
      address: path.join(R, '/run/containerd/containerd.sock'),
      root: path.join(R, '/var/lib/containerd'),
      state: path.join(R, '/run/containerd'),
      path: PATH,
      keepDir: true,
    });
    await ctx.cd.launch();
    await importCriImages(ctx.cd);
    ctx.cri = await connectCri(ctx.cd.address);
    const st = await ctx.cri.runtime.status({ verbose: false });
    assert.ok(st.status?.conditions.find((c) => c.type === 'RuntimeReady')?.status, JSON.stringify(st.status?.conditions));
    const dump = spawnSync(bin.containerd, ['--config', path.join(R, MAIN), 'config', 'dump'], { encoding: 'utf8', timeout: 30_000 });
    assert.is(dump.status, 0, dump.stderr);
    const { runtime, images } = criTables(dump.stdout, v);
    assert.is(runtime.max_container_log_line_size, 12345, 'the operator\'s CRI setting survived');
    assert.is(v === '2' ? (images.pinned_images as Table).sandbox : images.sandbox_image, PAUSE_IMAGE);
    const runtimes = (runtime.containerd as Table).runtimes as Record<string, Table>;
    assert.is(runtimes.runc?.runtime_type, 'io.containerd.runc.v2', 'the default runc entry is still there');
    if (v !== '2') assert.is((runtimes.runc!.options as Table).SystemdCgroup, false);
    for (const e of registry) {
      assert.is(runtimes[e.runtimeEntry]?.runtime_path, path.join(R, '/opt/tsshim/current/bin/containerd-shim-tsshim-v2'), e.runtimeEntry);
      assert.is((runtimes[e.runtimeEntry]?.options as Table).ConfigPath, path.join(R, '/etc/tsshim', e.configFile), e.runtimeEntry);
    }
  });

  for (const h of HANDLERS) {
    const name = names[i++]!;
    const na = h.unavailable?.();
    if (na) {
      skipWithReason(t, name, na);
      continue;
    }
    t(name, async ({ cri, cd, W, R }) => {
      await podThrough(cri!, h.entry, path.join(W, 'pods'), h.entry !== 'tsshim-runc' ? undefined : async () => {
        // the shim that serves it is the installed copy, run by the Node that came with it
        const release = path.join(R, '/opt/tsshim', fs.readlinkSync(path.join(R, '/opt/tsshim/current')));
        const shims = findProcesses((argv) => argv.some((a) => a.startsWith(path.join(R, '/opt/tsshim/releases/'))));
        assert.ok(shims.length > 0, 'a shim process runs from the release');
        for (const p of shims) {
          assert.is(p.argv[0], path.join(release, 'bin/node'), p.argv.join(' '));
          assert.is(p.argv[1], path.join(release, 'dist/bundle/containerd-shim-tsshim-v2'), p.argv.join(' '));
        }
        // and uninstall refuses to pull it from under them
        const r = tsshim(['uninstall', '--host-root', R]);
        assert.is(r.code, 1, r.out + r.err);
        assert.match(r.err, 'still run from');
        assert.ok(fs.existsSync(path.join(R, '/var/lib/tsshim/install/manifest.json')), 'nothing undone');
      });
      const left = (await cd!.ctr(['task', 'ls', '-q'], { namespace: CRI_NAMESPACE })).stdout.trim();
      assert.is(left, '', 'no task left in k8s.io');
    });
  }

  t(names[i++]!, async (ctx) => {
    ctx.cri?.close();
    ctx.cri = undefined;
    await ctx.cd!.stop(); // containers removed, containerd stopped, its mounts gone; W kept
    ctx.cd = undefined;
    const r = tsshim(['uninstall', '--host-root', ctx.R, '--restart-cmd', `echo restarted >> ${ctx.W}/restart.log`]);
    assert.is(r.code, 0, r.out + r.err);
    assert.equal(diffSnapshots(ctx.before, snapshot(ctx.R, CONTAINERD_DATA)), []);
    assert.is(fs.readFileSync(path.join(ctx.W, 'restart.log'), 'utf8'), 'restarted\nrestarted\n', 'uninstall restarted containerd once');
    const again = tsshim(['uninstall', '--host-root', ctx.R]);
    assert.is(again.code, 0, again.err);
    assert.match(again.out, 'nothing installed');
  });

  t.run();
}

// ---------------------------------------------------------------- quick cases (no pods)

const quick = suite('installer: config shapes');
const why2 = containerdUnavailable('2');
if (why2) skipWithReason(quick, '[containerd 2] a config that already imports conf.d/*.toml is not touched', why2);
else {
  quick('[containerd 2] a config that already imports conf.d/*.toml is not touched', () => {
    const { W, R } = scratch('gl');
    try {
      const text = `# generated by containerd config default, trimmed\nversion = 3\nimports = [${JSON.stringify(path.join(R, '/etc/containerd/conf.d/*.toml'))}]\nroot = ${JSON.stringify(path.join(R, '/var/lib/containerd'))}\n`;
      operatorFile(R, MAIN, text);
      fs.mkdirSync(path.join(R, '/usr/bin'), { recursive: true });
      fs.symlinkSync(containerdRelease('2').containerd, path.join(R, '/usr/bin/containerd'));
      const before = snapshot(R);
      const r = tsshim(['install', '--host-root', R, '--prefix-paths', '--node', 'host']);
      assert.is(r.code, 0, r.out + r.err);
      assert.match(r.out, 'already imports');
      assert.match(r.out, 'config dump shows');
      assert.is(fs.readFileSync(path.join(R, MAIN), 'utf8'), text, 'main config untouched');
      assert.ok(fs.existsSync(path.join(R, DROP_IN)));
      assert.not.ok(fs.existsSync(path.join(R, '/opt/tsshim/current/bin/node')), '--node host: no Node copied');
      const u = tsshim(['uninstall', '--host-root', R]);
      assert.is(u.code, 0, u.out + u.err);
      assert.equal(diffSnapshots(before, snapshot(R)), []);
    } finally {
      fs.rmSync(W, { recursive: true, force: true });
    }
  });
}

const why17 = containerdUnavailable('1.7');
const name17 = '[containerd 1.7] the drop-in restates the operator\'s CRI table (1.7 replaces it too): config dump keeps their settings beside tsshim\'s entries';
if (why17) skipWithReason(quick, name17, why17);
else {
  quick(name17, () => {
    const { W, R } = scratch('17');
    try {
      operatorFile(R, MAIN, operatorConfig('1.7', R));
      fs.mkdirSync(path.join(R, '/usr/bin'), { recursive: true });
      fs.symlinkSync(containerdRelease('1.7').containerd, path.join(R, '/usr/bin/containerd'));
      const before = snapshot(R);
      const r = tsshim(['install', '--host-root', R, '--prefix-paths', '--node', 'host']);
      assert.is(r.code, 0, r.out + r.err);
      assert.match(r.out, 'containerd 1.7 (/usr/bin/containerd --version: containerd github.com/containerd/containerd 1.7');
      const dump = spawnSync(containerdRelease('1.7').containerd, ['--config', path.join(R, MAIN), 'config', 'dump'], { encoding: 'utf8', timeout: 30_000 });
      assert.is(dump.status, 0, dump.stderr);
      const { runtime } = criTables(dump.stdout, '1.7');
      assert.is(runtime.max_container_log_line_size, 12345);
      assert.is(runtime.sandbox_image, PAUSE_IMAGE);
      const runtimes = (runtime.containerd as Table).runtimes as Record<string, Table>;
      assert.is((runtimes.runc!.options as Table).SystemdCgroup, false);
      assert.is(runtimes['tsshim-runc']?.runtime_path, path.join(R, '/opt/tsshim/current/bin/containerd-shim-tsshim-v2'));
      const u = tsshim(['uninstall', '--host-root', R]);
      assert.is(u.code, 0, u.out + u.err);
      assert.equal(diffSnapshots(before, snapshot(R)), []);
    } finally {
      fs.rmSync(W, { recursive: true, force: true });
    }
  });
}

quick('[containerd 1.6] an operator\'s edit of the main config after install survives uninstall; only the imports entry goes', () => {
  const { W, R } = scratch('ed');
  try {
    const text = '# mine\nversion = 2\n\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.9"\n';
    operatorFile(R, MAIN, text);
    const r = tsshim(['install', '--host-root', R, '--prefix-paths', '--node', 'host', '--containerd-version', '1.6']);
    assert.is(r.code, 0, r.out + r.err);
    assert.match(r.out, 'not checked with `containerd config dump`');
    const installed = fs.readFileSync(path.join(R, MAIN), 'utf8');
    const edited = installed.replace('pause:3.9', 'pause:3.10') + '# added by the operator later\n';
    fs.writeFileSync(path.join(R, MAIN), edited);
    const u = tsshim(['uninstall', '--host-root', R]);
    assert.is(u.code, 0, u.out + u.err);
    assert.match(u.out, 'changed since install: removed only its imports entry');
    assert.is(fs.readFileSync(path.join(R, MAIN), 'utf8'), text.replace('pause:3.9', 'pause:3.10') + '# added by the operator later\n');
    assert.equal(fs.readdirSync(R).sort(), ['etc']);
    assert.equal(fs.readdirSync(path.join(R, 'etc')), ['containerd']);
    assert.equal(fs.readdirSync(path.join(R, 'etc/containerd')), ['config.toml']);
  } finally {
    fs.rmSync(W, { recursive: true, force: true });
  }
});

quick('a failed install undoes itself: a Node that does not run in the host root (chroot: no libraries there) leaves it as it was', () => {
  const { W, R } = scratch('rb');
  try {
    operatorFile(R, MAIN, 'version = 2\n');
    const before = snapshot(R);
    const r = tsshim(['install', '--host-root', R, '--containerd-version', '1.6']); // the host's view: chroot into R
    assert.is(r.code, 1, r.out + r.err);
    assert.match(r.out, 'install failed: the Node binary copied from');
    assert.match(r.out, 'undoing what this install did');
    assert.match(r.err, 'nothing was installed');
    assert.equal(diffSnapshots(before, snapshot(R)), []);
  } finally {
    fs.rmSync(W, { recursive: true, force: true });
  }
});

quick.run();
