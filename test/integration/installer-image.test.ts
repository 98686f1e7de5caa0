// The installer image and the DaemonSet (issue 13.3): deploy/build-image.sh builds the OCI tarball
// offline; a real containerd (1.6) imports it; the DaemonSet's own install command (taken from
// deploy/tsshim-deploy.yaml) runs in it as a pod through CRI, the way a kubelet runs the pod spec
// (privileged, hostPID, the host's / at /host, its env), against a copy-on-write view of this machine's real root (an overlay
// whose lower layer is /, so nothing of the machine changes): it finds the host's containerd 1.6
// through chroot, adds the drop-in to Debian's own /etc/containerd/config.toml, and becomes ready by
// the pod's readiness probe. Then the cleanup DaemonSet's command (tsshim-cleanup.yaml) uninstalls:
// the overlay's upper layer then holds nothing that differs from the real root. The RuntimeClasses in
// deploy/ are the generator's output.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { connectCri, criV1, type CriClient } from '../../src/client/cri.js';
import { startContainerd, REPO_ROOT, type PrivateContainerd } from '../helpers/containerd.js';
import { CRI_NAMESPACE, criConfig, importCriImages } from '../helpers/cri.js';
import { containerdUnavailable } from '../helpers/containerd-version.js';
import { mountsUnder, unmountUnder } from '../helpers/teardown.js';
import { waitFor } from '../helpers/proc.js';
import { skipWithReason } from '../helpers/skip.js';
import { registry } from '../../src/composition/registry.js';
import { runtimeClasses } from '../../src/cli/generate.js';
import { addImport } from '../../src/cli/install/toml-edit.js';

const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const { NamespaceMode } = criV1;
const IMAGE = `docker.io/tsshim/installer:${VERSION}`;
const DEPLOY = path.join(REPO_ROOT, 'deploy');

/** The shell script of a DaemonSet's container (its `args: - |` block), as written in the YAML. */
function daemonSetScript(file: string): { script: string; env: Record<string, string>; probe: string[] } {
  const lines = fs.readFileSync(path.join(DEPLOY, file), 'utf8').split('\n');
  const at = lines.findIndex((l) => /^\s+- \|$/.test(l));
  assert.ok(at > 0, `${file}: no args block`);
  const indent = /^\s*/.exec(lines[at + 1]!)![0].length;
  const body: string[] = [];
  for (const l of lines.slice(at + 1)) {
    if (l.trim() && /^\s*/.exec(l)![0].length < indent) break;
    body.push(l.slice(indent));
  }
  const env: Record<string, string> = {};
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s+- name: ([A-Z_]+)$/.exec(lines[i]!);
    const v = m && /^\s+value: (.*)$/.exec(lines[i + 1] ?? '');
    if (m && v) env[m[1]!] = v[1] === '""' ? '' : v[1]!;
  }
  const probe = /readinessProbe:[^\n]*\n\s+exec:\n\s+command: (\[.*\])\n/.exec(lines.join('\n'));
  assert.ok(probe, `${file}: no readinessProbe exec command`);
  return { script: body.join('\n').trim() + '\n', env, probe: JSON.parse(probe[1]!) as string[] };
}

interface Ctx {
  W: string;
  merged: string;
  upper: string;
  cd?: PrivateContainerd;
  cri?: CriClient;
  archive: string;
}

const t = suite<Ctx>('installer image');
const why = containerdUnavailable('1.6');

t('deploy/runtimeclasses.yaml is `tsshim config runtimeclass` (one source: the registry)', () => {
  assert.is(fs.readFileSync(path.join(DEPLOY, 'runtimeclasses.yaml'), 'utf8'), runtimeClasses(registry));
  for (const f of ['tsshim-deploy.yaml', 'tsshim-cleanup.yaml']) assert.match(fs.readFileSync(path.join(DEPLOY, f), 'utf8'), `image: ${IMAGE}\n`, `${f} names the image build-image.sh builds`);
});

const names = [
  'build-image.sh: an OCI image tarball, built offline; containerd imports it',
  'the DaemonSet\'s install command in the image: chroot into the host root, Debian\'s config gets one imports entry, ready',
  'the cleanup DaemonSet\'s command: nothing of the install is left in the host root',
];
if (why) for (const n of names) skipWithReason(t, n, why);
else {
  t.before(async (ctx) => {
    ctx.W = `/run/tsshim-test/instimg-${randomBytes(3).toString('hex')}`;
    ctx.upper = path.join(ctx.W, 'upper');
    ctx.merged = path.join(ctx.W, 'merged');
    for (const d of [ctx.upper, ctx.merged, path.join(ctx.W, 'work')]) fs.mkdirSync(d, { recursive: true });
    // A copy-on-write view of this machine's root: the install writes into `upper` only.
    const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=/,upperdir=${ctx.upper},workdir=${path.join(ctx.W, 'work')}`, ctx.merged], { encoding: 'utf8' });
    assert.is(m.status, 0, `overlay of /: ${m.stderr}`);
    assert.equal(mountsUnder(ctx.merged), [ctx.merged]);
    ctx.cd = await startContainerd({ name: 'instimg', containerd: '1.6', extraConfig: criConfig({}) });
    await importCriImages(ctx.cd); // the pause image
    ctx.cri = await connectCri(ctx.cd.address);
  });
  t.after(async (ctx) => {
    ctx.cri?.close();
    await ctx.cd?.stop();
    if (ctx.W) {
      await unmountUnder(ctx.W);
      fs.rmSync(ctx.W, { recursive: true, force: true });
    }
  });

  t(names[0]!, async (ctx) => {
    ctx.archive = path.join(ctx.W, 'tsshim-installer.oci.tar');
    const b = spawnSync('sh', [path.join(DEPLOY, 'build-image.sh'), '--out', ctx.archive], { encoding: 'utf8', timeout: 600_000 });
    assert.is(b.status, 0, b.stdout + b.stderr);
    assert.match(b.stdout, `${ctx.archive}: ${IMAGE}`);
    const listing = spawnSync('tar', ['-tf', ctx.archive], { encoding: 'utf8' }).stdout.split('\n');
    for (const f of ['oci-layout', 'index.json', 'blobs/sha256/']) assert.ok(listing.includes(f), f);
    // into k8s.io, where the kubelet's pods find it (`ctr -n k8s.io images import`, as the YAML says)
    const imp = await ctx.cd!.ctr(['images', 'import', ctx.archive], { timeoutMs: 300_000, namespace: CRI_NAMESPACE });
    assert.is(imp.exitCode, 0, imp.stderr);
    const ls = await ctx.cd!.ctr(['images', 'ls', '-q'], { namespace: CRI_NAMESPACE });
    assert.ok(ls.stdout.split('\n').includes(IMAGE), ls.stdout);
    const v = await ctx.cd!.ctr(['run', '--rm', IMAGE, `v-${randomBytes(3).toString('hex')}`, 'tsshim', '--version'], { namespace: CRI_NAMESPACE });
    assert.is(v.exitCode, 0, v.stderr);
    assert.is(v.stdout.trim(), `tsshim ${VERSION}`);
  });

  /**
   * Runs a DaemonSet's pod through CRI as a kubelet would (privileged, hostPID, the host root at
   * /host, its command, args and env from the YAML); returns its log once the readiness probe passes.
   */
  async function runPod(ctx: Ctx, file: string, envOverride: Record<string, string>): Promise<string> {
    const { script, env, probe } = daemonSetScript(file);
    const cri = ctx.cri!;
    const uid = randomBytes(8).toString('hex');
    const logDirectory = path.join(ctx.W, 'pods', uid);
    fs.mkdirSync(logDirectory, { recursive: true });
    const namespaceOptions = { network: NamespaceMode.NODE, pid: NamespaceMode.NODE, ipc: NamespaceMode.POD }; // hostPID: true
    const sandboxConfig = criV1.PodSandboxConfig.fromPartial({
      metadata: { name: file.replace('.yaml', ''), uid, namespace: 'kube-system', attempt: 0 },
      logDirectory,
      linux: { securityContext: { privileged: true, namespaceOptions } },
    });
    const { podSandboxId } = await cri.runtime.runPodSandbox({ config: sandboxConfig, runtimeHandler: 'runc' }, { timeoutMs: 120_000 });
    let said = '';
    try {
      const { containerId } = await cri.runtime.createContainer(
        {
          podSandboxId,
          sandboxConfig,
          config: {
            metadata: { name: 'c', attempt: 0 },
            image: { image: IMAGE },
            command: ['/bin/sh', '-c'],
            args: [script],
            envs: Object.entries({ ...env, ...envOverride }).map(([key, value]) => ({ key, value })),
            mounts: [{ containerPath: '/host', hostPath: ctx.merged, readonly: false }], // hostPath / at /host
            logPath: 'c.log',
            linux: { securityContext: { privileged: true, namespaceOptions } },
          },
        },
        { timeoutMs: 60_000 },
      );
      await cri.runtime.startContainer({ containerId }, { timeoutMs: 60_000 });
      const ready = await waitFor(async () => {
        const st = (await cri.runtime.containerStatus({ containerId })).status?.state;
        if (st !== criV1.ContainerState.CONTAINER_RUNNING) return st === criV1.ContainerState.CONTAINER_EXITED;
        return (await cri.runtime.execSync({ containerId, cmd: probe, timeout: 10n }, { timeoutMs: 30_000 })).exitCode === 0;
      }, 240_000, 500);
      said = fs.readFileSync(path.join(logDirectory, 'c.log'), 'utf8').replace(/^\S+ (stdout|stderr) [FP] /gm, '');
      const st = (await cri.runtime.containerStatus({ containerId })).status;
      assert.ok(ready && st?.state === criV1.ContainerState.CONTAINER_RUNNING, `${file}: not ready (state ${st?.state}, exit ${st?.exitCode});\n${said}`);
      await cri.runtime.stopContainer({ containerId, timeout: 2n }, { timeoutMs: 60_000 });
      await cri.runtime.removeContainer({ containerId }, { timeoutMs: 60_000 });
    } finally {
      await cri.runtime.stopPodSandbox({ podSandboxId }, { timeoutMs: 60_000 });
      await cri.runtime.removePodSandbox({ podSandboxId }, { timeoutMs: 60_000 });
    }
    return said;
  }

  t(names[1]!, async (ctx) => {
    const said = await runPod(ctx, 'tsshim-deploy.yaml', { RESTART_CMD: 'echo restart requested' });
    assert.match(said, 'tsshim install: containerd 1.6 (/usr/bin/containerd --version: containerd github.com/containerd/containerd 1.6');
    assert.match(said, 'checked: /usr/bin/containerd config dump shows');
    assert.match(said, 'restart requested');
    const real = fs.readFileSync('/etc/containerd/config.toml', 'utf8');
    assert.is(fs.readFileSync(path.join(ctx.merged, '/etc/containerd/config.toml'), 'utf8'), addImport(real, '/etc/containerd/conf.d/tsshim.toml').text);
    assert.match(fs.readFileSync(path.join(ctx.merged, '/etc/containerd/conf.d/tsshim.toml'), 'utf8'), 'runtime_path = "/opt/tsshim/current/bin/containerd-shim-tsshim-v2"');
    // the host runs the CLI it got, with the image's Node, in its own root
    const cli = spawnSync('chroot', [ctx.merged, '/usr/local/bin/tsshim', '--version'], { encoding: 'utf8' });
    assert.is(cli.status, 0, cli.stderr);
    assert.is(cli.stdout.trim(), `tsshim ${VERSION}`);
    assert.not.ok(fs.existsSync('/opt/tsshim/current'), 'the real root is untouched');
  });

  t(names[2]!, async (ctx) => {
    const said = await runPod(ctx, 'tsshim-cleanup.yaml', { RESTART_CMD: 'echo restart requested' });
    assert.match(said, 'tsshim uninstall: restored /etc/containerd/config.toml');
    // Every path left in the upper layer is a copy of the real one (a restored file, a directory
    // copied up); a whiteout (a real file deleted) or anything new would show here.
    const problems: string[] = [];
    const walk = (rel: string) => {
      for (const n of fs.readdirSync(path.join(ctx.upper, rel))) {
        const r = path.join(rel, n);
        const up = fs.lstatSync(path.join(ctx.upper, r));
        const real = fs.lstatSync(path.join('/', r), { throwIfNoEntry: false });
        if (!real) problems.push(`new: ${r}`);
        else if (up.isCharacterDevice() && up.rdev === 0) problems.push(`deleted: ${r}`);
        else if (up.isDirectory()) walk(r);
        else if (up.isSymbolicLink()) {
          if (fs.readlinkSync(path.join(ctx.upper, r)) !== fs.readlinkSync(path.join('/', r))) problems.push(`link differs: ${r}`);
        } else if (!fs.readFileSync(path.join(ctx.upper, r)).equals(fs.readFileSync(path.join('/', r))) || (up.mode & 0o7777) !== (real.mode & 0o7777) || Math.round(up.mtimeMs) !== Math.round(real.mtimeMs)) {
          problems.push(`differs: ${r}`);
        }
      }
    };
    walk('/');
    assert.equal(problems, []);
  });
}

t.run();
