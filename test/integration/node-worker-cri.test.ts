// Issue 12.2 through CRI (the kubelet's path): node mode's worker is SIGKILLed under pods run by
// containerd 1.6's CRI plugin (a private containerd; TSSHIM_CONFIG says [shim] mode = "node"; one
// runtime handler per tsshim handler), on runc and gVisor (youki when installed). Per handler, one
// pod (RunPodSandbox) serves every step, so the pod's own survival is checked throughout:
//   - idle: a container logging a line every 50 ms keeps running with the same pid; ContainerStatus
//     RUNNING; ExecSync works after; the CRI log file has every line, once, in order (the lines
//     written while no worker ran included);
//   - during CreateContainer (containerd 1.6's CreateContainer does not reach the shim: the kill
//     lands while containerd works on it, and StartContainer meets a worker that is restarting)
//     and during StartContainer (the kill lands while the backend's `create` runs): each call
//     succeeds or fails cleanly; after a failure the container is removed and created again, and
//     runs (what a kubelet does);
//   - a container exits (status 3) while no worker runs (the worker is SIGSTOPped, the exit
//     happens and the backend sees it, then the worker is SIGKILLed): once a new worker serves,
//     ContainerStatus says EXITED with exitCode 3 (the /tasks/exit event reached CRI);
//   - StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox: nothing left (tasks,
//     containers, bundles, backend state, processes).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import type { ServiceError } from '@grpc/grpc-js';
import { connectCri, criV1, type CriClient } from '../../src/client/cri.js';
import { startContainerd, type PrivateContainerd } from '../helpers/containerd.js';
import { CRI_NAMESPACE, TEST_IMAGE, TSSHIM_RUNTIME_TYPE, criConfig, importCriImages } from '../helpers/cri.js';
import { REPO_ROOT, findProcesses, isAlive, runCommand, waitFor } from '../helpers/proc.js';
import { leftovers } from '../helpers/tasks.js';
import { skipWithReason } from '../helpers/skip.js';
import { DEFAULT_RUNSC } from '../../src/handlers/gvisor/definition.js';
import type { NodeStatus } from '../../src/shim-api/bootstrap/node.js';
import { nodeStatus as status, waitNewWorker as newWorker } from '../helpers/node-daemon.js';

const { NamespaceMode, ContainerState, PodSandboxState } = criV1;
type PodSandboxConfig = criV1.PodSandboxConfig;

const TSSHIM_CLI = join(REPO_ROOT, 'bin', 'tsshim');

interface Handler {
  /** CRI runtime_handler = containerd runtime entry name */
  name: string;
  toml: string;
  /** the backend binary and its state root for k8s.io (to read a container's state while no worker runs) */
  backend: { binary: string; root: string };
  unavailable?: () => string | undefined;
}

const HANDLERS: Handler[] = [
  { name: 'tsshim-runc', toml: 'handler = "runc"\n', backend: { binary: 'runc', root: `/run/containerd/runc/${CRI_NAMESPACE}` } },
  {
    name: 'tsshim-gvisor',
    toml: 'handler = "gvisor"\n\n[options]\nplatform = "ptrace"\nnetwork = "host"\n',
    backend: { binary: DEFAULT_RUNSC.binary, root: `/run/containerd/runsc/${CRI_NAMESPACE}` },
    unavailable: () => (spawnSync(DEFAULT_RUNSC.binary, ['--version']).status === 0 ? undefined : `${DEFAULT_RUNSC.binary} is not installed`),
  },
  {
    name: 'tsshim-youki',
    toml: 'handler = "youki"\n',
    backend: { binary: 'youki', root: `/run/containerd/youki/${CRI_NAMESPACE}` },
    unavailable: () => (spawnSync('youki', ['--version']).status === 0 ? undefined : 'youki is not installed on this host (scripts/setup.sh builds youki 0.7.0 into /opt/tsshim/peers)'),
  },
];

interface Ctx {
  cd: PrivateContainerd;
  cri: CriClient;
  tmp: string;
  savedConfig: string | undefined;
}

function servingWorker(cd: PrivateContainerd): NodeStatus {
  const s = status(cd);
  assert.ok(s.workerPid && s.workerReady, `a worker serves: ${JSON.stringify(s)}`);
  return s;
}

/** The CRI log file's stdout lines, P(artial) lines joined with what follows them. */
function logLines(file: string): string[] {
  if (!existsSync(file)) return [];
  const out: string[] = [];
  let partial = '';
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\S+ (stdout|stderr) ([PF]) (.*)$/.exec(raw);
    if (!m || m[1] !== 'stdout') continue;
    partial += m[3];
    if (m[2] === 'F') {
      out.push(partial);
      partial = '';
    }
  }
  return out;
}

/** The backend's view of a container (`<binary> --root <root> state <id>`): its status, or undefined. */
async function backendStatus(h: Handler, id: string): Promise<string | undefined> {
  const r = await runCommand(h.backend.binary, ['--root', h.backend.root, 'state', id], { timeoutMs: 20_000 }).catch(() => undefined);
  if (!r || r.exitCode !== 0) return undefined;
  try {
    return (JSON.parse(r.stdout) as { status?: string }).status;
  } catch {
    return undefined;
  }
}

const grpcError = (e: unknown) => `${(e as ServiceError).code ?? '?'} ${(e as Error).message}`;

/** Everything one handler's pod and containers left, for the final check. */
function backendLeftovers(h: Handler, id: string): string[] {
  const out: string[] = [];
  if (existsSync(join(h.backend.root, id))) out.push(`backend state ${join(h.backend.root, id)}`);
  try {
    for (const f of readdirSync(h.backend.root)) if (f.startsWith(id + '_')) out.push(`backend state ${join(h.backend.root, f)}`); // runsc: <id>_sandbox:<sandbox>.state
  } catch {
    /* no root */
  }
  return out;
}

const t = suite<Ctx>('node-worker-cri');

t.before(async (ctx) => {
  ctx.tmp = mkdtempSync('/run/tsshim-nwcri-');
  const config = join(ctx.tmp, 'config.toml');
  writeFileSync(config, '[shim]\nmode = "node"\n');
  const runtimes: Parameters<typeof criConfig>[0] = {};
  for (const h of HANDLERS) {
    const configPath = join(ctx.tmp, `${h.name}.toml`);
    writeFileSync(configPath, h.toml);
    runtimes[h.name] = { runtimeType: TSSHIM_RUNTIME_TYPE, configPath };
  }
  ctx.savedConfig = process.env.TSSHIM_CONFIG;
  process.env.TSSHIM_CONFIG = config; // containerd passes it on to the shims it starts
  ctx.cd = await startContainerd({ name: 'nw-cri', extraConfig: criConfig(runtimes, { cniDir: join(ctx.tmp, 'cni') }) });
  await importCriImages(ctx.cd);
  ctx.cri = await connectCri(ctx.cd.address);
});

t.after(async (ctx) => {
  ctx.cri?.close();
  let s: NodeStatus | undefined;
  try {
    s = ctx.cd ? status(ctx.cd) : undefined;
  } catch {
    s = undefined;
  }
  await ctx.cd?.stop();
  for (const pid of [s?.workerPid, s?.supervisorPid]) if (pid && isAlive(pid)) process.kill(pid, 'SIGCONT'); // a failed step may leave the worker stopped
  if (s?.supervisorPid && isAlive(s.supervisorPid)) {
    process.kill(s.supervisorPid, 'SIGTERM');
    await waitFor(() => !isAlive(s!.supervisorPid!), 10_000);
  }
  if (ctx.savedConfig === undefined) delete process.env.TSSHIM_CONFIG;
  else process.env.TSSHIM_CONFIG = ctx.savedConfig;
  if (ctx.tmp) rmSync(ctx.tmp, { recursive: true, force: true });
});

// TSSHIM_CRI_HANDLERS=tsshim-runc runs only those handlers (debugging).
const only = process.env.TSSHIM_CRI_HANDLERS?.split(',').map((x) => x.trim()).filter(Boolean);

for (const h of HANDLERS) {
  if (only && !only.includes(h.name)) continue;
  const why = h.unavailable?.();
  if (why) {
    skipWithReason(t, `[${h.name}] worker SIGKILL under CRI pods`, why);
    continue;
  }
  // State shared by this handler's steps.
  const pod = { id: '', config: undefined as PodSandboxConfig | undefined, logDir: '', sig: '' };
  const containers: Array<{ id: string; pid: number }> = [];
  const nsOpts = { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD };
  const containerConfig = (name: string, command: string[], attempt = 0) => ({
    metadata: { name, attempt },
    image: { image: TEST_IMAGE },
    command,
    logPath: `${name}/${attempt}.log`,
    mounts: [{ containerPath: '/sig', hostPath: pod.sig, readonly: true }],
    linux: { securityContext: { namespaceOptions: nsOpts } },
  });
  const create = async (cri: CriClient, name: string, command: string[], attempt = 0) => {
    const id = (await cri.runtime.createContainer({ podSandboxId: pod.id, sandboxConfig: pod.config!, config: containerConfig(name, command, attempt) }, { timeoutMs: 120_000 })).containerId;
    containers.push({ id, pid: 0 });
    return id;
  };
  const info = async (cri: CriClient, id: string) => {
    const s = await cri.runtime.containerStatus({ containerId: id, verbose: true });
    return { state: s.status?.state, exitCode: s.status?.exitCode, reason: s.status?.reason, pid: Number(JSON.parse(s.info.info ?? '{}').pid ?? 0) };
  };
  const podReady = async (cri: CriClient) => (await cri.runtime.podSandboxStatus({ podSandboxId: pod.id })).status?.state === PodSandboxState.SANDBOX_READY;
  /** A kubelet's retry after a failed create/start: remove the container, create it again, start it. */
  const retry = async (cri: CriClient, id: string, name: string, command: string[]) => {
    await cri.runtime.removeContainer({ containerId: id }, { timeoutMs: 60_000 });
    const again = await create(cri, name, command, 1);
    await cri.runtime.startContainer({ containerId: again }, { timeoutMs: 120_000 });
    return again;
  };

  t(`[${h.name}] RunPodSandbox in node mode`, async ({ cri, cd, tmp }) => {
    const uid = randomBytes(8).toString('hex');
    pod.logDir = join(tmp, 'pods', `nwcri_${h.name}_${uid}`);
    pod.sig = join(tmp, `sig-${h.name}`);
    mkdirSync(pod.logDir, { recursive: true });
    mkdirSync(pod.sig, { recursive: true });
    pod.config = criV1.PodSandboxConfig.fromPartial({
      metadata: { name: `nwcri-${h.name}`, uid, namespace: 'nwcri', attempt: 0 },
      logDirectory: pod.logDir,
      linux: { securityContext: { namespaceOptions: nsOpts } },
    });
    pod.id = (await cri.runtime.runPodSandbox({ config: pod.config, runtimeHandler: h.name }, { timeoutMs: 120_000 })).podSandboxId;
    assert.ok(await podReady(cri), 'sandbox READY');
    const s = servingWorker(cd);
    assert.ok(s.tasks.some((x) => x.namespace === CRI_NAMESPACE && x.id === pod.id), `the node daemon serves the sandbox: ${JSON.stringify(s.tasks)}`);
  });

  t(`[${h.name}] SIGKILL of the idle worker: the container runs on (same pid), ExecSync works, the CRI log has every line in order`, async ({ cri, cd }) => {
    const n = 100;
    const id = await create(cri, 'logger', ['sh', '-c', `i=0; while [ $i -lt ${n} ]; do echo line-$i; i=$((i+1)); sleep 0.05; done; exec sleep 300`]);
    await cri.runtime.startContainer({ containerId: id }, { timeoutMs: 120_000 });
    const before = await info(cri, id);
    assert.is(before.state, ContainerState.CONTAINER_RUNNING);
    assert.ok(before.pid > 0, 'ContainerStatus verbose info has the pid');
    containers.find((c) => c.id === id)!.pid = before.pid;
    const logFile = join(pod.logDir, 'logger', '0.log');
    assert.ok(await waitFor(() => logLines(logFile).length >= 10, 30_000, 20), `logging started: ${JSON.stringify(logLines(logFile).slice(-3))}`);
    const s = servingWorker(cd);
    process.kill(s.workerPid!, 'SIGKILL');
    const atKill = logLines(logFile).length;
    const after = await newWorker(cd, s.workerPid!);
    assert.is(after.supervisorPid, s.supervisorPid, 'the supervisor stays');
    assert.ok(await waitFor(() => logLines(logFile).length >= n, 60_000, 50), `every line arrives: ${logLines(logFile).length} of ${n}`);
    assert.equal(logLines(logFile), Array.from({ length: n }, (_, i) => `line-${i}`), 'every line, once, in order');
    console.log(`[${h.name}] idle kill: ${atKill} of ${n} lines were logged when the worker was killed`);
    const now = await info(cri, id);
    assert.is(now.state, ContainerState.CONTAINER_RUNNING, 'RUNNING after the kill');
    assert.is(now.pid, before.pid, 'same pid');
    const ex = await cri.runtime.execSync({ containerId: id, cmd: ['sh', '-c', 'echo exec-after; exit 4'], timeout: 30n }, { timeoutMs: 60_000 });
    assert.is(Buffer.from(ex.stdout).toString(), 'exec-after\n');
    assert.is(ex.exitCode, 4);
    assert.ok(await podReady(cri), 'the pod is READY');
  });

  t(`[${h.name}] SIGKILL during CreateContainer and during StartContainer: each call succeeds or fails cleanly; a retry runs; the pod stays usable`, async ({ cri, cd }) => {
    const cmd = ['sleep', '300'];
    // The worker is killed as CreateContainer goes out; StartContainer follows at once, while it restarts.
    const s1 = servingWorker(cd);
    const creating = create(cri, 'c1', cmd).then(
      (id) => ({ id, err: undefined as string | undefined }),
      (e: unknown) => ({ id: '', err: grpcError(e) }),
    );
    process.kill(s1.workerPid!, 'SIGKILL');
    const c1 = await creating;
    let id1 = c1.id;
    if (c1.err !== undefined) {
      console.log(`[${h.name}] CreateContainer during the kill failed: ${c1.err}`);
      id1 = await create(cri, 'c1', cmd, 1);
    }
    const started1 = await cri.runtime.startContainer({ containerId: id1 }, { timeoutMs: 120_000 }).then(
      () => undefined,
      (e: unknown) => grpcError(e),
    );
    if (started1 !== undefined) {
      console.log(`[${h.name}] StartContainer while the worker restarted failed: ${started1}`);
      id1 = await retry(cri, id1, 'c1', cmd);
    }
    assert.is((await info(cri, id1)).state, ContainerState.CONTAINER_RUNNING, 'c1 runs');
    await newWorker(cd, s1.workerPid!);

    // StartContainer: the kill lands while the backend's `create` for it runs.
    const id2 = await create(cri, 'c2', cmd);
    const s2 = servingWorker(cd);
    const starting = cri.runtime.startContainer({ containerId: id2 }, { timeoutMs: 120_000 }).then(
      () => undefined,
      (e: unknown) => grpcError(e),
    );
    const caught = await waitFor(() => findProcesses((argv) => argv.includes('create') && argv.includes(id2)).length > 0, 30_000, 5);
    process.kill(s2.workerPid!, 'SIGKILL');
    const started2 = await starting;
    await newWorker(cd, s2.workerPid!);
    console.log(`[${h.name}] StartContainer with the kill ${caught ? "during the backend's create" : '(the create was not seen: the kill came after it)'}: ${started2 === undefined ? 'succeeded' : `failed: ${started2}`}`);
    let run2 = id2;
    if (started2 === undefined) {
      assert.is((await info(cri, id2)).state, ContainerState.CONTAINER_RUNNING, 'a start that succeeded: c2 runs');
    } else {
      const st = await info(cri, id2);
      assert.is.not(st.state, ContainerState.CONTAINER_RUNNING, `a start that failed leaves no running container (state ${st.state}, ${st.reason})`);
      assert.equal(backendLeftovers(h, id2), [], 'the interrupted create left no backend container');
      run2 = await retry(cri, id2, 'c2', cmd);
      assert.is((await info(cri, run2)).state, ContainerState.CONTAINER_RUNNING, 'the retry runs');
    }
    for (const id of [id1, run2]) {
      const ex = await cri.runtime.execSync({ containerId: id, cmd: ['echo', 'ok'], timeout: 30n }, { timeoutMs: 60_000 });
      assert.is(Buffer.from(ex.stdout).toString(), 'ok\n', `ExecSync in ${id}`);
    }
    assert.ok(await podReady(cri), 'the pod is READY');
  });

  t(`[${h.name}] a container exits (3) while no worker runs: after a new worker serves, ContainerStatus is EXITED with exitCode 3`, async ({ cri, cd }) => {
    const marker = `exit-${randomBytes(4).toString('hex')}`;
    const id = await create(cri, 'exiter', ['sh', '-c', `while [ ! -e /sig/${marker} ]; do sleep 0.05; done; exit 3`]);
    await cri.runtime.startContainer({ containerId: id }, { timeoutMs: 120_000 });
    assert.is((await info(cri, id)).state, ContainerState.CONTAINER_RUNNING);
    const s = servingWorker(cd);
    // The worker stops; the container exits and the backend sees it; then the worker dies. It
    // never handled the exit: the supervisor has it, and the next worker gets it.
    process.kill(s.workerPid!, 'SIGSTOP');
    try {
      writeFileSync(join(pod.sig, marker), '');
      assert.ok(await waitFor(async () => (await backendStatus(h, id)) === 'stopped', 30_000, 100), `the backend sees the container stopped (${await backendStatus(h, id)})`);
    } finally {
      process.kill(s.workerPid!, 'SIGKILL');
    }
    await newWorker(cd, s.workerPid!);
    let st = await info(cri, id);
    assert.ok(await waitFor(async () => (st = await info(cri, id)).state === ContainerState.CONTAINER_EXITED, 30_000, 100), `EXITED (state ${st.state})`);
    assert.is(st.exitCode, 3, `exit code 3 (${st.reason})`);
    assert.ok(await podReady(cri), 'the pod is READY');
  });

  t(`[${h.name}] stop and remove every container and the pod: nothing left`, async ({ cri, cd }) => {
    for (const c of containers) {
      await cri.runtime.stopContainer({ containerId: c.id, timeout: 2n }, { timeoutMs: 60_000 }).catch(() => undefined); // removed earlier (retried) ones: NotFound
      await cri.runtime.removeContainer({ containerId: c.id }, { timeoutMs: 60_000 }).catch((e: unknown) => {
        if ((e as ServiceError).code !== 5) throw e;
      });
    }
    await cri.runtime.stopPodSandbox({ podSandboxId: pod.id }, { timeoutMs: 60_000 });
    await cri.runtime.removePodSandbox({ podSandboxId: pod.id }, { timeoutMs: 60_000 });
    const ids = [pod.id, ...containers.map((c) => c.id)];
    const pids = containers.map((c) => c.pid).filter((p) => p > 0);
    const left = () => [...ids.flatMap((id) => [...leftovers(cd, id, [], CRI_NAMESPACE), ...backendLeftovers(h, id)]), ...pids.filter(isAlive).map((p) => `process ${p}`)];
    await waitFor(() => left().length === 0, 20_000, 200);
    assert.equal(left(), [], 'no bundle, mount, backend state or process left');
    const ls = await cd.ctr(['containers', 'ls', '-q'], { namespace: CRI_NAMESPACE });
    assert.equal(ls.stdout.split('\n').filter((x) => ids.includes(x)), [], 'no containerd container left');
    const s = status(cd);
    assert.equal(s.tasks.filter((x) => ids.includes(x.id)), [], `the node daemon serves none of them: ${JSON.stringify(s.tasks)}`);
  });
}

t.run();
