// runc's runtime options (io.containerd.runc.v1.Options through containerd's gRPC API): they
// configure runc, so they run on the columns whose backend is runc.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerdClient } from '../../src/client/containerd.js';
import { runcOptions, TYPE_URL } from '../../src/shim-api/pb.js';
import { runChecked } from '../../test/helpers/proc.js';
import { bundleDir, taskStatus, waitNoLeftovers } from '../../test/helpers/tasks.js';
import { NotRunError, type Scenario, type ScenarioContext } from '../types.js';
import { ok, outcome, waitFor } from './util.js';

const T = { timeoutMs: 30_000 };

function requireRuncBackend(ctx: ScenarioContext): void {
  if (ctx.column.backend !== 'runc') {
    throw new NotRunError(`runc's runtime options (BinaryName, Root, NoPivotRoot, NoNewKeyring, IoUid/IoGid, SystemdCgroup) configure runc; the ${ctx.column.id} column's backend is ${ctx.column.backend}`);
  }
}

type Mounts = Awaited<ReturnType<ContainerdClient['snapshots']['prepare']>>['mounts'];

/**
 * A container created through the gRPC API with runc `Options`, from the spec and image parent of
 * one made by `ctr c create`. (The runc options carry no ConfigPath: a tsshim column runs its
 * default handler, runc.)
 */
async function createWithOptions(ctx: ScenarioContext, id: string, options: Parameters<typeof runcOptions.Options.fromPartial>[0]): Promise<Mounts> {
  const { client } = ctx;
  const tpl = ctx.uniqueId('tpl');
  ok(await ctx.ctr.createContainer(tpl, ['sleep', '300']), 'ctr c create (template)');
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
      runtime: { name: ctx.column.runtimeType, options: { typeUrl: TYPE_URL.RuncOptions, value: runcOptions.Options.encode(runcOptions.Options.fromPartial(options)).finish() } },
    },
  });
  const { mounts } = await client.snapshots.prepare({ snapshotter: got.snapshotter, key: id, parent, labels: {} });
  ok(await ctx.ctr.raw(['containers', 'rm', tpl]), 'ctr c rm (template)');
  ctx.defer(async () => {
    await client.tasks.kill({ containerId: id, signal: 9, all: true }).catch(() => undefined);
    await waitFor(async () => (await taskStatus(ctx.cd, id))?.status !== 'RUNNING', 10_000, 100);
    await client.tasks.delete({ containerId: id }).catch(() => undefined);
    await client.containers.delete({ id }).catch(() => undefined);
    // Unreferenced once the container is gone: containerd's GC may have removed it already.
    await client.snapshots.remove({ snapshotter: got.snapshotter, key: id }).catch(() => undefined);
  });
  return mounts;
}

export const runcOptionsScenarios: Scenario[] = [
  {
    id: 'runc-options',
    group: 'runc options',
    title: 'runc Options BinaryName (a wrapper), Root, NoPivotRoot, NoNewKeyring, IoUid/IoGid (gRPC): they reach runc and the stdio pipes',
    async run(ctx) {
      requireRuncBackend(ctx);
      const id = ctx.uniqueId('opt');
      const dir = mkdtempSync(join(ctx.tmp, 'opt-'));
      const argvLog = join(dir, 'argv.log');
      const ownerLog = join(dir, 'create-stdio-owner');
      const wrapper = join(dir, 'runc-wrapper');
      const runcPath = (await runChecked('sh', ['-c', 'command -v runc'])).trim();
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
      const root = `/run/tsshim-conf-root-${randomBytes(3).toString('hex')}`;
      ctx.defer(() => rmSync(root, { recursive: true, force: true }));
      const [uid, gid] = [4321, 5432];
      const mounts = await createWithOptions(ctx, id, { binaryName: wrapper, root, noPivotRoot: true, noNewKeyring: true, ioUid: uid, ioGid: gid });
      const out = join(dir, 'out.log');
      const created = await ctx.client.tasks.create({ containerId: id, rootfs: mounts, stdin: '', stdout: `file://${out}`, stderr: `file://${out}`, terminal: false, options: undefined }, T);
      await ctx.client.tasks.start({ containerId: id }, T);
      const lines = readFileSync(argvLog, 'utf8').split('\n').filter(Boolean);
      const createLine = lines.find((l) => / create /.test(` ${l} `)) ?? '';
      const ns = ctx.cd.namespace;
      ctx.note('runcCalls', lines.map((l) => l.split(id).join('<id>')).slice(0, 6));
      // The shim creates the stdio pipes owned by IoUid:IoGid; runc's init then re-owns each to the
      // container user keeping the group (libcontainer fixStdioPermissions): uid 0, gid IoGid.
      const st1 = statSync(`/proc/${created.pid}/fd/1`);
      const st2 = statSync(`/proc/${created.pid}/fd/2`);
      return {
        everyCallHasRoot: lines.length > 0 && lines.every((l) => l.startsWith(`--root ${root}/${ns} `)),
        createHasNoPivot: /(^| )--no-pivot( |$)/.test(createLine),
        createHasNoNewKeyring: /(^| )--no-new-keyring( |$)/.test(createLine),
        stateUnderRoot: existsSync(join(root, ns, id)),
        createStdioOwner: existsSync(ownerLog) ? readFileSync(ownerLog, 'utf8') : null,
        stdioOwner: [st1.uid, st1.gid, st2.uid, st2.gid],
      };
    },
    expect: (o) => {
      const want = { everyCallHasRoot: true, createHasNoPivot: true, createHasNoNewKeyring: true, stateUnderRoot: true, createStdioOwner: 'fifo 4321:5432\nfifo 4321:5432\n', stdioOwner: [0, 5432, 0, 5432] };
      return Object.entries(want).filter(([k, v]) => JSON.stringify(o[k]) !== JSON.stringify(v)).map(([k, v]) => `${k}: ${JSON.stringify(o[k])}, expected ${JSON.stringify(v)}`);
    },
  },
  {
    id: 'runc-options-systemd-cgroup',
    group: 'runc options',
    title: 'runc Options SystemdCgroup (gRPC) on a host without systemd as PID 1: Create fails the same way',
    async run(ctx) {
      requireRuncBackend(ctx);
      const pid1 = readFileSync('/proc/1/comm', 'utf8').trim();
      if (pid1 === 'systemd') throw new NotRunError('systemd is PID 1 here: SystemdCgroup works and its failure cannot be observed');
      const id = ctx.uniqueId('sysd');
      const mounts = await createWithOptions(ctx, id, { systemdCgroup: true });
      const created = await outcome(ctx.client.tasks.create({ containerId: id, rootfs: mounts, stdin: '', stdout: '', stderr: '', terminal: false, options: undefined }, T), {
        [id]: '<id>',
        [bundleDir(ctx.cd, id)]: '<bundle>',
      });
      ctx.note('pid1', pid1);
      const left = await waitNoLeftovers(ctx.cd, id);
      return { create: created, leftoversAfterFailedCreate: left.length };
    },
    expect: (o) => (o.create !== 'OK' ? [] : ['Create with SystemdCgroup succeeded without systemd as PID 1']),
  },
  {
    id: 'early-exit-after-create',
    group: 'runc options',
    title: 'a BinaryName wrapper SIGKILLs the init right after `runc create`: Create answers, Wait returns 137 (never hangs), Start is refused, Delete reports 137 (no exit is lost)',
    async run(ctx) {
      requireRuncBackend(ctx);
      const runc = (await runChecked('sh', ['-c', 'command -v runc'])).trim();
      const wrapper = join(ctx.tmp, 'runc-kills-init');
      writeFileSync(
        wrapper,
        [
          '#!/bin/sh',
          `${runc} "$@" || exit $?`,
          // after a successful create: SIGKILL the init named by --pid-file, then answer success
          'case " $* " in *" create "*)',
          '  pf=""; prev=""',
          '  for a in "$@"; do [ "$prev" = "--pid-file" ] && pf="$a"; prev="$a"; done',
          '  kill -9 "$(cat "$pf")";;',
          'esac',
          'exit 0',
          '',
        ].join('\n'),
      );
      chmodSync(wrapper, 0o755);
      const id = ctx.uniqueId('early');
      const mounts = await createWithOptions(ctx, id, { binaryName: wrapper });
      const created = await ctx.client.tasks.create({ containerId: id, rootfs: mounts, stdin: '', stdout: '', stderr: '', terminal: false, options: undefined }, T);
      const waited = await ctx.client.tasks.wait({ containerId: id }, T);
      const got = await ctx.client.tasks.get({ containerId: id }, T);
      const start = await outcome(ctx.client.tasks.start({ containerId: id }, T), { [id]: '<id>' });
      const deleted = await ctx.client.tasks.delete({ containerId: id }, T);
      return { createPidPositive: created.pid > 0, waited: waited.exitStatus, status: got.process?.status ?? null, exitStatus: got.process?.exitStatus ?? null, start, deleted: deleted.exitStatus };
    },
    expect: (o) =>
      o.createPidPositive === true && o.waited === 137 && o.deleted === 137 && o.start !== 'OK' ? [] : [`create pid ${o.createPidPositive}, wait ${o.waited}, start ${o.start}, delete ${o.deleted}`],
  },
];
