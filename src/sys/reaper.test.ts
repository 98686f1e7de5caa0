/**
 * Reaper against real processes (we are root, but nothing here needs it).
 * Run: node dist/src/sys/reaper.test.js
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { reaper, isLibuvChild, type ExitEvent } from './reaper.js';
import { childPids, isChildSubreaper, SysError } from './libc.js';

// Every exit the reaper reports during this file, by pid.
const seen = new Map<number, ExitEvent[]>();
reaper.on('exit', (ev) => {
  const list = seen.get(ev.pid) ?? [];
  list.push(ev);
  seen.set(ev.pid, list);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitForExit(pid: number, timeoutMs = 5000): Promise<ExitEvent> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const list = seen.get(pid);
    if (list && list.length > 0) return list[0]!;
    await sleep(5);
  }
  throw new Error(`no exit event for pid ${pid} within ${timeoutMs} ms`);
}

function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/** Busy-wait (event loop blocked on purpose) until pid is a zombie. */
function blockUntilZombie(pid: number, timeoutMs = 3000): void {
  const deadline = Date.now() + timeoutMs;
  while (procState(pid) !== 'Z') {
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not become a zombie (state ${procState(pid)})`);
  }
}

test('start() makes us a child subreaper, is idempotent, installs one SIGCHLD listener', () => {
  const before = process.listenerCount('SIGCHLD');
  reaper.start();
  reaper.start();
  assert.ok(isChildSubreaper());
  assert.ok(reaper.isStarted);
  assert.is(process.listenerCount('SIGCHLD'), before + 1);
});

test('an orphan re-parented to us is reaped with its exit status (7)', async () => {
  const r = await reaper.run('sh', ['-c', '(sleep 0.2; exit 7) </dev/null >/dev/null 2>&1 & echo $$ $!']);
  assert.is(r.exitCode, 0);
  const [shPid, orphan] = r.stdout.split(' ').map(Number) as [number, number];
  assert.ok(orphan > 0 && orphan !== shPid);
  const ev = await waitForExit(orphan);
  assert.is(ev.status, 7);
  assert.ok(ev.exitedAt instanceof Date);
  assert.not.ok(seen.has(shPid), 'the sh run() spawned must not be reported by the reaper');
  assert.is(seen.get(orphan)!.length, 1);
});

test('signalled orphans: SIGKILL -> 137, SIGTERM -> 143', async () => {
  const a = await reaper.run('sh', ['-c', 'sleep 30 </dev/null >/dev/null 2>&1 & echo $!']);
  const b = await reaper.run('sh', ['-c', 'sleep 30 </dev/null >/dev/null 2>&1 & echo $!']);
  const pa = Number(a.stdout);
  const pb = Number(b.stdout);
  assert.ok(childPids().includes(pa), 'orphan must now be our child');
  process.kill(pa, 'SIGKILL');
  process.kill(pb, 'SIGTERM');
  assert.is((await waitForExit(pa)).status, 137);
  assert.is((await waitForExit(pb)).status, 143);
});

test('an orphan that kills itself (kill -9 $$ in a grandchild shell) -> 137', async () => {
  const r = await reaper.run('sh', ['-c', 'sh -c \'sleep 0.1; kill -9 $$\' </dev/null >/dev/null 2>&1 & echo $!']);
  assert.is((await waitForExit(Number(r.stdout))).status, 137);
});

test('50 runs interleaved with 50 orphans: true exit codes, each orphan reported once, no zombies', async () => {
  const runs: Promise<{ i: number; code: number }>[] = [];
  const orphanRuns: Promise<number>[] = [];
  for (let i = 0; i < 50; i++) {
    runs.push(reaper.run('sh', ['-c', `exit ${i + 1}`]).then((r) => ({ i, code: r.exitCode })));
    // orphan exits spread over 30..120 ms, overlapping the runs; the delay also makes
    // sure sh has exited (so the orphan is ours) before the orphan does
    const delay = 0.03 + (i % 10) * 0.01;
    orphanRuns.push(
      reaper
        .run('sh', ['-c', `(sleep ${delay}; exit 5) </dev/null >/dev/null 2>&1 & echo $!`])
        .then((r) => Number(r.stdout)),
    );
  }
  const results = await Promise.all(runs);
  for (const { i, code } of results) assert.is(code, i + 1, `run ${i} must report its own exit code`);
  const orphans = await Promise.all(orphanRuns);
  assert.is(new Set(orphans).size, 50);
  for (const pid of orphans) {
    const ev = await waitForExit(pid);
    assert.is(ev.status, 5);
  }
  await sleep(100); // any duplicate report would have arrived by now
  for (const pid of orphans) assert.is(seen.get(pid)!.length, 1, `orphan ${pid} reported exactly once`);
  const zombies = childPids().filter((p) => procState(p) === 'Z');
  assert.equal(zombies, [], 'no zombie children left');
});

test('a libuv child that is already a zombie is never stolen by a sweep (run, execa, child_process.spawn)', async () => {
  // reaper.run
  const p1 = reaper.run('sh', ['-c', 'exit 11']);
  // execa directly, and plain child_process.spawn: registered by the ChildProcess.prototype.spawn hook
  const sub = execa('sh', ['-c', 'exit 12'], { reject: false });
  const cp = spawn('sh', ['-c', 'exit 13'], { stdio: 'ignore' });
  const cpExit = new Promise<number | null>((res) => cp.on('exit', (code) => res(code)));
  for (const pid of [sub.pid!, cp.pid!]) {
    assert.ok(isLibuvChild(pid), `pid ${pid} registered`);
    blockUntilZombie(pid);
  }
  // All are zombies now and libuv has not run yet: a waitpid(-1) reaper would steal them here.
  const stolen = reaper.sweep();
  assert.equal(stolen.filter((e) => e.pid === sub.pid || e.pid === cp.pid), []);
  assert.is((await p1).exitCode, 11);
  assert.is((await sub).exitCode, 12);
  assert.is(await cpExit, 13);
  assert.not.ok(isLibuvChild(cp.pid!), 'unregistered after exit');
});

test('spawnTracked: long-running child keeps its own exit status', async () => {
  const cp = reaper.spawnTracked('sh', ['-c', 'sleep 0.1; exit 4'], { stdio: 'ignore' });
  assert.ok(isLibuvChild(cp.pid!));
  const code = await new Promise<number | null>((res) => cp.on('exit', (c) => res(c)));
  assert.is(code, 4);
  assert.not.ok(seen.has(cp.pid!));
});

test('run(): stdout/stderr/input/env/cwd, signal and timeout reporting', async () => {
  const r = await reaper.run('sh', ['-c', 'cat; echo err >&2; echo "$FOO"; pwd; exit 2'], {
    input: 'in\n',
    env: { FOO: 'bar' },
    cwd: '/tmp',
  });
  assert.is(r.exitCode, 2);
  assert.is(r.failed, true);
  assert.is(r.stdout, 'in\nbar\n/tmp');
  assert.is(r.stderr, 'err');
  const k = await reaper.run('sh', ['-c', 'kill -TERM $$']);
  assert.is(k.signal, 'SIGTERM');
  assert.is(k.exitCode, 143);
  const t = await reaper.run('sleep', ['5'], { timeoutMs: 100 });
  assert.is(t.timedOut, true);
  assert.is(t.signal, 'SIGTERM');
  const ok = await reaper.run('true', []);
  assert.is(ok.exitCode, 0);
  assert.is(ok.failed, false);
});

test('spawn failure (ENOENT) throws and names the missing binary', async () => {
  try {
    await reaper.run('tsshim-no-such-binary', ['x']);
    assert.unreachable('must throw');
  } catch (e) {
    assert.instance(e, SysError);
    assert.is((e as SysError).code, 'ENOENT');
    assert.match((e as Error).message, 'tsshim-no-such-binary');
  }
  try {
    await reaper.run('/nonexistent/dir/runc', []);
    assert.unreachable('must throw');
  } catch (e) {
    assert.match((e as Error).message, '/nonexistent/dir/runc');
  }
  try {
    await reaper.run('sh', ['-c', 'true'], { cwd: '/nonexistent-cwd' });
    assert.unreachable('must throw');
  } catch (e) {
    assert.match((e as Error).message, '/nonexistent-cwd');
  }
});

test('a throwing exit listener loses no exit: every reaped exit reaches every listener, the error surfaces afterwards', async () => {
  const got: number[] = [];
  let thrown = 0;
  const bad = (): void => {
    thrown++;
    throw new Error('listener failure (expected by the test)');
  };
  const good = (ev: ExitEvent): void => void got.push(ev.pid);
  const uncaught: Error[] = [];
  const onUncaught = (e: Error): void => void uncaught.push(e);
  process.on('uncaughtException', onUncaught);
  reaper.prependListener('exit', bad);
  reaper.on('exit', good);
  try {
    const r = await reaper.run('sh', ['-c', 'for i in 1 2 3 4 5 6; do (sleep 0.2; exit $i) </dev/null >/dev/null 2>&1 & echo $!; done']);
    const pids = r.stdout.split('\n').map(Number);
    assert.is(pids.length, 6);
    for (const pid of pids) await waitForExit(pid);
    await sleep(20);
    for (const pid of pids) assert.ok(got.includes(pid), `exit of ${pid} delivered to the second listener`);
    assert.ok(thrown >= 6);
    assert.ok(uncaught.length >= 1 && /listener failure/.test(uncaught[0]!.message), 'the error surfaced');
  } finally {
    reaper.off('exit', bad);
    reaper.off('exit', good);
    process.off('uncaughtException', onUncaught);
  }
});

test('works without /proc/*/task/*/children (kernel without CONFIG_PROC_CHILDREN): a tmpfs hides them in a private mount namespace', async () => {
  const script = `
    import { existsSync, readFileSync } from 'node:fs';
    import { reaper } from ${JSON.stringify(new URL('./reaper.js', import.meta.url).href)};
    import { childPids, mount } from ${JSON.stringify(new URL('./libc.js', import.meta.url).href)};
    mount('tmpfs', '/proc/' + process.pid + '/task', 'tmpfs', 0, 'size=4k');
    const exits = {};
    reaper.on('exit', (e) => (exits[e.pid] = e.status));
    reaper.start();
    const r = await reaper.run('sh', ['-c', 'for i in 1 2 3 4 5; do (sleep 0.3; exit $i) </dev/null >/dev/null 2>&1 & echo $!; done']);
    const pids = r.stdout.split('\\n').map(Number);
    const probe = { childrenFile: existsSync('/proc/self/task/' + process.pid + '/children'), childPids: childPids().length };
    const deadline = Date.now() + 10000;
    while (pids.some((p) => !(p in exits)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const zombies = pids.filter((p) => { try { return /\\) Z /.test(readFileSync('/proc/' + p + '/stat', 'utf8')); } catch { return false; } });
    console.log(JSON.stringify({ probe, pids, exits, zombies }));
  `;
  const r = await execa('unshare', ['-m', '--propagation', 'private', process.execPath, '--input-type=module', '-e', script], { reject: false });
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { probe: { childrenFile: boolean; childPids: number }; pids: number[]; exits: Record<string, number>; zombies: number[] };
  assert.equal(out.probe, { childrenFile: false, childPids: 0 }, 'the children files are gone while 5 orphans are alive');
  assert.equal(
    out.pids.map((p) => out.exits[p]),
    [1, 2, 3, 4, 5],
    'every orphan reaped with its own status',
  );
  assert.equal(out.zombies, []);
});

test('stop() removes the SIGCHLD listener; orphans are then left for a later start()', async () => {
  const before = process.listenerCount('SIGCHLD');
  reaper.stop();
  assert.is(process.listenerCount('SIGCHLD'), before - 1);
  const r = await reaper.run('sh', ['-c', '(sleep 0.05; exit 9) </dev/null >/dev/null 2>&1 & echo $!']);
  const pid = Number(r.stdout);
  blockUntilZombie(pid);
  await sleep(50);
  assert.not.ok(seen.has(pid), 'not reaped while stopped');
  reaper.start(); // initial sweep collects it
  assert.is((await waitForExit(pid)).status, 9);
  reaper.stop();
});

test.run();
