// Issue 3, parity part 1: exec (output, exit code, stdin, events, 200 execs), terminals,
// pause/resume and ps, each scenario run on io.containerd.tsshim.v2 and io.containerd.runc.v2 on
// the same private containerd and required to give the same observable result.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { sleep, waitFor } from '../helpers/proc.js';
import { TSSHIM, collectEvents, taskStatus, waitNoLeftovers, type EventLine } from '../helpers/tasks.js';
import { cgroupOf, ctrArgv, fdCount, parity, shimBinary, shimDaemons, shq, underTerminal, zombieChildren, type Runtime } from '../helpers/parity.js';

const t = suite<{ cd: PrivateContainerd; image: string }>('parity-exec');

t.before(async (ctx) => {
  ctx.cd = await startContainerd({ name: 'parity-exec' });
  ctx.image = await importTestImage(ctx.cd);
});
t.after(async (ctx) => {
  await ctx.cd?.stop();
});

/** `ctr run -d <id> sleep 300` on `runtime`; returns the init's host pid. */
async function runSleeper(cd: PrivateContainerd, image: string, runtime: Runtime, id: string): Promise<number> {
  const r = await cd.ctr(['run', '-d', '--runtime', runtime, image, id, 'sleep', '300']);
  assert.is(r.exitCode, 0, r.stderr);
  const row = await taskStatus(cd, id);
  assert.ok(row && row.pid > 0, `task ${id} listed with a pid`);
  return row!.pid;
}

/** SIGKILL, task rm, c rm, and nothing left behind. */
async function remove(cd: PrivateContainerd, id: string, pids: number[] = []): Promise<void> {
  await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
  await waitFor(async () => (await taskStatus(cd, id))?.status === 'STOPPED', 10_000, 100);
  await cd.ctr(['task', 'rm', id]);
  const crm = await cd.ctr(['c', 'rm', id]);
  assert.is(crm.exitCode, 0, crm.stderr);
  assert.equal(await waitNoLeftovers(cd, id, pids), []);
}

/** Task events of one container as `topic(exec id)` / `topic`, in arrival order. */
function topics(lines: EventLine[], id: string): string[] {
  return lines
    .filter((e) => e.topic.startsWith('/tasks/') && e.body.container_id === id)
    .map((e) => {
      const exec = e.body.exec_id ?? (e.topic === '/tasks/exit' && e.body.id !== id ? e.body.id : undefined);
      return exec ? `${e.topic}(${String(exec)})` : e.topic;
    });
}

parity(t, 'exec: stdout/stderr on their streams, exit 5, events exec-added, exec-started, exit(exec id, status 5)', async (runtime, { cd, image }) => {
  const id = uniqueId('px');
  const init = await runSleeper(cd, image, runtime, id);
  const ev = collectEvents(cd);
  await ev.ready;
  const r = await cd.ctr(['task', 'exec', '--exec-id', 'e1', id, 'sh', '-c', 'echo out; echo err >&2; exit 5']);
  assert.is(r.exitCode, 5, r.stderr);
  assert.is(r.stdout, 'out\n');
  assert.is(r.stderr, 'err\n');
  await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/exit' && e.body.id === 'e1'), 5000);
  await sleep(300); // anything published after the exit (there should be nothing) gets in too
  const lines = (await ev.stop()).filter((e) => e.body.container_id === id);
  const seq = topics(lines, id);
  assert.equal(seq, ['/tasks/exec-added(e1)', '/tasks/exec-started(e1)', '/tasks/exit(e1)']);
  const started = lines.find((e) => e.topic === '/tasks/exec-started')!;
  const exit = lines.find((e) => e.topic === '/tasks/exit')!;
  assert.is(exit.body.id, 'e1', 'TaskExit.id is the exec id');
  assert.is(exit.body.exit_status, 5);
  assert.ok(typeof started.body.pid === 'number' && started.body.pid > 0 && started.body.pid !== init, 'exec-started has the exec pid');
  assert.is(exit.body.pid, started.body.pid, 'TaskExit.pid = TaskExecStarted.pid');
  assert.ok(exit.body.exited_at, 'TaskExit.exited_at set');
  const obs = {
    exitCode: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
    topics: seq,
    exitStatus: exit.body.exit_status,
    eventFields: Object.fromEntries(lines.map((e) => [e.topic, Object.keys(e.body).sort()])),
    initRunning: (await taskStatus(cd, id))?.status,
  };
  await remove(cd, id, [init]);
  return obs;
});

parity(t, 'exec: a line on stdin reaches `sh -c read`', async (runtime, { cd, image }) => {
  const id = uniqueId('pxi');
  const init = await runSleeper(cd, image, runtime, id);
  const r = await cd.ctr(['task', 'exec', '--exec-id', 'in1', id, 'sh', '-c', 'read l; echo got:$l'], { input: 'hello there\n', timeoutMs: 30_000 });
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout, 'got:hello there\n');
  await remove(cd, id, [init]);
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
});

parity(t, 'exec: 20 execs of `true` (exit at once): each exit comes after its exec-started, status 0', async (runtime, { cd, image }) => {
  const id = uniqueId('pxq');
  const init = await runSleeper(cd, image, runtime, id);
  const ev = collectEvents(cd);
  await ev.ready;
  const n = 20;
  for (let i = 0; i < n; i++) {
    const r = await cd.ctr(['task', 'exec', '--exec-id', `q${i}`, id, 'true']);
    assert.is(r.exitCode, 0, r.stderr);
  }
  await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/exit' && e.body.id === `q${n - 1}`), 5000);
  const lines = (await ev.stop()).filter((e) => e.body.container_id === id);
  const seq = topics(lines, id);
  const perExec: string[] = [];
  for (let i = 0; i < n; i++) {
    const mine = seq.filter((s) => s.endsWith(`(q${i})`)).map((s) => s.replace(/\(.*\)$/, ''));
    assert.equal(mine, ['/tasks/exec-added', '/tasks/exec-started', '/tasks/exit'], `events of exec q${i}`);
    perExec.push(mine.join(','));
    const exit = lines.find((e) => e.topic === '/tasks/exit' && e.body.id === `q${i}`);
    assert.ok(exit, `q${i} has a /tasks/exit`);
    assert.is(exit!.body.exit_status ?? 0, 0, `q${i} exit status (0 is omitted from ctr's JSON)`);
  }
  await remove(cd, id, [init]);
  return { perExec };
});

parity(t, '200 sequential execs: no zombie under the shim, no growth of its open fds', async (runtime, { cd, image }) => {
  const id = uniqueId('px200');
  const init = await runSleeper(cd, image, runtime, id);
  const daemons = shimDaemons(cd, [id]).filter((d) => d.binary === shimBinary(runtime));
  assert.is(daemons.length, 1, `one ${shimBinary(runtime)} daemon: ${JSON.stringify(daemons)}`);
  const shim = daemons[0]!.pid;
  const fdsBefore = fdCount(shim);
  const started = Date.now();
  for (let i = 0; i < 200; i++) {
    const r = await cd.ctr(['task', 'exec', '--exec-id', `x${i}`, id, 'true']);
    assert.is(r.exitCode, 0, `exec x${i}: ${r.stderr}`);
  }
  const ms = Date.now() - started;
  // Reaping and closing are asynchronous to ctr's exit: give them a moment.
  await waitFor(() => zombieChildren(shim).length === 0, 3000, 100);
  await sleep(500);
  const zombies = zombieChildren(shim);
  const fdsAfter = fdCount(shim);
  console.log(`[${runtime}] 200 execs in ${ms} ms: shim ${shim} fds ${fdsBefore} -> ${fdsAfter}, zombie children ${zombies.length}`);
  assert.equal(zombies, [], 'no zombie child under the shim');
  if (runtime === TSSHIM) assert.ok(fdsAfter <= fdsBefore + 2, `tsshim open fds ${fdsBefore} -> ${fdsAfter} (slack +2)`);
  const r = await cd.ctr(['task', 'exec', '--exec-id', 'after', id, 'sh', '-c', 'echo still-works']);
  assert.is(r.stdout, 'still-works\n', r.stderr);
  await remove(cd, id, [init]);
  return { zombies: zombies.length, stillWorks: r.stdout };
});

parity(t, 'terminal: `ctr run -t` on a 40x120 terminal: `stty size` inside prints 40 120', async (runtime, { cd, image }) => {
  const id = uniqueId('ptty');
  // ctr sends the console size right after Start: give it a moment before asking.
  const cmd = ctrArgv(cd, ['run', '-t', '--rm', '--runtime', runtime, image, id, 'sh', '-c', 'sleep 1; stty size; tty']).map(shq).join(' ');
  const r = await underTerminal(cmd);
  assert.is(r.exitCode, 0, r.stdout + r.stderr);
  const out = r.stdout.replace(/\r/g, '').replace(/\^@/g, ''); // the terminal echoes a NUL as ^@ (both runtimes)
  assert.match(out, /^40 120$/m, `output: ${JSON.stringify(out)}`);
  assert.match(out, /^\/dev\/pts\/\d+$/m, 'stdin is a pty inside');
  assert.equal(await waitNoLeftovers(cd, id), []);
  return { exitCode: r.exitCode, size: /^(\d+ \d+)$/m.exec(out)?.[1], tty: /^\/dev\/pts\/\d+$/m.test(out) };
});

parity(t, 'terminal: `ctr task exec -t` on a 40x120 terminal: `stty size` prints 40 120, exit code passes through', async (runtime, { cd, image }) => {
  const id = uniqueId('pttx');
  const init = await runSleeper(cd, image, runtime, id);
  const cmd = ctrArgv(cd, ['task', 'exec', '-t', '--exec-id', 't1', id, 'sh', '-c', 'sleep 1; stty size; exit 3']).map(shq).join(' ');
  const r = await underTerminal(cmd);
  const out = r.stdout.replace(/\r/g, '').replace(/\^@/g, ''); // the terminal echoes a NUL as ^@ (both runtimes)
  assert.is(r.exitCode, 3, out + r.stderr);
  assert.match(out, /^40 120$/m, `output: ${JSON.stringify(out)}`);
  await remove(cd, id, [init]);
  return { exitCode: r.exitCode, size: /^(\d+ \d+)$/m.exec(out)?.[1] };
});

parity(t, 'pause -> PAUSED and /tasks/paused; resume -> RUNNING and /tasks/resumed', async (runtime, { cd, image }) => {
  const id = uniqueId('ppause');
  const init = await runSleeper(cd, image, runtime, id);
  const ev = collectEvents(cd);
  await ev.ready;
  const p = await cd.ctr(['task', 'pause', id]);
  assert.is(p.exitCode, 0, p.stderr);
  const paused = (await taskStatus(cd, id))?.status;
  assert.is(paused, 'PAUSED');
  const freezerState = () => readFileSync(`/sys/fs/cgroup/freezer${cgroupOf(init, 'freezer')}/freezer.state`, 'utf8').trim();
  assert.is(freezerState(), 'FROZEN', "the container's freezer cgroup is frozen");
  const rs = await cd.ctr(['task', 'resume', id]);
  assert.is(rs.exitCode, 0, rs.stderr);
  const resumed = (await taskStatus(cd, id))?.status;
  assert.is(resumed, 'RUNNING');
  assert.is(freezerState(), 'THAWED');
  await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/resumed' && e.body.container_id === id), 5000);
  const seq = topics(await ev.stop(), id);
  assert.equal(seq, ['/tasks/paused', '/tasks/resumed']);
  // Pausing twice / resuming a running task: whatever runc-v2 answers, tsshim must answer the same.
  const r2 = await cd.ctr(['task', 'resume', id]);
  await remove(cd, id, [init]);
  return { paused, resumed, topics: seq, resumeRunning: { exitCode: r2.exitCode, stderr: r2.stderr.replace(id, '<id>') } };
});

parity(t, '`ctr task ps` lists the init pid and an exec pid with its exec id', async (runtime, { cd, image }) => {
  const id = uniqueId('pps');
  const init = await runSleeper(cd, image, runtime, id);
  const ev = collectEvents(cd);
  await ev.ready;
  const x = await cd.ctr(['task', 'exec', '-d', '--exec-id', 'e2', id, 'sleep', '301']);
  assert.is(x.exitCode, 0, x.stderr);
  await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/exec-started' && e.body.container_id === id), 5000);
  const execPid = (await ev.stop()).find((e) => e.topic === '/tasks/exec-started' && e.body.container_id === id)?.body.pid as number;
  assert.ok(execPid > 0, 'exec pid from /tasks/exec-started');
  const ps = await cd.ctr(['task', 'ps', id]);
  assert.is(ps.exitCode, 0, ps.stderr);
  const rows = ps.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/, 2) as [string, string]);
  const byPid = new Map(rows.map(([pid, info]) => [Number(pid), info]));
  assert.is(rows.length, 2, ps.stdout);
  assert.ok(byPid.has(init), `init pid ${init} listed: ${ps.stdout}`);
  assert.ok(byPid.has(execPid), `exec pid ${execPid} listed: ${ps.stdout}`);
  assert.is(byPid.get(init), '-', 'no info for the init');
  assert.match(byPid.get(execPid)!, /ExecID:e2\b/, 'exec row names its exec id');
  await remove(cd, id, [init, execPid]);
  return { header: ps.stdout.split('\n')[0]!.trim().split(/\s+/), initInfo: byPid.get(init), execInfo: byPid.get(execPid) };
});

t.run();
