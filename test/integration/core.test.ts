// Issue 2, end to end through a private real containerd and the real ctr: the
// basic lifecycle on io.containerd.tsshim.v2 (runc handler), each behaviour
// checked against io.containerd.runc.v2 on the same run where it applies.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { waitFor, isAlive, randomOutputCommand, streamAndHash } from '../helpers/proc.js';
import { selectedContainerd, stripCtrDeprecationNotices } from '../helpers/containerd-version.js';
import { TSSHIM, RUNC_V2, shimPids, leftovers, waitNoLeftovers, taskStatus, collectEvents, bundleDir } from '../helpers/tasks.js';

const t = suite<{ cd: PrivateContainerd; image: string }>('core');

t.before(async (ctx) => {
  ctx.cd = await startContainerd({ name: 'core' });
  ctx.image = await importTestImage(ctx.cd);
});
t.after(async (ctx) => {
  await ctx.cd?.stop();
});

for (const runtime of [TSSHIM, RUNC_V2]) {
  t(`[${runtime}] stdout and stderr on the right fds, exit code 42`, async ({ cd, image }) => {
    const id = uniqueId('exit');
    const r = await cd.ctr(['run', '--rm', '--runtime', runtime, image, id, 'sh', '-c', 'echo out; echo err >&2; exit 42']);
    assert.is(r.exitCode, 42, r.stderr);
    assert.is(r.stdout, 'out\n');
    assert.is(r.stderr, 'err\n');
    assert.equal(await waitNoLeftovers(cd, id), []);
  });
}

for (const runtime of [TSSHIM, RUNC_V2]) {
  for (const [signal, status] of [['SIGTERM', 143], ['SIGKILL', 137]] as const) {
    t(`[${runtime}] run -d, task ls RUNNING with host pid, kill ${signal} -> ${status}, rm leaves nothing`, async ({ cd, image }) => {
      const id = uniqueId('kill');
      // Joining the host pid namespace: a PID 1 ignores signals it has no handler for, and the
      // brief's 143 is about a process that does not trap SIGTERM.
      const r = await cd.ctr(['run', '-d', '--runtime', runtime, '--with-ns', `pid:/proc/${cd.pid}/ns/pid`, image, id, 'sleep', '300']);
      assert.is(r.exitCode, 0, r.stderr);
      const row = await taskStatus(cd, id);
      assert.ok(row, 'task listed');
      assert.is(row!.status, 'RUNNING');
      assert.ok(row!.pid > 0);
      const cmdline = (await import('node:fs')).readFileSync(`/proc/${row!.pid}/cmdline`, 'utf8').split('\0');
      assert.equal(cmdline.slice(0, 2), ['sleep', '300'], 'task pid is the container process on the host');
      const shims = runtime === TSSHIM ? shimPids(cd, id) : [];
      if (runtime === TSSHIM) assert.is(shims.length, 1, 'one tsshim daemon');
      const k = await cd.ctr(['task', 'kill', '-s', signal, id]);
      assert.is(k.exitCode, 0, k.stderr);
      assert.ok(await waitFor(async () => (await taskStatus(cd, id))?.status === 'STOPPED', 10_000), 'task stopped');
      const rm = await cd.ctr(['task', 'rm', id]);
      assert.is(rm.exitCode, 0, rm.stderr);
      assert.match(rm.stderr, new RegExp(`task ${id} exit with non-zero exit code ${status}`), 'ctr task rm reports the exit status');
      const crm = await cd.ctr(['c', 'rm', id]);
      assert.is(crm.exitCode, 0, crm.stderr);
      assert.equal(await waitNoLeftovers(cd, id, [row!.pid, ...shims]), []);
    });
  }
}

for (const runtime of [TSSHIM, RUNC_V2]) {
  t(`[${runtime}] shim daemon: detached from containerd (own process group, stdio not containerd's), oom_score_adj containerd + 1`, async ({ cd, image }) => {
    const id = uniqueId('daemon');
    const r = await cd.ctr(['run', '-d', '--runtime', runtime, image, id, 'sleep', '300']);
    assert.is(r.exitCode, 0, r.stderr);
    try {
      const shims = shimPids(cd, id);
      assert.is(shims.length, 1, `one shim daemon for ${id}`);
      const pid = shims[0]!;
      // /proc/<pid>/stat: "pid (comm) state ppid pgrp session ..."
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const [, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
      assert.is(pgrp, pid, 'the daemon leads its own process group');
      const adj = (p: number) => Number(readFileSync(`/proc/${p}/oom_score_adj`, 'utf8'));
      assert.is(adj(pid), Math.min(adj(cd.pid) + 1, 1000), 'oom_score_adj is containerd\'s + 1');
      for (const fd of [0, 1]) assert.is(readlinkSync(`/proc/${pid}/fd/${fd}`), '/dev/null', `fd ${fd} is /dev/null`);
      const containerdFds = new Set(
        readdirSync(`/proc/${cd.pid}/fd`).map((f) => { try { return readlinkSync(`/proc/${cd.pid}/fd/${f}`); } catch { return ''; } }).filter((l) => l.startsWith('pipe:')),
      );
      const shared = [0, 1, 2].map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`)).filter((l) => containerdFds.has(l));
      assert.equal(shared, [], 'no stdio fd of the daemon is a pipe containerd holds');
    } finally {
      await cd.ctr(['task', 'kill', '-s', 'KILL', id]);
      await waitFor(async () => (await taskStatus(cd, id))?.status === 'STOPPED', 10_000);
      await cd.ctr(['task', 'rm', id]);
      await cd.ctr(['c', 'rm', id]);
    }
  });
}

for (const runtime of [TSSHIM, RUNC_V2]) {
  t(`[${runtime}] stdin reaches the container`, async ({ cd, image }) => {
    // ctr 1.6 has no -i and never closes a task's stdin on EOF (runc-v2 and tsshim alike hang
    // on `cat`), so the container reads one line; EOF through CloseIO is tested in shim-direct.
    const id = uniqueId('stdin');
    const r = await cd.ctr(['run', '--rm', '--runtime', runtime, image, id, 'sh', '-c', 'read line; echo "got:$line"'], { input: 'hi\n' });
    assert.is(r.exitCode, 0, r.stderr);
    assert.is(r.stdout, 'got:hi\n');
  });
}

t('[tsshim] 10 MB of stdout arrive byte-exact', async ({ cd, image }) => {
  const size = 10 * 1024 * 1024;
  const r = await streamAndHash(cd.ctrArgv(['run', '--rm', '--runtime', TSSHIM, image, uniqueId('big'), ...randomOutputCommand(size)]), { cleanStderr: stripCtrDeprecationNotices });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.bytes, size);
  assert.ok(r.sha256Matches, 'sha256 inside equals sha256 received');
});

for (const runtime of [TSSHIM, RUNC_V2]) {
  t(`[${runtime}] events: create, start, exit, delete in order with id, pid and status`, async ({ cd, image }) => {
    const ev = collectEvents(cd);
    await ev.ready;
    const id = uniqueId('ev');
    const r = await cd.ctr(['run', '--rm', '--runtime', runtime, image, id, 'sh', '-c', 'exit 3']);
    assert.is(r.exitCode, 3, r.stderr);
    await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/delete' && e.body.container_id === id), 5000);
    const mine = (await ev.stop()).filter((e) => e.topic.startsWith('/tasks/') && e.body.container_id === id);
    const expected = ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete'];
    if (runtime === RUNC_V2 && selectedContainerd() === '2' && mine.length < expected.length) {
      // containerd 2.4's own runc shim loses queued events when it shuts down right after the
      // delete (docs/containerd-versions.md): what did arrive must still be in order.
      assert.equal(mine.map((e) => e.topic), expected.filter((x) => mine.some((e) => e.topic === x)));
      return;
    }
    assert.equal(mine.map((e) => e.topic), expected);
    const [create, start, exit, del] = mine as [typeof mine[0], typeof mine[0], typeof mine[0], typeof mine[0]];
    const pid = create.body.pid;
    assert.ok(typeof pid === 'number' && pid > 0);
    assert.is(start.body.pid, pid);
    assert.is(exit.body.pid, pid);
    assert.is(exit.body.id, id, 'TaskExit.id is the container id for the init');
    assert.is(exit.body.exit_status, 3);
    assert.is(del.body.pid, pid);
    assert.is(del.body.exit_status, 3);
  });
}

/** The shim's socket: `<bundle>/address`, or containerd 2.x's `<bundle>/bootstrap.json` (2.x's runc-v2 writes no address file). */
function shimSocket(bundle: string): string {
  const a = existsSync(`${bundle}/address`)
    ? readFileSync(`${bundle}/address`, 'utf8')
    : (JSON.parse(readFileSync(`${bundle}/bootstrap.json`, 'utf8')) as { address: string }).address;
  return a.trim().replace(/^unix:\/\//, '');
}

for (const runtime of [TSSHIM, RUNC_V2]) {
  t(`[${runtime}] kill -9 of the shim: containerd runs delete, task stopped, removable, nothing left`, async ({ cd, image }) => {
    const id = uniqueId('shimkill');
    const r = await cd.ctr(['run', '-d', '--runtime', runtime, image, id, 'sleep', '300']);
    assert.is(r.exitCode, 0, r.stderr);
    const row = (await taskStatus(cd, id))!;
    const { findProcesses } = await import('../helpers/proc.js');
    const shim = findProcesses((argv) => argv.some((a) => a.includes(runtime === TSSHIM ? 'containerd-shim-tsshim-v2' : 'containerd-shim-runc-v2')) && argv.includes(id) && argv.includes(cd.address))
      .filter((p) => !p.argv.includes('start') && !p.argv.includes('delete'));
    assert.is(shim.length, 1, `one shim process: ${JSON.stringify(shim)}`);
    const socket = shimSocket(bundleDir(cd, id));
    assert.ok(existsSync(socket), 'shim socket while the shim runs');
    process.kill(shim[0]!.pid, 'SIGKILL');
    assert.ok(await waitFor(async () => (await taskStatus(cd, id))?.status !== 'RUNNING', 15_000), 'task no longer running');
    assert.ok(await waitFor(() => !isAlive(row.pid), 10_000), 'container process gone');
    await cd.ctr(['task', 'rm', '-f', id]);
    const crm = await cd.ctr(['c', 'rm', id]);
    assert.is(crm.exitCode, 0, crm.stderr);
    assert.equal(await waitNoLeftovers(cd, id, [row.pid]), []);
    // runc-v2 1.6 leaves its socket file after its daemon was killed; tsshim's delete removes it (ADR 0005).
    if (runtime === TSSHIM) assert.not.ok(existsSync(socket), `stale shim socket ${socket} removed by the delete subcommand`);
  });
}

t('[tsshim] containerd restarted while a task runs: still listed, killable, removable', async ({ cd, image }) => {
  const id = uniqueId('restart');
  const r = await cd.ctr(['run', '-d', '--runtime', TSSHIM, image, id, 'sleep', '300']);
  assert.is(r.exitCode, 0, r.stderr);
  const before = (await taskStatus(cd, id))!;
  assert.ok(existsSync(`${bundleDir(cd, id)}/address`), 'address file in the bundle');
  await cd.restart();
  const after = await taskStatus(cd, id);
  assert.ok(after, `task listed after restart: ${cd.logTail(20)}`);
  assert.is(after!.status, 'RUNNING');
  assert.is(after!.pid, before.pid);
  const k = await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
  assert.is(k.exitCode, 0, k.stderr);
  assert.ok(await waitFor(async () => (await taskStatus(cd, id))?.status === 'STOPPED', 10_000));
  assert.is((await cd.ctr(['task', 'rm', id])).exitCode, 0);
  assert.is((await cd.ctr(['c', 'rm', id])).exitCode, 0);
  assert.equal(await waitNoLeftovers(cd, id, [before.pid]), []);
});

t.run();
