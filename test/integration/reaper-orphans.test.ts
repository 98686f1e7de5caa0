// Issue 11.4 through real containerd: a container in the host pid namespace leaves 3,000 orphans,
// which the kernel re-parents to the shim (the child subreaper). Every one must be reaped (no
// zombies left) at a CPU cost comparable to runc-v2's on the same run. The old reaper listed
// every child from /proc and waitpid'ed each on every SIGCHLD: quadratic in live orphans.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { childrenOf, waitFor, zombieChildren } from '../helpers/proc.js';
import { bundleDir, shimPids, taskStatus, waitNoLeftovers, TSSHIM, RUNC_V2 } from '../helpers/tasks.js';

interface Ctx {
  cd: PrivateContainerd;
  image: string;
}
const t = suite<Ctx>('reaper-orphans');

t.before(async (ctx) => {
  ctx.cd = await startContainerd({ name: 'reaper-orphans' });
  ctx.image = await importTestImage(ctx.cd);
});
t.after(async (ctx) => {
  await ctx.cd?.stop();
});

const ORPHANS = 3000;
/** CPU time of pid itself (utime + stime, clock ticks), excluding its reaped children's. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // fields 14 and 15 of proc(5)
}

const cpu = new Map<string, number>();

for (const runtime of [TSSHIM, RUNC_V2]) {
  t(`[${runtime}] ${ORPHANS} orphans re-parented to the shim are all reaped`, async ({ cd, image }) => {
    const id = uniqueId('orph');
    // Each `(sleep 1 &)` subshell exits at once: its sleep is orphaned to the nearest subreaper, the shim.
    const script = `i=0; while [ $i -lt ${ORPHANS} ]; do (sleep 1 &); i=$((i+1)); done; touch /forked-all; exec sleep 300`;
    const r = await cd.ctr(['run', '-d', '--runtime', runtime, '--with-ns', `pid:/proc/${process.pid}/ns/pid`, image, id, 'sh', '-c', script]);
    assert.is(r.exitCode, 0, r.stderr);
    const row = await taskStatus(cd, id);
    assert.ok(row && row.pid > 0);
    const shim = shimPids(cd, id)[0]!;
    assert.ok(shim > 0, 'shim daemon found');
    const before = cpuTicks(shim);
    try {
      const marker = join(bundleDir(cd, id), 'rootfs', 'forked-all');
      assert.ok(await waitFor(() => existsSync(marker), 300_000, 200), 'the container forked all its orphans');
      // All orphans were re-parented to the shim; after a second they exit. Reaped = no child left but the init.
      const settled = await waitFor(() => childrenOf(shim).filter((p) => p !== row!.pid).length === 0, 120_000, 200);
      const left = childrenOf(shim).filter((p) => p !== row!.pid);
      assert.ok(settled, `every orphan reaped; left: ${left.length} (zombies: ${zombieChildren(shim).length})`);
      assert.equal(zombieChildren(shim), []);
      const used = cpuTicks(shim) - before;
      cpu.set(runtime, used);
      console.log(`  [${runtime}] shim CPU while ${ORPHANS} orphans were re-parented and reaped: ${(used / 100).toFixed(2)} s`);
      // the shim still serves its task
      assert.is((await taskStatus(cd, id))?.status, 'RUNNING');
    } finally {
      await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
      await waitFor(async () => (await taskStatus(cd, id))?.status === 'STOPPED', 15_000, 100);
      await cd.ctr(['task', 'rm', '-f', id]);
      await cd.ctr(['c', 'rm', id]);
    }
    assert.equal(await waitNoLeftovers(cd, id), []);
  });
}

t('[compare] shim CPU for the orphans: tsshim within 5x of runc-v2 (plus one second of slack for Node)', () => {
  const ts = cpu.get(TSSHIM);
  const rc = cpu.get(RUNC_V2);
  assert.ok(ts !== undefined && rc !== undefined, 'both runtimes measured');
  console.log(`  shim CPU: tsshim ${(ts! / 100).toFixed(2)} s, runc-v2 ${(rc! / 100).toFixed(2)} s`);
  assert.ok(ts! <= 5 * rc! + 100, `tsshim ${ts} ticks vs runc-v2 ${rc} ticks`);
});

t.run();
