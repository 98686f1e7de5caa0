// `tsshim config containerd --version 2` loaded by a real containerd 2.x (config version 3,
// io.containerd.cri.v1.runtime), and a pod through every handler over CRI: RunPodSandbox,
// CreateContainer, StartContainer, ExecSync, StopContainer, RemoveContainer, StopPodSandbox,
// RemovePodSandbox, nothing left in k8s.io. The handler files are `tsshim config handlers` output;
// kata's delegate is replaced by the stand-in containerd-shim-runc-v2 (no Kata here) and youki's
// binary points at the peer build. Also: the runtime handler features containerd 2.x's CRI learns
// from each shim's `-info` (recursive read-only mounts) are those of the handler's backend.
// Skipped with the reason when containerd 2.x is not built.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connectCri, criV1, type CriClient } from '../../src/client/cri.js';
import { startContainerd, REPO_ROOT, type PrivateContainerd } from '../helpers/containerd.js';
import { containerdUnavailable, kataStandInDelegate, PEERS_DIR } from '../helpers/containerd-version.js';
import { CRI_NAMESPACE, PAUSE_IMAGE, TEST_IMAGE, importCriImages, restrictOomScoreAdj, appContainerConfig } from '../helpers/cri.js';
import { skipWithReason } from '../helpers/skip.js';
import { RUNTIME_TYPE } from '../../src/shim-api/runtime-type.js';

const { NamespaceMode, ContainerState, PodSandboxState } = criV1;
const TSSHIM = join(REPO_ROOT, 'bin', 'tsshim');
const YOUKI = join(PEERS_DIR, 'youki', 'bin', 'youki');
/** The kata STAND-IN delegate on 2.x: 2.x's own containerd-shim-runc-v2 (bootstrap protocol, task v3; containerd-version.ts). */
const KATA_STANDIN = kataStandInDelegate('2');

const onPath = (bin: string) => (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, bin)));

/** Runtime entry -> why it cannot run here (undefined: it runs). */
const HANDLERS: Array<{ entry: string; unavailable?: () => string | undefined }> = [
  { entry: 'runc' },
  { entry: 'tsshim-runc' },
  { entry: 'tsshim-gvisor', unavailable: () => (onPath('runsc') ? undefined : 'runsc is not installed') },
  { entry: 'tsshim-youki', unavailable: () => (existsSync(join(PEERS_DIR, 'youki', 'VERSION')) && existsSync(YOUKI) ? undefined : `youki is not built (${YOUKI})`) },
  { entry: 'tsshim-kata' },
  { entry: 'tsshim-crun', unavailable: () => 'crun 1.8.1 (Debian) cannot create containers on this host\'s hybrid cgroups (tsshim doctor); its entry is checked as loaded only' },
  { entry: 'tsshim-oci', unavailable: () => 'the generic oci handler\'s default binary is crun, which cannot create containers on this host\'s hybrid cgroups (tsshim doctor); its entry is checked as loaded only' },
];

interface Ctx {
  cd: PrivateContainerd;
  cri: CriClient;
  tmp: string;
  generated: string;
}

const t = suite<Ctx>('containerd 2 config');
const why = containerdUnavailable('2');

function tsshim(args: string[]): string {
  const r = spawnSync(process.execPath, [TSSHIM, ...args], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return r.stdout;
}

if (why) {
  skipWithReason(t, 'generated version-3 entries load in containerd 2.x', why);
  for (const h of HANDLERS) skipWithReason(t, `[containerd 2] pod through ${h.entry} via CRI`, why);
} else {
  t.before(async (ctx) => {
    ctx.tmp = mkdtempSync('/tmp/tsshim-c2cfg-');
    const etc = join(ctx.tmp, 'etc');
    tsshim(['config', 'handlers', '--out', etc]);
    // kata: the stand-in delegate (see KATA_STANDIN); youki: the peer build.
    writeFileSync(join(etc, 'kata.toml'), `handler = "kata"\nname = "tsshim-kata"\n\n[options]\n# stand-in delegate: real Kata is not installable here\nshim = ${JSON.stringify(KATA_STANDIN)}\n`);
    if (existsSync(YOUKI)) writeFileSync(join(etc, 'youki.toml'), readFileSync(join(etc, 'youki.toml'), 'utf8').replace(/^handler = "youki"$/m, `handler = "youki"\nbinary = ${JSON.stringify(YOUKI)}`));
    ctx.generated = tsshim(['config', 'containerd', '--version', '2', '--config-dir', etc]);
    const cni = join(ctx.tmp, 'cni');
    mkdirSync(join(cni, 'bin'), { recursive: true });
    mkdirSync(join(cni, 'conf'), { recursive: true });
    // The generated text with its runc note uncommented (as its comment says to), plus what a
    // test instance needs: the local sandbox image, empty CNI dirs (host-network pods), a loopback
    // streaming server, the oom_score_adj clamp of this container host.
    const toml = [
      ctx.generated.replace(/^# (\[plugins|  default_runtime_name|  runtime_type)/gm, '$1'),
      `[plugins.'io.containerd.grpc.v1.cri']`,
      `  stream_server_address = "127.0.0.1"`,
      `  stream_server_port = "0"`,
      `[plugins.'io.containerd.cri.v1.images'.pinned_images]`,
      `  sandbox = ${JSON.stringify(PAUSE_IMAGE)}`,
      `[plugins.'io.containerd.cri.v1.runtime'.cni]`,
      `  bin_dirs = [${JSON.stringify(join(cni, 'bin'))}]`,
      `  conf_dir = ${JSON.stringify(join(cni, 'conf'))}`,
      `[plugins.'io.containerd.cri.v1.runtime']`,
      `  restrict_oom_score_adj = ${restrictOomScoreAdj()}`,
      '',
    ].join('\n');
    ctx.cd = await startContainerd({ name: 'c2cfg', containerd: '2', extraConfig: toml });
    await importCriImages(ctx.cd);
    ctx.cri = await connectCri(ctx.cd.address);
  });

  t.after(async (ctx) => {
    ctx.cri?.close();
    await ctx.cd?.stop();
    if (ctx.tmp) rmSync(ctx.tmp, { recursive: true, force: true });
  });

  t('generated version-3 entries load in containerd 2.x', async ({ cd, cri, generated, tmp }) => {
    assert.match(generated, /^version = 3$/m);
    const written = readFileSync(cd.configFile, 'utf8');
    assert.match(written, /^version = 3$/m, 'the instance runs on a version-3 config');
    const st = await cri.runtime.status({ verbose: true });
    const ready = st.status?.conditions.find((c) => c.type === 'RuntimeReady');
    assert.ok(ready?.status, `RuntimeReady: ${JSON.stringify(st.status?.conditions)}`);
    const dump = spawnSync(cd.binaries.containerd, ['--config', cd.configFile, 'config', 'dump'], { encoding: 'utf8', timeout: 30_000 });
    assert.is(dump.status, 0, dump.stderr);
    for (const h of HANDLERS.filter((x) => x.entry !== 'runc')) {
      const at = dump.stdout.indexOf(`[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.${h.entry}]`);
      assert.ok(at >= 0, `${h.entry} in containerd 2's config dump`);
      const section = dump.stdout.slice(at, dump.stdout.indexOf('ConfigPath', at) + 200);
      assert.match(section, `runtime_type = '${RUNTIME_TYPE}'`, `${h.entry} runtime_type`);
      assert.match(section, 'sandboxer = \'podsandbox\'', `${h.entry} sandboxer`);
      assert.match(section, join(tmp, 'etc'), `${h.entry} ConfigPath`);
    }
  });

  // containerd 2.x's CRI runs `<shim> -info` per runtime handler at start-up and enables recursive
  // read-only mounts for a handler whose runtime features list "rro" (and the kernel has them).
  // Each tsshim handler must report its backend's truth: runc and the kata stand-in (2.x's runc
  // shim, itself reporting runc's) as the reference; youki what `youki features` says; the pinned
  // runsc what `runsc features` says (no rro; gVisor's own shim reports the same document); crun 1.8
  // (no `features`) nothing, so CRI keeps the feature off for it.
  t('[containerd 2] runtime handler features (from -info) are the backend\'s', async ({ cri }) => {
    const st = await cri.runtime.status({ verbose: false });
    const rro = new Map(st.runtimeHandlers.map((h) => [h.name, h.features?.recursiveReadOnlyMounts ?? false]));
    const ref = rro.get('runc');
    assert.is(ref, true, 'the reference runc-v2 reports recursive read-only mounts on this kernel (runc 1.1 lists rro)');
    assert.is(rro.get('tsshim-runc'), ref, 'tsshim-runc: runc features, as the reference');
    assert.is(rro.get('tsshim-kata'), ref, 'tsshim-kata (stand-in delegate 2.x runc-v2): the delegate\'s -info features');
    assert.is(rro.get('tsshim-gvisor'), false, "tsshim-gvisor: the pinned runsc's features list no rro (Debian's runsc has none)");
    assert.is(rro.get('tsshim-crun'), false, 'tsshim-crun: crun 1.8 has no features command');
    if (existsSync(YOUKI)) {
      const f = spawnSync(YOUKI, ['features'], { encoding: 'utf8', timeout: 30_000 });
      assert.is(f.status, 0, f.stderr);
      const youkiRro = ((JSON.parse(f.stdout) as { mountOptions?: string[] }).mountOptions ?? []).includes('rro');
      assert.is(rro.get('tsshim-youki'), youkiRro, `tsshim-youki: youki features ${youkiRro ? 'lists' : 'does not list'} rro`);
    }
  });

  for (const h of HANDLERS) {
    const na = h.unavailable?.();
    const name = `[containerd 2] pod through ${h.entry} via CRI`;
    if (na) {
      skipWithReason(t, name, na);
      continue;
    }
    t(name, async ({ cd, cri, tmp }) => {
      const uid = randomBytes(8).toString('hex');
      const logDirectory = join(tmp, 'pods', uid);
      mkdirSync(logDirectory, { recursive: true });
      const ns = { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD };
      const sandboxConfig = criV1.PodSandboxConfig.fromPartial({
        metadata: { name: `c2-${h.entry}`, uid, namespace: 'tsshim-test', attempt: 0 },
        logDirectory,
        linux: { securityContext: { namespaceOptions: ns } },
      });
      const { podSandboxId } = await cri.runtime.runPodSandbox({ config: sandboxConfig, runtimeHandler: h.entry }, { timeoutMs: 120_000 });
      try {
        const ps = await cri.runtime.podSandboxStatus({ podSandboxId, verbose: true });
        assert.is(ps.status?.state, PodSandboxState.SANDBOX_READY);
        assert.is(ps.status?.runtimeHandler, h.entry);
        const { containerId } = await cri.runtime.createContainer(
          {
            podSandboxId,
            sandboxConfig,
            config: appContainerConfig({ logPath: 'app.log', namespaceOptions: ns }),
          },
          { timeoutMs: 60_000 },
        );
        await cri.runtime.startContainer({ containerId }, { timeoutMs: 60_000 });
        assert.is((await cri.runtime.containerStatus({ containerId })).status?.state, ContainerState.CONTAINER_RUNNING);
        const ex = await cri.runtime.execSync({ containerId, cmd: ['sh', '-c', 'echo exec-ok; exit 3'], timeout: 30n }, { timeoutMs: 60_000 });
        assert.is(Buffer.from(ex.stdout).toString(), 'exec-ok\n');
        assert.is(ex.exitCode, 3);
        await cri.runtime.stopContainer({ containerId, timeout: 2n }, { timeoutMs: 60_000 });
        const exited = await cri.runtime.containerStatus({ containerId });
        assert.is(exited.status?.state, ContainerState.CONTAINER_EXITED);
        const code = exited.status?.exitCode;
        // sh as PID 1 ignores SIGTERM on the host kernel (the grace ends in SIGKILL); gVisor's init may take it.
        assert.ok(code === 137 || code === 143, `exit code 137 or 143, got ${code}`);
        assert.match(readFileSync(join(logDirectory, 'app.log'), 'utf8'), /^\S+ stdout F hi$/m, 'CRI log');
        await cri.runtime.removeContainer({ containerId }, { timeoutMs: 60_000 });
      } finally {
        await cri.runtime.stopPodSandbox({ podSandboxId }, { timeoutMs: 60_000 });
        await cri.runtime.removePodSandbox({ podSandboxId }, { timeoutMs: 60_000 });
      }
      const tasks = (await cd.ctr(['task', 'ls', '-q'], { namespace: CRI_NAMESPACE })).stdout.trim();
      const containers = (await cd.ctr(['containers', 'ls', '-q'], { namespace: CRI_NAMESPACE })).stdout.trim();
      assert.is(tasks, '', 'no task left in k8s.io');
      assert.is(containers, '', 'no container left in k8s.io');
    });
  }
}

t.run();
