// tsshim through Kubernetes' interface, without a kubelet: a CRI client (src/client/cri.ts) drives
// containerd's CRI plugin on a private containerd. RuntimeClass handler -> CRI runtime_handler ->
// containerd runtime entry -> shim:
//
//   runc           io.containerd.runc.v2    the reference shim
//   tsshim-runc    io.containerd.tsshim.v2  ConfigPath -> handler = "runc"
//   tsshim-gvisor  io.containerd.tsshim.v2  ConfigPath -> handler = "gvisor", ptrace, host network
//   tsshim-youki   io.containerd.tsshim.v2  ConfigPath -> handler = "youki" (youki 0.7.0, scripts/setup.sh)
//   tsshim-kata    io.containerd.tsshim.v2  ConfigPath -> handler = "kata" delegating to
//                                           containerd-shim-runc-v2 (a stand-in: no Kata/VM here)
//
// One pod lifecycle scenario, run for every handler. Pods use the host network namespace, so no CNI.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse as parseToml } from 'smol-toml';
import type { ServiceError } from '@grpc/grpc-js';
import { connectCri, criV1, type CriClient } from '../../src/client/cri.js';
import { startContainerd, type PrivateContainerd } from '../helpers/containerd.js';
import {
  CRI_NAMESPACE,
  CRI_STOP_EXIT_STATUS,
  CRI_PLUGIN_ID,
  PAUSE_IMAGE,
  RUNC_RUNTIME_TYPE,
  TEST_IMAGE,
  TSSHIM_RUNTIME_TYPE,
  criConfig,
  importCriImages,
  restrictOomScoreAdj,
  appContainerConfig,
} from '../helpers/cri.js';
import { findProcesses, runCommand, waitFor } from '../helpers/proc.js';
import { shimPids } from '../helpers/tasks.js';
import { skipWithReason } from '../helpers/skip.js';
import { KERNEL_PROBE, classifyKernel, type SeenKernel } from '../helpers/isolation.js';

const { NamespaceMode, ContainerState, PodSandboxState } = criV1;
type PodSandboxConfig = criV1.PodSandboxConfig;

interface Handler {
  /** CRI runtime_handler = containerd runtime entry name. */
  name: string;
  runtimeType: string;
  /** Body of the tsshim handler config file (ConfigPath); none for the reference runtime. */
  tsshimConfig?: string;
  /** Basename of the shim binary containerd starts for this entry. */
  shimBinary: string;
  label: string;
  /** The kernel the pod's containers must see (`uname -r; dmesg` through ExecSync). */
  isolation: SeenKernel;
  /** Exit status of StopContainer (timeout 2 s) of a handler-less PID 1 (see CRI_STOP_EXIT_STATUS). */
  stopExitStatus: number;
  /** Why the scenario cannot run on this machine, if it cannot. */
  unavailable?: () => string | undefined;
}

const HANDLERS: Handler[] = [
  { name: 'runc', runtimeType: RUNC_RUNTIME_TYPE, shimBinary: 'containerd-shim-runc-v2', label: 'runc (reference: io.containerd.runc.v2)', isolation: 'host-kernel', stopExitStatus: CRI_STOP_EXIT_STATUS.linux },
  {
    name: 'tsshim-runc',
    runtimeType: TSSHIM_RUNTIME_TYPE,
    tsshimConfig: 'handler = "runc"\n',
    shimBinary: 'containerd-shim-tsshim-v2',
    label: 'tsshim-runc (tsshim, runc handler)',
    isolation: 'host-kernel',
    stopExitStatus: CRI_STOP_EXIT_STATUS.linux,
  },
  {
    name: 'tsshim-gvisor',
    runtimeType: TSSHIM_RUNTIME_TYPE,
    tsshimConfig: 'handler = "gvisor"\n\n[options]\nplatform = "ptrace"\nnetwork = "host"\n',
    shimBinary: 'containerd-shim-tsshim-v2',
    label: 'tsshim-gvisor (tsshim, gvisor handler, ptrace, host network)',
    isolation: 'gvisor',
    stopExitStatus: CRI_STOP_EXIT_STATUS.gvisor, // GVISOR_INIT_SIGTERM_REASON
    unavailable: () => (onPath('runsc') ? undefined : 'runsc is not installed'),
  },
  {
    name: 'tsshim-youki',
    runtimeType: TSSHIM_RUNTIME_TYPE,
    tsshimConfig: 'handler = "youki"\n',
    shimBinary: 'containerd-shim-tsshim-v2',
    label: 'tsshim-youki (tsshim, youki handler)',
    isolation: 'host-kernel',
    stopExitStatus: CRI_STOP_EXIT_STATUS.linux,
    unavailable: () => (onPath('youki') ? undefined : 'youki is not installed (scripts/setup.sh builds youki 0.7.0)'),
  },
  {
    name: 'tsshim-kata',
    runtimeType: TSSHIM_RUNTIME_TYPE,
    tsshimConfig: 'handler = "kata"\n\n[options]\nshim = "containerd-shim-runc-v2"\n',
    shimBinary: 'containerd-shim-tsshim-v2',
    label: 'tsshim-kata: kata handler (delegate stand-in: containerd-shim-runc-v2)',
    // The stand-in delegate runs the pod with runc on the host kernel (real Kata: 'vm').
    isolation: 'host-kernel',
    stopExitStatus: CRI_STOP_EXIT_STATUS.linux,
    unavailable: () => (onPath('containerd-shim-runc-v2') ? undefined : 'containerd-shim-runc-v2 is not installed'),
  },
];

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d && existsSync(join(d, bin)));
}

interface Ctx {
  cd: PrivateContainerd;
  cri: CriClient;
  tmp: string;
}

const t = suite<Ctx>('cri');

t.before(async (ctx) => {
  ctx.tmp = mkdtempSync('/tmp/tsshim-cri-');
  const runtimes: Parameters<typeof criConfig>[0] = {};
  for (const h of HANDLERS) {
    if (!h.tsshimConfig) continue;
    const configPath = join(ctx.tmp, `${h.name}.toml`);
    writeFileSync(configPath, h.tsshimConfig);
    runtimes[h.name] = { runtimeType: h.runtimeType, configPath };
  }
  ctx.cd = await startContainerd({ name: 'cri', extraConfig: criConfig(runtimes, { cniDir: join(ctx.tmp, 'cni') }) });
  await importCriImages(ctx.cd);
  ctx.cri = await connectCri(ctx.cd.address);
});

t.after(async (ctx) => {
  ctx.cri?.close();
  await ctx.cd?.stop();
  // The harness removes leftover runc containers; runsc ones (a failed gVisor scenario) are ours to remove.
  for (const id of createdIds) {
    if (runscStateFiles(id).length > 0) {
      await runCommand('runsc', ['--root', RUNSC_ROOT, 'delete', '-force', id], { timeoutMs: 20_000 }).catch(() => undefined);
    }
  }
  if (ctx.tmp) rmSync(ctx.tmp, { recursive: true, force: true });
});

/** Pod and container ids this file created (for the runsc clean-up in after()). */
const createdIds = new Set<string>();
const RUNC_ROOT = join('/run/containerd/runc', CRI_NAMESPACE);
const RUNSC_ROOT = join('/run/containerd/runsc', CRI_NAMESPACE);

/** runsc keeps `<id>_sandbox:<sandbox id>.state` (and .lock) files in its root. */
function runscStateFiles(id: string): string[] {
  try {
    return readdirSync(RUNSC_ROOT).filter((f) => f.startsWith(id + '_'));
  } catch {
    return [];
  }
}

const grpcCode = (e: unknown): number | undefined => (e as ServiceError)?.code;
const NOT_FOUND = 5;

async function rejectsNotFound(p: Promise<unknown>, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.is(grpcCode(e), NOT_FOUND, `${what}: expected NOT_FOUND, got ${(e as Error).message}`);
    return;
  }
  assert.unreachable(`${what}: expected NOT_FOUND, the call succeeded`);
}

t('criConfig: runc entry kept, tsshim entries with ConfigPath, sandbox image, empty CNI dirs', ({ tmp }) => {
  const text = criConfig({ 'tsshim-x': { runtimeType: TSSHIM_RUNTIME_TYPE, configPath: '/etc/x.toml', podAnnotations: ['io.tsshim.*'] } }, { cniDir: join(tmp, 'cni-check') });
  const doc = JSON.parse(JSON.stringify(parseToml(text))); // plain objects for deep equality
  assert.is(doc.version, 2);
  const cri = doc.plugins[CRI_PLUGIN_ID];
  assert.is(cri.sandbox_image, PAUSE_IMAGE);
  assert.is(cri.disable_cgroup, false);
  assert.is(cri.restrict_oom_score_adj, restrictOomScoreAdj());
  assert.is(cri.containerd.default_runtime_name, 'runc');
  assert.equal(cri.containerd.runtimes.runc, { runtime_type: RUNC_RUNTIME_TYPE });
  assert.equal(cri.containerd.runtimes['tsshim-x'], {
    runtime_type: TSSHIM_RUNTIME_TYPE,
    pod_annotations: ['io.tsshim.*'],
    options: { ConfigPath: '/etc/x.toml' },
  });
  assert.ok(existsSync(cri.cni.bin_dir) && existsSync(cri.cni.conf_dir), 'CNI directories created');
});

t('CRI plugin is up: Version v1, RuntimeReady, both images visible to the image service', async ({ cri, cd }) => {
  const v = await cri.runtime.version({ version: 'v1' });
  assert.is(v.runtimeName, 'containerd');
  assert.is(v.runtimeApiVersion, 'v1');
  assert.ok(v.runtimeVersion.length > 0);
  const st = await cri.runtime.status({ verbose: true });
  const ready = st.status?.conditions.find((c) => c.type === 'RuntimeReady');
  assert.ok(ready?.status, `RuntimeReady: ${JSON.stringify(st.status?.conditions)}`);
  const cfg = JSON.parse(st.info.config ?? '{}');
  assert.ok(cfg.containerd?.runtimes?.['tsshim-runc'], `runtime entry tsshim-runc loaded: ${Object.keys(cfg.containerd?.runtimes ?? {})}`);
  assert.is(cfg.containerd.runtimes['tsshim-runc'].runtimeType, TSSHIM_RUNTIME_TYPE);
  for (const name of [TEST_IMAGE, PAUSE_IMAGE]) {
    const s = await cri.image.imageStatus({ image: { image: name } });
    assert.ok(s.image, `ImageStatus(${name}) found; ctr -n k8s.io images ls:\n${(await cd.ctr(['images', 'ls', '-q'], { namespace: CRI_NAMESPACE })).stdout}`);
    assert.ok(s.image!.repoTags.includes(name), `repo tags ${s.image!.repoTags}`);
    assert.ok(s.image!.size > 0n);
  }
  const list = await cri.image.listImages({});
  const tags = list.images.flatMap((i) => i.repoTags);
  assert.ok(tags.includes(TEST_IMAGE) && tags.includes(PAUSE_IMAGE), `ListImages: ${tags}`);
  const missing = await cri.image.imageStatus({ image: { image: 'docker.io/tsshim/absent:none' } });
  assert.is(missing.image, undefined, 'absent image -> image unset');
});

/** Shim processes of this containerd started for task `id` (any shim binary). */
function shimsFor(cd: PrivateContainerd, id: string): Array<{ pid: number; argv: string[] }> {
  const pids = new Set(shimPids(cd, id));
  return findProcesses((argv) => argv.some((a) => a === id) && argv.some((a) => /containerd-shim-/.test(a))).filter(
    (p) => pids.has(p.pid) || p.argv.includes(cd.address),
  );
}

/** `ctr -n k8s.io task ls` rows (without the header) and `ctr -n k8s.io containers ls -q` ids. */
async function criTasksAndContainers(cd: PrivateContainerd): Promise<{ tasks: string[]; containers: string[] }> {
  const tl = await cd.ctr(['task', 'ls'], { namespace: CRI_NAMESPACE });
  assert.is(tl.exitCode, 0, tl.stderr);
  const cl = await cd.ctr(['containers', 'ls', '-q'], { namespace: CRI_NAMESPACE });
  assert.is(cl.exitCode, 0, cl.stderr);
  return {
    tasks: tl.stdout.trim().split('\n').slice(1).map((l) => l.trim()).filter(Boolean),
    containers: cl.stdout.split('\n').map((s) => s.trim()).filter(Boolean),
  };
}

/**
 * The pod lifecycle as a kubelet drives it, for one runtime handler. Every step checks the state
 * CRI reports; at the end nothing may be left in containerd's k8s.io namespace nor as a process.
 */
async function podScenario({ cd, cri, tmp }: Ctx, h: Handler): Promise<void> {
  const uid = randomBytes(8).toString('hex');
  const podName = `pod-${h.name}`;
  const logDirectory = join(tmp, 'pods', `tsshim-test_${podName}_${uid}`);
  mkdirSync(logDirectory, { recursive: true });
  const sandboxConfig: PodSandboxConfig = criV1.PodSandboxConfig.fromPartial({
    metadata: { name: podName, uid, namespace: 'tsshim-test', attempt: 0 },
    logDirectory,
    labels: { 'tsshim.test/handler': h.name, 'tsshim.test/run': uid },
    annotations: { 'tsshim.test/note': 'cri scenario', 'tsshim.test/uid': uid },
    linux: {
      securityContext: {
        namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD },
      },
    },
  });

  // Whatever an earlier, failed scenario left behind is its failure, not this one's.
  const before = await criTasksAndContainers(cd);

  let podId = '';
  let containerId = '';
  try {
    // RunPodSandbox
    const run = await cri.runtime.runPodSandbox({ config: sandboxConfig, runtimeHandler: h.name }, { timeoutMs: 120_000 });
    podId = run.podSandboxId;
    createdIds.add(podId);
    assert.match(podId, /^[0-9a-f]{64}$/);
    const ps = await cri.runtime.podSandboxStatus({ podSandboxId: podId, verbose: true });
    assert.is(ps.status?.state, PodSandboxState.SANDBOX_READY, 'sandbox READY');
    assert.is(ps.status?.runtimeHandler, h.name);
    assert.equal(ps.status?.labels, sandboxConfig.labels);
    assert.equal(ps.status?.annotations, sandboxConfig.annotations);
    assert.is(ps.status?.linux?.namespaces?.options?.network, NamespaceMode.NODE, 'host network');
    assert.ok((ps.status?.createdAt ?? 0n) > 1_000_000_000_000_000_000n, 'createdAt in ns since the epoch (bigint)');
    const info = JSON.parse(ps.info.info ?? '{}');
    assert.is(info.runtimeHandler, h.name);
    assert.is(info.runtimeType, h.runtimeType, 'containerd used the runtime entry of the handler');
    const sandboxShims = shimsFor(cd, podId);
    assert.ok(
      sandboxShims.some((p) => p.argv.some((a) => a.endsWith('/' + h.shimBinary) || a === h.shimBinary)),
      `a ${h.shimBinary} process serves the sandbox; found: ${JSON.stringify(sandboxShims.map((p) => p.argv.slice(0, 3)))}`,
    );
    const listed = await cri.runtime.listPodSandbox({ filter: { labelSelector: { 'tsshim.test/run': uid } } });
    assert.equal(listed.items.map((i) => i.id), [podId], 'ListPodSandbox by label');

    // CreateContainer + StartContainer
    const created = await cri.runtime.createContainer(
      {
        podSandboxId: podId,
        sandboxConfig,
        config: appContainerConfig({
          logPath: 'app/0.log',
          labels: { 'tsshim.test/container': 'app' },
          annotations: { 'tsshim.test/c': uid },
          namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD },
        }),
      },
      { timeoutMs: 60_000 },
    );
    containerId = created.containerId;
    createdIds.add(containerId);
    assert.match(containerId, /^[0-9a-f]{64}$/);
    const beforeStart = await cri.runtime.containerStatus({ containerId });
    assert.is(beforeStart.status?.state, ContainerState.CONTAINER_CREATED);
    await cri.runtime.startContainer({ containerId }, { timeoutMs: 60_000 });

    const logFile = join(logDirectory, 'app', '0.log');
    const sawHi = await waitFor(() => existsSync(logFile) && /^\S+ stdout F hi$/m.test(readFileSync(logFile, 'utf8')), 10_000, 100);
    assert.ok(sawHi, `CRI log ${logFile} has "<time> stdout F hi": ${existsSync(logFile) ? JSON.stringify(readFileSync(logFile, 'utf8')) : 'missing'}`);

    // ExecSync
    const ex = await cri.runtime.execSync({ containerId, cmd: ['sh', '-c', 'echo exec-ok; exit 3'], timeout: 20n }, { timeoutMs: 60_000 });
    assert.is(Buffer.from(ex.stdout).toString(), 'exec-ok\n');
    assert.is(Buffer.from(ex.stderr).toString(), '');
    assert.is(ex.exitCode, 3);

    // Which kernel the pod runs on: gVisor's Sentry for tsshim-gvisor, the host's for runc.
    const probe = await cri.runtime.execSync({ containerId, cmd: KERNEL_PROBE, timeout: 20n }, { timeoutMs: 60_000 });
    const seen = classifyKernel(Buffer.from(probe.stdout).toString());
    assert.is(seen.kernel, h.isolation, `kernel seen inside: uname ${seen.uname}, dmesg ${JSON.stringify(seen.dmesg.slice(0, 200))}`);

    // ContainerStatus RUNNING
    const running = await cri.runtime.containerStatus({ containerId, verbose: true });
    assert.is(running.status?.state, ContainerState.CONTAINER_RUNNING, 'RUNNING');
    assert.ok((running.status?.startedAt ?? 0n) > 0n, 'startedAt set');
    assert.is(running.status?.logPath, logFile);
    assert.is(running.status?.labels['tsshim.test/container'], 'app');
    const cinfo = JSON.parse(running.info.info ?? '{}');
    assert.ok(cinfo.pid > 0, `verbose info has the task pid: ${running.info.info?.slice(0, 200)}`);
    assert.is(cinfo.sandboxID, podId);
    const listedC = await cri.runtime.listContainers({ filter: { podSandboxId: podId } });
    assert.equal(listedC.containers.map((c) => c.id), [containerId], 'ListContainers by pod');

    // ContainerStats
    const stats = (await cri.runtime.containerStats({ containerId })).stats;
    assert.is(stats?.attributes?.id, containerId);
    assert.ok(stats?.cpu, 'cpu stats present');
    assert.ok(stats!.cpu!.timestamp > 0n, 'cpu timestamp');
    assert.ok(stats!.cpu!.usageCoreNanoSeconds !== undefined && stats!.cpu!.usageCoreNanoSeconds.value > 0n, `cpu usage: ${stats!.cpu!.usageCoreNanoSeconds?.value}`);
    assert.ok(stats?.memory, 'memory stats present');
    assert.ok(stats!.memory!.workingSetBytes !== undefined, 'memory working set present');
    assert.ok((stats!.memory!.usageBytes?.value ?? 0n) > 0n, `memory usage: ${stats!.memory!.usageBytes?.value}`);

    // StopContainer: PID 1 without a SIGTERM handler ignores SIGTERM, so the 2 s grace ends in
    // SIGKILL (137); under gVisor it dies of the SIGTERM (143, declared: CRI_STOP_EXIT_STATUS).
    const t0 = Date.now();
    await cri.runtime.stopContainer({ containerId, timeout: 2n }, { timeoutMs: 60_000 });
    const stopMs = Date.now() - t0;
    const exited = await cri.runtime.containerStatus({ containerId });
    assert.is(exited.status?.state, ContainerState.CONTAINER_EXITED, 'EXITED');
    const code = exited.status!.exitCode;
    assert.is(code, h.stopExitStatus, `exit code ${code}, expected ${h.stopExitStatus} (${exited.status?.reason} ${exited.status?.message})`);
    if (code === CRI_STOP_EXIT_STATUS.linux) assert.ok(stopMs >= 1500, `SIGKILL only after the 2 s grace period (took ${stopMs} ms)`);
    assert.ok(exited.status!.finishedAt >= exited.status!.startedAt && exited.status!.finishedAt > 0n, 'finishedAt set');

    // RemoveContainer
    await cri.runtime.removeContainer({ containerId }, { timeoutMs: 60_000 });
    await rejectsNotFound(cri.runtime.containerStatus({ containerId }), 'ContainerStatus after RemoveContainer');
    const cid = containerId;
    containerId = '';

    // StopPodSandbox + RemovePodSandbox
    await cri.runtime.stopPodSandbox({ podSandboxId: podId }, { timeoutMs: 60_000 });
    const stopped = await cri.runtime.podSandboxStatus({ podSandboxId: podId });
    assert.is(stopped.status?.state, PodSandboxState.SANDBOX_NOTREADY, 'sandbox NOTREADY after stop');
    await cri.runtime.removePodSandbox({ podSandboxId: podId }, { timeoutMs: 60_000 });
    await rejectsNotFound(cri.runtime.podSandboxStatus({ podSandboxId: podId }), 'PodSandboxStatus after RemovePodSandbox');
    const pid = podId;
    podId = '';

    // Nothing left: no task, no container in k8s.io, no shim process for the pod or the container.
    const left = await criTasksAndContainers(cd);
    assert.equal(left.tasks, before.tasks, '`ctr -n k8s.io task ls` lists no task of this pod (empty unless an earlier scenario failed)');
    assert.equal(left.containers, before.containers, 'no containerd container of this pod left');
    const gone = await waitFor(() => shimsFor(cd, pid).length === 0 && shimsFor(cd, cid).length === 0, 10_000, 100);
    assert.ok(gone, `no shim process left: ${JSON.stringify([...shimsFor(cd, pid), ...shimsFor(cd, cid)].map((p) => p.argv.join(' ')))}`);
    for (const id of [pid, cid]) {
      assert.not.ok(existsSync(join(RUNC_ROOT, id)), `no runc state ${join(RUNC_ROOT, id)}`);
      assert.equal(runscStateFiles(id), [], `no runsc state for ${id} in ${RUNSC_ROOT}`);
    }
  } finally {
    // After a failed step: do what a kubelet would, so the next scenario starts clean.
    if (containerId) await cri.runtime.removeContainer({ containerId }, { timeoutMs: 30_000 }).catch(() => undefined);
    if (podId) {
      await cri.runtime.stopPodSandbox({ podSandboxId: podId }, { timeoutMs: 30_000 }).catch(() => undefined);
      await cri.runtime.removePodSandbox({ podSandboxId: podId }, { timeoutMs: 30_000 }).catch(() => undefined);
    }
  }
}

// TSSHIM_CRI_HANDLERS=runc,tsshim-runc runs only those scenarios (debugging).
const only = process.env.TSSHIM_CRI_HANDLERS?.split(',').map((s) => s.trim()).filter(Boolean);

for (const h of HANDLERS) {
  if (only && !only.includes(h.name)) continue;
  const name = `pod lifecycle via runtime handler ${h.label}: run pod, create/start, exec, status, stats, stop, remove, nothing left`;
  const why = h.unavailable?.();
  if (why) {
    skipWithReason(t, name, why);
    continue;
  }
  t(name, async (ctx) => {
    try {
      await podScenario(ctx, h);
    } catch (e) {
      process.stderr.write(`[cri ${h.name}] failed: ${(e as Error).message}\n--- containerd log tail ---\n${ctx.cd.logTail(25)}\n`);
      throw e;
    }
  });
}

t.run();
