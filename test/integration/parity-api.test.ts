// Issue 3, parity part 3, through containerd's gRPC API (src/client/containerd.ts): Wait,
// misuse errors (status code and message), runc runtime options, and shim grouping; each
// scenario run on io.containerd.tsshim.v2 and io.containerd.runc.v2 on the same containerd.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { isAlive, runChecked, sleep, waitFor } from '../helpers/proc.js';
import { bundleDir, leftovers, taskStatus, waitNoLeftovers } from '../helpers/tasks.js';
import { grpcOutcome, parity, shimBinary, shimDaemons, type Runtime } from '../helpers/parity.js';
import { connectContainerd, type ContainerdClient } from '../../src/client/containerd.js';
import { runcOptions, TYPE_URL } from '../../src/shim-api/pb.js';

interface Ctx {
  cd: PrivateContainerd;
  image: string;
  client: ContainerdClient;
  tmp: string;
}
const t = suite<Ctx>('parity-api');

t.before(async (ctx) => {
  ctx.cd = await startContainerd({ name: 'parity-api' });
  ctx.image = await importTestImage(ctx.cd);
  ctx.client = await connectContainerd(ctx.cd.address, ctx.cd.namespace);
  ctx.tmp = mkdtempSync('/tmp/tsshim-parity-');
});
t.after(async (ctx) => {
  ctx.client?.close();
  await ctx.cd?.stop();
  if (ctx.tmp) rmSync(ctx.tmp, { recursive: true, force: true });
});

const T = { timeoutMs: 30_000 };

async function runSleeper(cd: PrivateContainerd, image: string, runtime: Runtime, id: string, flags: string[] = [], cmd = ['sleep', '300']): Promise<number> {
  const r = await cd.ctr(['run', '-d', '--runtime', runtime, ...flags, image, id, ...cmd]);
  assert.is(r.exitCode, 0, r.stderr);
  const row = await taskStatus(cd, id);
  assert.ok(row && row.pid > 0, `task ${id} listed with a pid`);
  return row!.pid;
}

async function remove(cd: PrivateContainerd, id: string, pids: number[] = []): Promise<void> {
  await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
  await waitFor(async () => (await taskStatus(cd, id))?.status === 'STOPPED', 10_000, 100);
  await cd.ctr(['task', 'rm', id]);
  const crm = await cd.ctr(['c', 'rm', id]);
  assert.is(crm.exitCode, 0, crm.stderr);
  assert.equal(await waitNoLeftovers(cd, id, pids), []);
}

const processSpec = (args: string[]) => ({
  typeUrl: TYPE_URL.OciProcess,
  value: Buffer.from(JSON.stringify({ args, cwd: '/', env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], user: { uid: 0, gid: 0 }, terminal: false })),
});

const at = (w: { exitedAt?: { seconds: number; nanos: number } | undefined }) => `${w.exitedAt?.seconds ?? 0}.${w.exitedAt?.nanos ?? 0}`;

parity(t, 'Wait (gRPC): 3 concurrent waits on the init agree, Wait on an exec, Wait after exit returns at once', async (runtime, { cd, image, client }) => {
  const id = uniqueId('pwait');
  const init = await runSleeper(cd, image, runtime, id);
  // An exec that exits 7 after a second, waited for by exec id.
  const x = await cd.ctr(['task', 'exec', '-d', '--exec-id', 'w1', id, 'sh', '-c', 'sleep 1; exit 7']);
  assert.is(x.exitCode, 0, x.stderr);
  const execWait = await client.tasks.wait({ containerId: id, execId: 'w1' }, T);
  assert.is(execWait.exitStatus, 7);
  assert.ok((execWait.exitedAt?.seconds ?? 0) > 0, 'exec exited_at set');
  let t0 = Date.now();
  const execAgain = await client.tasks.wait({ containerId: id, execId: 'w1' }, T);
  const execAgainMs = Date.now() - t0;
  assert.ok(execAgainMs < 1000, `Wait on an exited exec returned in ${execAgainMs} ms`);
  assert.equal([execAgain.exitStatus, at(execAgain)], [7, at(execWait)]);
  // Three waits on the running init, then SIGKILL.
  const waits = [0, 1, 2].map(() => client.tasks.wait({ containerId: id }, T));
  await sleep(300);
  const k = await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
  assert.is(k.exitCode, 0, k.stderr);
  const res = await Promise.all(waits);
  assert.equal(res.map((w) => w.exitStatus), [137, 137, 137]);
  assert.ok(res.every((w) => at(w) === at(res[0]!)) && (res[0]!.exitedAt?.seconds ?? 0) > 0, 'same exited_at');
  t0 = Date.now();
  const after = await client.tasks.wait({ containerId: id }, T);
  const afterMs = Date.now() - t0;
  assert.ok(afterMs < 1000, `Wait after exit returned in ${afterMs} ms`);
  assert.equal([after.exitStatus, at(after)], [137, at(res[0]!)]);
  await remove(cd, id, [init]);
  return { execStatus: execWait.exitStatus, execAgain: execAgain.exitStatus, statuses: res.map((w) => w.exitStatus), after: after.exitStatus };
});

parity(t, 'misuse errors (gRPC status and message, ids replaced) equal runc-v2\'s', async (runtime, { cd, image, client }) => {
  const id = uniqueId('pmis');
  const init = await runSleeper(cd, image, runtime, id);
  const ids = { [id]: '<id>' };
  const out: Record<string, string> = {};
  out.deleteRunning = await grpcOutcome(client.tasks.delete({ containerId: id }, T), ids);
  out.startTwice = await grpcOutcome(client.tasks.start({ containerId: id }, T), ids);
  out.execFirst = await grpcOutcome(client.tasks.exec({ containerId: id, execId: 'dup', spec: processSpec(['sleep', '300']) }, T), ids);
  out.execDuplicate = await grpcOutcome(client.tasks.exec({ containerId: id, execId: 'dup', spec: processSpec(['true']) }, T), ids);
  const q = { containerId: id, execId: 'nope' };
  out.stateUnknownExec = await grpcOutcome(client.tasks.get(q, T), ids);
  out.killUnknownExec = await grpcOutcome(client.tasks.kill({ ...q, signal: 15 }, T), ids);
  out.deleteUnknownExec = await grpcOutcome(client.tasks.deleteProcess(q, T), ids);
  out.waitUnknownExec = await grpcOutcome(client.tasks.wait(q, T), ids);
  out.startUnknownExec = await grpcOutcome(client.tasks.start(q, T), ids);
  out.stillRunning = (await taskStatus(cd, id))?.status ?? '(not listed)';
  // Kill and Start of the exited init.
  await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
  await client.tasks.wait({ containerId: id }, T);
  out.killExited = await grpcOutcome(client.tasks.kill({ containerId: id, signal: 9 }, T), ids);
  out.killAllExited = await grpcOutcome(client.tasks.kill({ containerId: id, signal: 9, all: true }, T), ids);
  out.startExited = await grpcOutcome(client.tasks.start({ containerId: id }, T), ids);
  out.execInExited = await grpcOutcome(client.tasks.exec({ containerId: id, execId: 'late', spec: processSpec(['true']) }, T), ids);
  await remove(cd, id, [init]);
  // A container without a task, and a name nothing has.
  const bare = uniqueId('pbare');
  const c = await cd.ctr(['c', 'create', '--runtime', runtime, image, bare, 'true']);
  assert.is(c.exitCode, 0, c.stderr);
  out.getNoTask = await grpcOutcome(client.tasks.get({ containerId: bare }, T), { [bare]: '<bare>' });
  out.killNoTask = await grpcOutcome(client.tasks.kill({ containerId: bare, signal: 9 }, T), { [bare]: '<bare>' });
  await cd.ctr(['c', 'rm', bare]);
  const ghost = `ghost-${randomBytes(4).toString('hex')}`;
  out.getUnknown = await grpcOutcome(client.tasks.get({ containerId: ghost }, T), { [ghost]: '<ghost>' });
  for (const [k, v] of Object.entries(out)) console.log(`  [${runtime}] ${k}: ${v}`);
  assert.is(out.stillRunning, 'RUNNING', 'the task survived the misuse');
  assert.is(out.execFirst, 'OK');
  assert.match(out.execDuplicate, /^AlreadyExists: /);
  assert.match(out.killExited, /^NotFound: /);
  for (const k of ['deleteRunning', 'startTwice', 'stateUnknownExec', 'killUnknownExec', 'deleteUnknownExec', 'waitUnknownExec', 'startUnknownExec', 'startExited', 'getNoTask', 'getUnknown']) {
    assert.is.not(out[k], 'OK', `${k} must fail`);
  }
  return out;
});

/** A container created through the gRPC API with `runtime.options`, from the spec and image parent of one made by `ctr c create`. */
async function createWithOptions(ctx: Ctx, runtime: Runtime, id: string, options: Parameters<typeof runcOptions.Options.fromPartial>[0]): Promise<{ cleanup(): Promise<void>; mounts: Awaited<ReturnType<ContainerdClient['snapshots']['prepare']>>['mounts'] }> {
  const { cd, image, client } = ctx;
  const tpl = `${id}-tpl`;
  const c = await cd.ctr(['c', 'create', '--runtime', runtime, image, tpl, 'sleep', '300']);
  assert.is(c.exitCode, 0, c.stderr);
  const got = (await client.containers.get({ id: tpl })).container!;
  const parent = (await client.snapshots.stat({ snapshotter: got.snapshotter, key: got.snapshotKey })).info!.parent;
  const spec = JSON.parse(Buffer.from(got.spec!.value).toString()) as { linux: { cgroupsPath: string } };
  spec.linux.cgroupsPath = spec.linux.cgroupsPath.replace(tpl, id);
  // The container first, then its snapshot: a prepared snapshot no container (or lease) refers to
  // yet may be collected by containerd's GC (seen here as ENOENT on the overlay workdir at Create).
  await client.containers.create({
    container: {
      id,
      image: got.image,
      snapshotter: got.snapshotter,
      snapshotKey: id,
      labels: {},
      extensions: {},
      spec: { typeUrl: got.spec!.typeUrl, value: Buffer.from(JSON.stringify(spec)) },
      runtime: { name: runtime, options: { typeUrl: TYPE_URL.RuncOptions, value: runcOptions.Options.encode(runcOptions.Options.fromPartial(options)).finish() } },
    },
  });
  const { mounts } = await client.snapshots.prepare({ snapshotter: got.snapshotter, key: id, parent, labels: {} });
  await cd.ctr(['c', 'rm', tpl]);
  return {
    mounts,
    async cleanup() {
      await client.tasks.kill({ containerId: id, signal: 9, all: true }).catch(() => undefined);
      await waitFor(async () => (await taskStatus(cd, id))?.status !== 'RUNNING', 10_000, 100);
      await client.tasks.delete({ containerId: id }).catch(() => undefined);
      await client.containers.delete({ id });
      // Unreferenced once the container is gone: containerd's GC may have removed it already.
      await client.snapshots.remove({ snapshotter: got.snapshotter, key: id }).catch((e: { code?: number }) => {
        if (e.code !== 5) throw e;
      });
      assert.equal(await waitNoLeftovers(cd, id), []);
    },
  };
}

parity(t, 'runc Options (BinaryName wrapper, Root, NoPivotRoot, NoNewKeyring, IoUid/IoGid) reach runc and the stdio pipes', async (runtime, ctx) => {
  const id = uniqueId('popt');
  const dir = mkdtempSync(join(ctx.tmp, 'opt-'));
  const argvLog = join(dir, 'argv.log');
  const wrapper = join(dir, 'runc-wrapper');
  const runcPath = (await runChecked('sh', ['-c', 'command -v runc'])).trim();
  const ownerLog = join(dir, 'create-stdio-owner');
  // Also records what `runc create` gets as stdout and stderr (file type, owner) before runc's
  // init re-owns them; through $(...) because dash applies `cmd > file` to itself while cmd runs.
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      `echo "$@" >> ${argvLog}`,
      `case " $* " in *" create "*) o=$(stat -L -c '%F %u:%g' /proc/$$/fd/1 /proc/$$/fd/2); echo "$o" > ${ownerLog};; esac`,
      `exec ${runcPath} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(wrapper, 0o755);
  const root = `/run/tsshim-parity-root-${randomBytes(3).toString('hex')}`;
  const [uid, gid] = [4321, 5432];
  const made = await createWithOptions(ctx, runtime, id, { binaryName: wrapper, root, noPivotRoot: true, noNewKeyring: true, ioUid: uid, ioGid: gid });
  let obs: Record<string, unknown> = {};
  try {
    const out = join(dir, 'out.log');
    const created = await ctx.client.tasks.create({ containerId: id, rootfs: made.mounts, stdin: '', stdout: `file://${out}`, stderr: `file://${out}`, terminal: false, options: undefined }, T);
    await ctx.client.tasks.start({ containerId: id }, T);
    const pid = created.pid;
    assert.ok(pid > 0 && isAlive(pid));
    const lines = readFileSync(argvLog, 'utf8').split('\n').filter(Boolean);
    const createLine = lines.find((l) => / create /.test(` ${l} `)) ?? '';
    const ns = ctx.cd.namespace;
    assert.ok(lines.every((l) => l.startsWith(`--root ${root}/${ns} `)), `every runc call has --root ${root}/${ns}:\n${lines.join('\n')}`);
    assert.match(createLine, /(^| )--no-pivot( |$)/, createLine);
    assert.match(createLine, /(^| )--no-new-keyring( |$)/, createLine);
    assert.ok(existsSync(join(root, ns, id)), 'runc state under <Root>/<ns>/<id>');
    // The shim creates the stdio pipes owned by IoUid:IoGid; runc's init then re-owns each to
    // the container user keeping the group (libcontainer fixStdioPermissions), so what stays
    // observable is uid = container user (0 here) and gid = IoGid.
    assert.is(readFileSync(ownerLog, 'utf8'), `fifo ${uid}:${gid}\nfifo ${uid}:${gid}\n`, 'runc create got stdout and stderr pipes owned by IoUid:IoGid');
    const st = statSync(`/proc/${pid}/fd/1`);
    assert.equal([st.uid, st.gid], [0, gid], 'stdout pipe: container uid, IoGid');
    const st2 = statSync(`/proc/${pid}/fd/2`);
    assert.equal([st2.uid, st2.gid], [0, gid], 'stderr pipe: container uid, IoGid');
    obs = { everyCallHasRoot: true, createHasNoPivot: true, createHasNoNewKeyring: true, stateUnderRoot: true, stdioOwner: [st.uid, st.gid, st2.uid, st2.gid], createStdioOwner: readFileSync(ownerLog, 'utf8') };
  } finally {
    await made.cleanup();
    rmSync(root, { recursive: true, force: true });
  }
  return obs;
});

parity(t, 'runc Options SystemdCgroup on a host without systemd as PID 1: the same failure', async (runtime, ctx) => {
  const id = uniqueId('psysd');
  const made = await createWithOptions(ctx, runtime, id, { systemdCgroup: true });
  let outcome = '';
  try {
    outcome = await grpcOutcome(ctx.client.tasks.create({ containerId: id, rootfs: made.mounts, stdin: '', stdout: '', stderr: '', terminal: false, options: undefined }, T), {
      [id]: '<id>',
      [bundleDir(ctx.cd, id)]: '<bundle>',
    });
  } finally {
    await made.cleanup();
  }
  console.log(`  [${runtime}] create with SystemdCgroup: ${outcome}`);
  const pid1 = readFileSync('/proc/1/comm', 'utf8').trim();
  if (pid1 !== 'systemd') assert.is.not(outcome, 'OK', `systemd is not PID 1 (${pid1}): create fails`);
  return { outcome };
});

parity(t, 'grouping: two containers with io.containerd.runc.v2.group share one shim; removing one leaves the other running and killable', async (runtime, { cd, image }) => {
  const a = uniqueId('pga');
  const b = uniqueId('pgb');
  const flags = ['--annotation', `io.containerd.runc.v2.group=g-${randomBytes(4).toString('hex')}`];
  const pa = await runSleeper(cd, image, runtime, a, flags);
  const pb = await runSleeper(cd, image, runtime, b, flags);
  const addr = (id: string) => readFileSync(join(bundleDir(cd, id), 'address'), 'utf8').trim();
  assert.is(addr(a), addr(b), 'same shim address in both bundles');
  const daemons = shimDaemons(cd, [a, b]).filter((d) => d.binary === shimBinary(runtime));
  assert.is(daemons.length, 1, `one shim daemon: ${JSON.stringify(daemons)}`);
  const daemon = daemons[0]!.pid;
  // Removing a: everything of a goes, except the shared daemon (started as `-id <a>`).
  await cd.ctr(['task', 'kill', '-s', 'SIGKILL', a]);
  assert.ok(await waitFor(async () => (await taskStatus(cd, a))?.status === 'STOPPED', 10_000, 100), 'a stopped');
  await cd.ctr(['task', 'rm', a]);
  assert.is((await cd.ctr(['c', 'rm', a])).exitCode, 0);
  await waitFor(() => leftovers(cd, a, [pa]).length <= 1, 10_000, 100);
  assert.equal(leftovers(cd, a, [pa]), [`shim process ${daemon}`], 'only the shared shim daemon is left of a');
  await sleep(300);
  assert.ok(isAlive(daemon), 'the shim serves the other task on');
  assert.is((await taskStatus(cd, b))?.status, 'RUNNING');
  const x = await cd.ctr(['task', 'exec', '--exec-id', 'after', b, 'echo', 'alive']);
  assert.is(x.stdout, 'alive\n', x.stderr);
  const k = await cd.ctr(['task', 'kill', '-s', 'SIGKILL', b]);
  assert.is(k.exitCode, 0, k.stderr);
  assert.ok(await waitFor(async () => (await taskStatus(cd, b))?.status === 'STOPPED', 10_000, 100), 'b stopped');
  const rm = await cd.ctr(['task', 'rm', b]);
  assert.match(rm.stderr, /exit code 137/);
  assert.is((await cd.ctr(['c', 'rm', b])).exitCode, 0);
  assert.ok(await waitFor(() => !isAlive(daemon), 10_000, 100), 'the shim exits after its last task');
  assert.equal(await waitNoLeftovers(cd, b, [pb]), []);
  return { sameAddress: true, daemons: daemons.length, otherRunning: true, execAfter: x.stdout, shimExitsAfterLast: true };
});

t.run();
