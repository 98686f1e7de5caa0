// No exit is lost (issue 11.4, ADR 0011): a runtime wrapper (runc Options BinaryName) runs the
// real `runc create` and then SIGKILLs the init from the pid file, before the shim has read it.
// Through a real containerd, on io.containerd.tsshim.v2 and io.containerd.runc.v2: Create
// answers, Wait returns 137 (never hangs), Start is refused, Delete reports 137.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { runChecked } from '../helpers/proc.js';
import { grpcOutcome, parity, type Runtime } from '../helpers/parity.js';
import { connectContainerd, type ContainerdClient } from '../../src/client/containerd.js';
import { runcOptions, TYPE_URL } from '../../src/shim-api/pb.js';

interface Ctx {
  cd: PrivateContainerd;
  image: string;
  client: ContainerdClient;
  tmp: string;
  wrapper: string;
}
const t = suite<Ctx>('early-exit');

t.before(async (ctx) => {
  ctx.cd = await startContainerd({ name: 'early-exit' });
  ctx.image = await importTestImage(ctx.cd);
  ctx.client = await connectContainerd(ctx.cd.address, ctx.cd.namespace);
  ctx.tmp = mkdtempSync('/tmp/tsshim-early-exit-');
  const runc = (await runChecked('sh', ['-c', 'command -v runc'])).trim();
  ctx.wrapper = join(ctx.tmp, 'runc-kills-init');
  writeFileSync(
    ctx.wrapper,
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
  chmodSync(ctx.wrapper, 0o755);
});
t.after(async (ctx) => {
  ctx.client?.close();
  await ctx.cd?.stop();
  if (ctx.tmp) rmSync(ctx.tmp, { recursive: true, force: true });
});

const T = { timeoutMs: 30_000 };

/** A container whose runtime options name the wrapper, on the image's snapshot. */
async function containerWithWrapper(ctx: Ctx, runtime: Runtime, id: string) {
  const { cd, image, client } = ctx;
  const tpl = `${id}-tpl`;
  const c = await cd.ctr(['c', 'create', '--runtime', runtime, image, tpl, 'sleep', '300']);
  assert.is(c.exitCode, 0, c.stderr);
  const got = (await client.containers.get({ id: tpl })).container!;
  const parent = (await client.snapshots.stat({ snapshotter: got.snapshotter, key: got.snapshotKey })).info!.parent;
  const spec = JSON.parse(Buffer.from(got.spec!.value).toString()) as { linux: { cgroupsPath: string } };
  spec.linux.cgroupsPath = spec.linux.cgroupsPath.replace(tpl, id);
  const options = runcOptions.Options.encode(runcOptions.Options.fromPartial({ binaryName: ctx.wrapper })).finish();
  await client.containers.create({
    container: {
      id,
      image: got.image,
      snapshotter: got.snapshotter,
      snapshotKey: id,
      labels: {},
      extensions: {},
      spec: { typeUrl: got.spec!.typeUrl, value: Buffer.from(JSON.stringify(spec)) },
      runtime: { name: runtime, options: { typeUrl: TYPE_URL.RuncOptions, value: options } },
    },
  });
  const { mounts } = await client.snapshots.prepare({ snapshotter: got.snapshotter, key: id, parent, labels: {} });
  await cd.ctr(['c', 'rm', tpl]);
  return { mounts, snapshotter: got.snapshotter };
}

parity(t, 'init SIGKILLed right after `runc create`: the task is stopped with 137, Wait returns, Start is refused', async (runtime, ctx) => {
  const { client } = ctx;
  const id = uniqueId('early');
  const { mounts, snapshotter } = await containerWithWrapper(ctx, runtime, id);
  try {
    const created = await client.tasks.create({ containerId: id, rootfs: mounts, stdin: '', stdout: '', stderr: '', terminal: false, options: undefined }, T);
    assert.ok(created.pid > 0, 'Create answers the init pid');
    const waited = await client.tasks.wait({ containerId: id }, T);
    assert.is(waited.exitStatus, 137, 'Wait returns the SIGKILL status');
    const got = await client.tasks.get({ containerId: id }, T);
    const start = await grpcOutcome(client.tasks.start({ containerId: id }, T), { [id]: '<id>' });
    const deleted = await client.tasks.delete({ containerId: id }, T);
    assert.is(deleted.exitStatus, 137);
    const obs = { waited: waited.exitStatus, status: got.process?.status, exitStatus: got.process?.exitStatus, start, deleted: deleted.exitStatus };
    console.log(`  [${runtime}] ${JSON.stringify(obs)}`);
    return obs;
  } finally {
    await client.tasks.delete({ containerId: id }).catch(() => undefined);
    await client.containers.delete({ id }).catch(() => undefined);
    await client.snapshots.remove({ snapshotter, key: id }).catch(() => undefined);
  }
});

t.run();
