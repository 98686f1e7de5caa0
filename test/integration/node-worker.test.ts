// Issue 12.2, node mode's worker can die or be replaced at any moment (ADR 0018), through a private
// real containerd and the real ctr, on runc and gVisor: containers keep running, output written
// while no worker runs arrives, exit statuses are exact, pending calls are answered, no task is
// lost (youki too). SIGKILL of the worker while idle, during Create, during Exec, during a burst of 20 starts,
// during heavy output; `tsshim node reload` (upgrade) while containers run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { REPO_ROOT, findProcesses, isAlive, sleep, waitFor } from '../helpers/proc.js';
import { TSSHIM, waitNoLeftovers } from '../helpers/tasks.js';
import type { NodeStatus } from '../../src/shim-api/bootstrap/node.js';
import { nodeStatus as status, waitNewWorker as newWorker } from '../helpers/node-daemon.js';
import { skipWithReason } from '../helpers/skip.js';

const TSSHIM_CLI = join(REPO_ROOT, 'bin', 'tsshim');

const HANDLERS = [
  { name: 'runc', toml: 'handler = "runc"\nname = "node-runc"\n' },
  // the handler's defaults: the pinned runsc (ptrace), no network
  { name: 'gvisor', toml: 'handler = "gvisor"\nname = "node-gvisor"\n\n[options]\nnetwork = "none"\n' },
  { name: 'youki', toml: 'handler = "youki"\nname = "node-youki"\n' },
] as const;

interface Ctx {
  cd: PrivateContainerd;
  image: string;
  dir: string;
  savedConfig: string | undefined;
}

async function killWorker(cd: PrivateContainerd): Promise<NodeStatus> {
  const before = status(cd);
  assert.ok(before.workerPid && before.workerReady, 'a worker serves');
  process.kill(before.workerPid!, 'SIGKILL');
  const after = await newWorker(cd, before.workerPid!);
  assert.is(after.supervisorPid, before.supervisorPid, 'the supervisor stays');
  return after;
}

async function taskRow(cd: PrivateContainerd, id: string): Promise<{ pid: number; status: string } | undefined> {
  const line = (await cd.ctr(['task', 'ls'])).stdout.split('\n').find((l) => l.startsWith(id + ' '));
  if (!line) return undefined;
  const [, pid, st] = line.trim().split(/\s+/);
  return { pid: Number(pid), status: st! };
}

async function remove(cd: PrivateContainerd, id: string): Promise<string> {
  await cd.ctr(['task', 'kill', '-s', 'KILL', id]);
  await waitFor(async () => (await taskRow(cd, id))?.status !== 'RUNNING', 15_000);
  const rm = await cd.ctr(['task', 'rm', id]);
  await cd.ctr(['c', 'rm', id]);
  return rm.stderr;
}

/** An attached `ctr run` whose stdout we collect. */
function attached(cd: PrivateContainerd, flags: string[], image: string, id: string, cmd: string[]): { child: ChildProcess; out: () => string; done: Promise<number | null> } {
  const child = cd.ctrSpawn(['run', ...flags, image, id, ...cmd]);
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => (out += d));
  child.stderr!.resume();
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out: () => out, done };
}

const lines = (n: number, prefix = 'line') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`).join('\n') + '\n';

for (const h of HANDLERS) {
  const t = suite<Ctx>(`node-worker [${h.name}]`);
  if (h.name === 'youki' && spawnSync('youki', ['--version']).status !== 0) {
    skipWithReason(t, 'youki: worker restarts', 'youki is not installed on this host (scripts/setup.sh builds youki 0.7.0 into /opt/tsshim/peers)');
    t.run();
    continue;
  }
  let flags: string[] = [];

  t.before(async (ctx) => {
    ctx.dir = mkdtempSync('/run/tsshim-node-worker-');
    const config = join(ctx.dir, 'config.toml');
    writeFileSync(config, '[shim]\nmode = "node"\n');
    const handlerCfg = join(ctx.dir, `${h.name}.toml`);
    writeFileSync(handlerCfg, h.toml);
    flags = ['--runtime', TSSHIM, '--runtime-config-path', handlerCfg];
    ctx.savedConfig = process.env.TSSHIM_CONFIG;
    process.env.TSSHIM_CONFIG = config;
    // debug: containerd logs each event it accepts ("event forwarded"), which one scenario reads
    ctx.cd = await startContainerd({ name: `nw-${h.name}`, debug: true });
    ctx.image = await importTestImage(ctx.cd);
  });
  t.after(async (ctx) => {
    let s: NodeStatus | undefined;
    try {
      s = ctx.cd ? status(ctx.cd) : undefined;
    } catch {
      s = undefined;
    }
    await ctx.cd?.stop();
    if (s?.supervisorPid && isAlive(s.supervisorPid)) {
      process.kill(s.supervisorPid, 'SIGTERM');
      await waitFor(() => !isAlive(s!.supervisorPid!), 10_000);
    }
    if (ctx.savedConfig === undefined) delete process.env.TSSHIM_CONFIG;
    else process.env.TSSHIM_CONFIG = ctx.savedConfig;
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  t('idle: containers keep running with their pids, output written while no worker ran arrives in order, Wait answers the exit, exec and kill (137) work', async ({ cd, image }) => {
    const d = uniqueId('nw-d');
    const r = await cd.ctr(['run', '-d', ...flags, image, d, 'sleep', '300']);
    assert.is(r.exitCode, 0, r.stderr);
    const row = await taskRow(cd, d);
    assert.is(row?.status, 'RUNNING');
    const a = uniqueId('nw-a');
    // 60 lines, 50 ms apart: some are written while no worker runs.
    const run = attached(cd, flags, image, a, ['sh', '-c', 'i=0; while [ $i -lt 60 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done; exit 7']);
    assert.ok(await waitFor(() => run.out().includes('line-5\n'), 20_000), `output started: ${JSON.stringify(run.out())}`);
    const after = await killWorker(cd);
    assert.ok(after.tasks.some((x) => x.id === d), `the detached task was adopted: ${JSON.stringify(after.tasks)}`);
    assert.is(await run.done, 7, 'the attached run gets its exit status (its Wait was replayed to the new worker)');
    assert.is(run.out(), lines(60), 'every line, once, in order');
    assert.equal(await taskRow(cd, d), { pid: row!.pid, status: 'RUNNING' }, 'same pid, still running');
    const x = await cd.ctr(['task', 'exec', '--exec-id', 'after', d, 'sh', '-c', 'echo alive; exit 3']);
    assert.is(x.exitCode, 3, x.stderr);
    assert.is(x.stdout, 'alive\n');
    assert.match(await remove(cd, d), /exit with non-zero exit code 137/);
    await cd.ctr(['c', 'rm', a]);
    assert.equal(await waitNoLeftovers(cd, d, [row!.pid]), []);
  });

  t('two kills in a row: a task the new worker adopted is adopted again by the next one (same pid, exec works)', async ({ cd, image }) => {
    const id = uniqueId('nw-twice');
    assert.is((await cd.ctr(['run', '-d', ...flags, image, id, 'sleep', '300'])).exitCode, 0);
    const row = await taskRow(cd, id);
    assert.is(row?.status, 'RUNNING');
    for (const kill of [1, 2, 3]) {
      const s = await killWorker(cd);
      assert.ok(s.tasks.some((x) => x.id === id), `kill ${kill}: the task was adopted: ${JSON.stringify(s.tasks)}`);
      assert.equal(await taskRow(cd, id), { pid: row!.pid, status: 'RUNNING' }, `kill ${kill}: same pid, still running`);
    }
    const x = await cd.ctr(['task', 'exec', '--exec-id', 'after', id, 'echo', 'alive']);
    assert.is(x.stdout, 'alive\n', x.stderr);
    assert.match(await remove(cd, id), /exit with non-zero exit code 137/);
    assert.equal(await waitNoLeftovers(cd, id, [row!.pid]), []);
  });

  t('during Create: every ctr run either ran or failed cleanly; the containers that run stay served', async ({ cd, image }) => {
    const before = uniqueId('nw-pre');
    assert.is((await cd.ctr(['run', '-d', ...flags, image, before, 'sleep', '300'])).exitCode, 0);
    const id = uniqueId('nw-create');
    const s = status(cd);
    const pending = cd.ctr(['run', '-d', ...flags, image, id, 'sleep', '300'], { timeoutMs: 60_000 });
    // The moment the worker runs the backend's create for it.
    await waitFor(() => findProcesses((argv) => argv.includes('create') && argv.includes(id)).length > 0, 10_000, 5);
    process.kill(s.workerPid!, 'SIGKILL');
    const r = await pending;
    await newWorker(cd, s.workerPid!);
    const row = await taskRow(cd, id);
    if (r.exitCode === 0) {
      assert.is(row?.status, 'RUNNING', 'a Create that was answered before the kill: the task runs');
      await remove(cd, id);
    } else {
      assert.match(r.stderr, /worker stopped while Create ran|Unavailable/, r.stderr);
      await cd.ctr(['c', 'rm', id]);
    }
    assert.equal(await waitNoLeftovers(cd, id), [], 'nothing of the interrupted task left');
    assert.is((await taskRow(cd, before))?.status, 'RUNNING');
    assert.is((await cd.ctr(['task', 'exec', '--exec-id', 'x', before, 'true'])).exitCode, 0);
    await remove(cd, before);
  });

  t('during Exec: the exec is answered (ran or Unavailable); the task keeps running and execs again', async ({ cd, image }) => {
    const id = uniqueId('nw-exec');
    assert.is((await cd.ctr(['run', '-d', ...flags, image, id, 'sleep', '300'])).exitCode, 0);
    const s = status(cd);
    const pending = cd.ctr(['task', 'exec', '--exec-id', 'e1', id, 'sh', '-c', 'echo ran'], { timeoutMs: 60_000 });
    await waitFor(() => findProcesses((argv) => argv.includes('exec') && argv.includes(id)).length > 0, 10_000, 5);
    process.kill(s.workerPid!, 'SIGKILL');
    const r = await pending;
    await newWorker(cd, s.workerPid!);
    if (r.exitCode !== 0) assert.match(r.stderr, /worker stopped while|Unavailable|not found/, r.stderr);
    assert.is((await taskRow(cd, id))?.status, 'RUNNING');
    const x = await cd.ctr(['task', 'exec', '--exec-id', 'e2', id, 'echo', 'again']);
    assert.is(x.stdout, 'again\n', x.stderr);
    assert.match(await remove(cd, id), /exit with non-zero exit code 137/);
  });

  t('an event containerd has not accepted survives the worker: /tasks/exit is forwarded once containerd is back', async ({ cd, image }) => {
    const id = uniqueId('nw-ev');
    assert.is((await cd.ctr(['run', '-d', ...flags, image, id, 'sleep', '300'])).exitCode, 0);
    const row = await taskRow(cd, id);
    assert.is(row?.status, 'RUNNING');
    const s = status(cd);
    let offset = 0;
    // containerd is down: the init's /tasks/exit waits in a retry queue when the worker dies.
    await cd.restart({
      kill: true,
      whileDown: async () => {
        process.kill(row!.pid, 'SIGKILL');
        assert.ok(await waitFor(() => !isAlive(row!.pid), 10_000), 'the init is gone');
        await sleep(1000); // the worker has taken the exit and queued its event
        process.kill(s.workerPid!, 'SIGKILL');
        await newWorker(cd, s.workerPid!);
        offset = statSync(cd.logFile).size;
      },
    });
    const since = () => readFileSync(cd.logFile, 'utf8').slice(offset).split('\n');
    const forwarded = () => since().filter((l) => l.includes('event forwarded') && l.includes('topic=/tasks/exit') && l.includes(`ns=${cd.namespace}`));
    const got = await waitFor(() => forwarded().length > 0, 45_000);
    assert.ok(got, `containerd logged the /tasks/exit forwarded after its restart (log since: ${since().filter((l) => l.includes('forward')).slice(-5).join(' | ')})`);
    assert.is((await taskRow(cd, id))?.status, 'STOPPED');
    assert.is((await cd.ctr(['task', 'rm', id])).exitCode, 0);
    await cd.ctr(['c', 'rm', id]);
    assert.equal(await waitNoLeftovers(cd, id, [row!.pid]), []);
  });

  t('during a burst of 20 starts: each ctr run ran or failed; every one that ran is served afterwards', async ({ cd, image }) => {
    const ids = Array.from({ length: 20 }, () => uniqueId('nw-burst'));
    const s = status(cd);
    let succeeded = 0;
    const runs = ids.map((id) =>
      cd.ctr(['run', '-d', ...flags, image, id, 'sleep', '300'], { timeoutMs: 120_000 }).then((r) => {
        if (r.exitCode === 0) succeeded++;
        return r;
      }),
    );
    // The kill lands once 3 have started, while the others are on their way.
    await waitFor(() => succeeded >= 3, 90_000, 5);
    process.kill(s.workerPid!, 'SIGKILL');
    const results = await Promise.all(runs);
    await newWorker(cd, s.workerPid!);
    let ran = 0;
    for (const [i, id] of ids.entries()) {
      const row = await taskRow(cd, id);
      if (results[i]!.exitCode === 0) {
        ran++;
        assert.is(row?.status, 'RUNNING', `${id} ran: still running`);
        assert.is((await cd.ctr(['task', 'exec', '--exec-id', 'b', id, 'true'])).exitCode, 0, `${id} execs`);
      }
    }
    assert.ok(ran >= 3, `${ran} of 20 ran (3 had before the kill)`);
    console.log(`burst [${h.name}]: ${ran} of 20 ran, ${20 - ran} answered with an error at the kill`);
    for (const id of ids) {
      if ((await taskRow(cd, id)) !== undefined) await remove(cd, id);
      else await cd.ctr(['c', 'rm', id]);
    }
    for (const id of ids) assert.equal(await waitNoLeftovers(cd, id), [], `${id}: nothing left`);
  });

  t('during heavy output: the attached run gets its exit, lines stay in order without duplicates', async ({ cd, image }) => {
    const id = uniqueId('nw-out');
    const n = 200_000;
    const run = attached(cd, flags, image, id, ['sh', '-c', `seq 1 ${n}; exit 5`]);
    assert.ok(await waitFor(() => run.out().length > 100_000, 30_000, 5), 'output flows');
    await killWorker(cd);
    assert.is(await run.done, 5);
    const got = run.out().split('\n').filter(Boolean).map(Number);
    // Consecutive from 1 and to the end, with one exception allowed: the bytes the killed worker
    // had read but not yet written are an arbitrary range (ADR 0018, 0020), so one line may be cut
    // and glued to a later one there. Everything before and after that point is exact.
    const breaks: number[] = [];
    for (let i = 1; i < got.length; i++) if (got[i] !== got[i - 1]! + 1) breaks.push(i);
    assert.is(got[0], 1, 'the first line arrives');
    assert.is(got[got.length - 1], n, 'the last line arrives');
    assert.ok(breaks.length <= 2, `one cut at the kill at most, found breaks at ${breaks.map((i) => `${got[i - 1]}->${got[i]}`).join(', ')}`);
    let lostBytes = 0;
    if (breaks.length > 0) {
      const last = got[breaks[0]! - 1]!; // the last whole line before the cut
      const resume = got[breaks[breaks.length - 1]!]!; // the first whole line after it
      assert.ok(resume > last, `after the cut the output goes on forward (${last} -> ${resume})`);
      for (let k = last + 1; k < resume; k++) lostBytes += String(k).length + 1;
    }
    console.log(`heavy output [${h.name}]: ${got.length} of ${n} lines arrived; about ${lostBytes} bytes lost at the kill (what the killed worker held)`);
    assert.ok(lostBytes <= 256 * 1024, `lost ${lostBytes} bytes: more than the copy buffers a worker holds`);
    await cd.ctr(['c', 'rm', id]);
  });

  t('tsshim node reload (upgrade) while 10 containers run: all keep running, same pids, exec and kill work', async ({ cd, image }) => {
    const ids = Array.from({ length: 10 }, () => uniqueId('nw-up'));
    for (const id of ids) assert.is((await cd.ctr(['run', '-d', ...flags, image, id, 'sleep', '300'])).exitCode, 0);
    const pids = new Map<string, number>();
    for (const id of ids) pids.set(id, (await taskRow(cd, id))!.pid);
    const before = status(cd);
    const r = spawnSync(TSSHIM_CLI, ['node', 'reload', '--json', '--address', cd.address], { encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { oldWorkerPid: number; workerPid: number };
    assert.is(j.oldWorkerPid, before.workerPid);
    assert.is.not(j.workerPid, before.workerPid);
    await sleep(200);
    for (const id of ids) {
      assert.equal(await taskRow(cd, id), { pid: pids.get(id)!, status: 'RUNNING' }, id);
      assert.is((await cd.ctr(['task', 'exec', '--exec-id', 'u', id, 'true'])).exitCode, 0);
    }
    for (const id of ids) assert.match(await remove(cd, id), /exit with non-zero exit code 137/);
  });

  t.run();
}
