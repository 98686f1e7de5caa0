// Soak sections with faults, through a private containerd 1.6, tsshim and runc-v2 in the same run:
//   restart      containerd SIGKILLed and restarted while a Start, then an exec's start, is in
//                the backend (a runc wrapper that holds that subcommand): the task ends consistent
//                (running, then killed: exit 137 delivered as /tasks/exit; the exec's own exit 7
//                delivered), nothing left.
//   kill-create  the backend SIGKILLed in the middle of `create` (the wrapper kills its runc once
//                runc's init exists, then itself), in a group whose first task runs: a clear
//                error, nothing left (process, cgroup, runc state, mounts, bundle), the group's
//                shim still serves.
//   hang         a backend that hangs in `create` (runc creates, then the wrapper sleeps): tsshim
//                bounds it (handler config timeout_ms, 20 s with --short, else the 60 s default)
//                and answers a clear error, and the other task of its group is served meanwhile;
//                runc-v2 is watched for as long plus 15 s, then its hung backend is killed.
//                The other task is asked through containerd (Get: its shim's State) meanwhile.
// Only tsshim's failures fail the soak; runc-v2's figures are the reference.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SoakResult, SoakSection } from './soak.js';
import { uniqueId } from '../test/helpers/containerd.js';
import { connectContainerd, Status } from '../src/client/containerd.js';
import { sleep, waitFor } from '../test/helpers/proc.js';
import { bundleDir, collectEvents, taskStatus, type EventLine } from '../test/helpers/tasks.js';
import {
  backendFlags,
  errorText,
  groupFlags,
  KINDS,
  removeContainer,
  round1,
  runtimeOf,
  shimPidOf,
  snapshot,
  waitContainerGone,
  withContainerd,
  writeWrapper,
  type Kind,
  type SoakContainerd,
} from './soak-env.js';

type Outcome = { figures: Record<string, unknown>; failures: string[] };

/** Per kind; tsshim's failures fail the section, runc-v2's are reported as `problems`. */
async function perKind(fn: (kind: Kind) => Promise<Outcome>): Promise<SoakResult> {
  const figures: Record<string, unknown> = {};
  const failures: string[] = [];
  for (const kind of KINDS) {
    let r: Outcome;
    try {
      r = await fn(kind);
    } catch (e) {
      r = { figures: {}, failures: [`threw: ${(e as Error).stack ?? String(e)}`] };
    }
    figures[kind] = kind === 'tsshim' || r.failures.length === 0 ? r.figures : { ...r.figures, problems: r.failures };
    if (kind === 'tsshim') failures.push(...r.failures.map((f) => `tsshim: ${f}`));
  }
  return { figures, failures };
}

const HOLD_S = 3; // how long the wrapper holds the subcommand after touching its marker

/** Kill the init (SIGKILL), wait for it through containerd's Wait, check /tasks/exit; delete; leftovers. */
async function endTask(env: SoakContainerd, id: string, failures: string[]): Promise<Record<string, unknown>> {
  const { cd } = env;
  const ev = collectEvents(cd);
  await ev.ready;
  const k = await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 60_000 });
  if (k.exitCode !== 0) failures.push(`kill after the restart: ${k.stderr.trim()}`);
  const stopped = await waitFor(async () => (await taskStatus(cd, id))?.status === 'STOPPED', 60_000, 200);
  const isInitExit = (l: EventLine) => l.topic === '/tasks/exit' && l.body.container_id === id && (l.body.id === id || l.body.id === undefined);
  const exitEvent = await waitFor(() => ev.lines().some(isInitExit), 30_000, 100);
  const exit = (await ev.stop()).find(isInitExit);
  const client = await connectContainerd(cd.address, cd.namespace);
  const del = await client.tasks.delete({ containerId: id }, { timeoutMs: 60_000 }).then(
    (r) => ({ exitCode: 0, stderr: '', deleted: r.exitStatus }),
    (e: Error) => ({ exitCode: 1, stderr: e.message, deleted: undefined }),
  );
  client.close();
  const deleted = del.deleted;
  if (!stopped) failures.push('task not STOPPED after SIGKILL');
  if (!exitEvent || exit?.body.exit_status !== 137) failures.push(`init's /tasks/exit: ${exit ? `exit_status ${String(exit.body.exit_status)}` : 'not seen'}`);
  if (del.exitCode !== 0) failures.push(`task delete: ${del.stderr.trim()}`);
  else if (deleted !== 137) failures.push(`task delete answered exit status ${deleted}`);
  await cd.ctr(['containers', 'rm', id], { timeoutMs: 60_000 });
  const left = await waitContainerGone(cd, id);
  for (const l of left) failures.push(`left behind: ${l}`);
  return { stoppedAfterKill: stopped, initExitEvent: exit?.body.exit_status ?? null, deleteExitStatus: deleted === undefined ? null : Number(deleted), leftovers: left.length };
}

/** containerd SIGKILLed while the wrapper holds `sub`; returns when containerd answers again. */
async function crashContainerdWhenHeld(env: SoakContainerd, mark: string, failures: string[]): Promise<number> {
  const held = await waitFor(() => existsSync(mark), 120_000, 50);
  if (!held) failures.push('the wrapper never got the call');
  const t0 = Date.now();
  await env.cd.restart({ kill: true });
  return (Date.now() - t0) / 1000;
}

async function restartDuringStart(env: SoakContainerd, kind: Kind): Promise<Outcome> {
  const { cd, image } = env;
  const failures: string[] = [];
  const w = writeWrapper(env, `start-${kind}`, 'start', `  touch "$MARK"; sleep ${HOLD_S}`);
  const id = uniqueId('rs');
  const running = cd.ctr(['run', '-d', ...backendFlags(env, kind, w.path), image, id, 'sleep', '3600'], { timeoutMs: 180_000 }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
  const restartSeconds = await crashContainerdWhenHeld(env, w.mark, failures);
  const run = await running;
  // runc start goes on in the shim: the task must come out running (or still created, then startable)
  let st = await taskStatus(cd, id);
  await waitFor(async () => {
    st = await taskStatus(cd, id);
    return st?.status === 'RUNNING';
  }, 30_000, 200);
  const statusAfterRestart = st?.status ?? 'absent';
  if (statusAfterRestart === 'CREATED') {
    const client = await connectContainerd(cd.address, cd.namespace);
    try {
      await client.tasks.start({ containerId: id }, { timeoutMs: 60_000 });
    } catch (e) {
      failures.push(`created task could not be started after the restart: ${(e as Error).message}`);
    } finally {
      client.close();
    }
    st = await taskStatus(cd, id);
  } else if (statusAfterRestart !== 'RUNNING') failures.push(`task ${statusAfterRestart} after the restart`);
  const pidAlive = st !== undefined && st.pid > 0 && existsSync(`/proc/${st.pid}`);
  if (statusAfterRestart === 'RUNNING' && !pidAlive) failures.push(`task RUNNING but its pid ${st?.pid} is gone`);
  const end = statusAfterRestart === 'absent' ? {} : await endTask(env, id, failures);
  if (statusAfterRestart === 'absent') await removeContainer(cd, id);
  return {
    figures: { ctrRunExit: run.exitCode, ctrRunError: errorText(run.stderr, cd, [id]), restartSeconds: round1(restartSeconds), statusAfterRestart, pidAlive, ...end },
    failures,
  };
}

async function restartDuringExec(env: SoakContainerd, kind: Kind): Promise<Outcome> {
  const { cd, image } = env;
  const failures: string[] = [];
  const w = writeWrapper(env, `exec-${kind}`, 'exec', `  touch "$MARK"; sleep ${HOLD_S}`);
  const id = uniqueId('rx');
  const r = await cd.ctr(['run', '-d', ...backendFlags(env, kind, w.path), image, id, 'sleep', '3600'], { timeoutMs: 120_000 });
  if (r.exitCode !== 0) return { figures: {}, failures: [`ctr run: ${r.stderr.trim()}`] };
  // The exec ends with 7 once /tmp/go exists in the container: after containerd is back and the
  // event subscriber listens, whatever the machine's speed.
  const go = join(bundleDir(cd, id), 'rootfs', 'tmp', 'go');
  const execP = cd.ctr(['task', 'exec', '--exec-id', 'ex1', id, 'sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.2; done; exit 7'], { timeoutMs: 180_000 }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
  const restartSeconds = await crashContainerdWhenHeld(env, w.mark, failures);
  const ev = collectEvents(cd);
  await ev.ready;
  // the exec started in the backend while containerd was down: it must be listed as running
  const listed = await waitFor(async () => {
    const ps = await cd.ctr(['task', 'ps', id], { timeoutMs: 30_000 });
    return ps.stdout.split('\n').filter((l) => /^\s*\d+/.test(l)).length >= 2;
  }, 30_000, 200);
  const statusAfterRestart = (await taskStatus(cd, id))?.status ?? 'absent';
  writeFileSync(go, '');
  const seen = await waitFor(() => ev.lines().some((l) => l.topic === '/tasks/exit' && l.body.container_id === id && l.body.id === 'ex1'), 60_000, 100);
  const lines = await ev.stop();
  const exec = await execP;
  const execExit = lines.find((l) => l.topic === '/tasks/exit' && l.body.container_id === id && l.body.id === 'ex1');
  if (statusAfterRestart !== 'RUNNING') failures.push(`task ${statusAfterRestart} after the restart`);
  // consistent: it runs (listed) and its exit 7 is delivered, or it never started (the canceled
  // Start killed `runc exec`, as runc-v2 does) and no exit is claimed for it
  const execOutcome = listed && seen && execExit?.body.exit_status === 7 ? 'ran; its exit 7 delivered' : !listed && !seen ? 'never started (Start canceled with its caller)' : 'inconsistent';
  if (execOutcome === 'inconsistent') failures.push(`exec listed ${listed}, its /tasks/exit: ${execExit ? `exit_status ${String(execExit.body.exit_status)}` : 'not seen'}`);
  const shim = shimPidOf(cd, id);
  const zombies = snapshot(shim, cd.dir).zombies;
  if (zombies > 0) failures.push(`${zombies} zombie(s) under the shim`);
  const end = await endTask(env, id, failures);
  return {
    figures: {
      ctrExecExit: exec.exitCode,
      ctrExecError: errorText(exec.stderr, cd, [id]),
      restartSeconds: round1(restartSeconds),
      statusAfterRestart,
      execOutcome,
      execListedAfterRestart: listed,
      execExitEvent: execExit?.body.exit_status ?? null,
      shimZombies: zombies,
      ...end,
    },
    failures,
  };
}

export const restartSection: SoakSection = {
  name: 'restart',
  description: 'containerd SIGKILLed and restarted during Start and during an exec: consistent task, exits delivered',
  async run() {
    return withContainerd('soak-restart', async (env) => {
      const start = await perKind((k) => restartDuringStart(env, k));
      const exec = await perKind((k) => restartDuringExec(env, k));
      return {
        figures: { duringStart: start.figures, duringExec: exec.figures },
        failures: [...start.failures.map((f) => `during Start: ${f}`), ...exec.failures.map((f) => `during exec: ${f}`)],
      };
    });
  },
};

/** A running leader in a fresh group: the group's shim pid and its fd/child snapshot. */
async function groupLeader(env: SoakContainerd, kind: Kind, group: string): Promise<{ leader: string; shim: number }> {
  const leader = `${group}-lead`;
  const r = await env.cd.ctr(['run', '-d', '--runtime', runtimeOf(kind), ...groupFlags(group), env.image, leader, 'sleep', '3600'], { timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new Error(`ctr run ${leader}: ${r.stderr.trim()}`);
  return { leader, shim: shimPidOf(env.cd, leader) };
}

async function leaderServes(env: SoakContainerd, leader: string, tag: string): Promise<boolean> {
  const r = await env.cd.ctr(['task', 'exec', '--exec-id', tag, leader, 'echo', tag], { timeoutMs: 120_000 });
  return r.exitCode === 0 && r.stdout.trim() === tag;
}

async function killDuringCreate(env: SoakContainerd, kind: Kind): Promise<Outcome> {
  const { cd, image } = env;
  const failures: string[] = [];
  // runc itself is SIGKILLed in the middle of `create`: the wrapper adds a createRuntime hook to
  // the bundle's config.json (runc runs it once the container's init and namespaces exist, before
  // the pid file) whose shell SIGKILLs its parent, the runc create process (the wrapper exec'd).
  const sed = join(env.dir, 'kill-hook.sed');
  writeFileSync(sed, '1s|^{|{"hooks":{"createRuntime":[{"path":"/bin/sh","args":["sh","-c","kill -9 $PPID"]}]},|\n');
  const w = writeWrapper(
    env,
    `killcreate-${kind}`,
    'create',
    [
      '  b=""; prev=""; for a in "$@"; do [ "$prev" = "--bundle" ] && b="$a"; prev="$a"; done',
      `  sed -i -f ${sed} "$b/config.json" && echo hooked > "$MARK"`,
    ].join('\n'),
  );
  const group = uniqueId('gk');
  const { leader, shim } = await groupLeader(env, kind, group);
  try {
    await sleep(1000);
    const before = snapshot(shim, cd.dir);
    const id = `${group}-victim`;
    const r = await cd.ctr(['run', '-d', ...backendFlags(env, kind, w.path), ...groupFlags(group), image, id, 'sleep', '3600'], { timeoutMs: 180_000 });
    const when = existsSync(w.mark) ? readFileSync(w.mark, 'utf8').trim() : 'never called';
    await cd.ctr(['task', 'delete', '-f', id], { timeoutMs: 60_000 });
    await cd.ctr(['containers', 'rm', id], { timeoutMs: 60_000 });
    const left = await waitContainerGone(cd, id);
    const serves = await leaderServes(env, leader, 'after-kill');
    const after = snapshot(shim, cd.dir);
    const error = errorText(r.stderr, cd, [id]);
    if (r.exitCode === 0) failures.push('ctr run succeeded with its backend killed');
    if (!/kill|signal/i.test(error)) failures.push(`the error does not say the backend was killed: ${error}`);
    for (const l of left) failures.push(`left behind: ${l}`);
    if (!serves) failures.push('the group shim no longer serves its other task');
    if (after.zombies > 0) failures.push(`${after.zombies} zombie(s) under the shim`);
    if (after.children > before.children) failures.push(`shim children ${before.children} -> ${after.children}`);
    return {
      figures: { backendKilled: when === 'hooked' ? 'by its createRuntime hook (init and namespaces made, no pid file yet)' : when, ctrRunExit: r.exitCode, error, leftovers: left, groupShimServes: serves, shimBefore: before, shimAfter: after },
      failures,
    };
  } finally {
    await removeContainer(cd, leader);
  }
}

export const killCreateSection: SoakSection = {
  name: 'kill-create',
  description: 'the backend SIGKILLed during create: clear error, nothing left, the group shim serves on',
  async run() {
    return withContainerd('soak-killc', (env) => perKind((k) => killDuringCreate(env, k)));
  },
};

async function hangInCreate(env: SoakContainerd, kind: Kind, tsshimBoundMs: number | undefined): Promise<Outcome> {
  const { cd, image } = env;
  const failures: string[] = [];
  const bound = tsshimBoundMs ?? 60_000;
  // runc-v2 has no bound: watched 15 s past tsshim's. tsshim is only called unbounded when its
  // bound is 2 minutes past (never a duration check: a loaded machine may be slow, not hung).
  const watchMs = bound + (kind === 'tsshim' ? 120_000 : 15_000);
  // runc creates the container, then the backend never answers
  const w = writeWrapper(env, `hang-${kind}`, 'create', '  "$RUNC" "$@" || exit $?\n  echo $$ > "$MARK"\n  exec sleep 3600');
  const group = uniqueId('gh');
  const { leader, shim } = await groupLeader(env, kind, group);
  try {
    const id = `${group}-hung`;
    const client = await connectContainerd(cd.address, cd.namespace);
    const t0 = Date.now();
    let answeredAt = 0;
    const run = cd
      .ctr(['run', '-d', ...backendFlags(env, kind, w.path, tsshimBoundMs === undefined ? '' : `timeout_ms = ${tsshimBoundMs}\n`), ...groupFlags(group), image, id, 'sleep', '3600'], { timeoutMs: watchMs + 120_000 })
      .catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }))
      .finally(() => (answeredAt = Date.now()));
    const hung = await waitFor(() => existsSync(w.mark) || answeredAt > 0, 120_000, 50);
    // the other task of the group, asked one call at a time while the create hangs
    let psAnswered = 0;
    let psFailed = 0;
    let firstCallError: string | undefined;
    let released = false;
    while (answeredAt === 0) {
      if (Date.now() - t0 > watchMs) {
        // runc-v2 has no bound of its own: end the hung backend so its Create returns
        const pid = hungBackend(w.mark);
        if (pid) process.kill(pid, 'SIGKILL');
        released = true;
        await Promise.race([run, sleep(30_000)]);
        break;
      }
      // containerd's Get of the other task: its shim's State
      const ps = client.tasks.get({ containerId: leader }).then(
        (g) => {
          if (g.process?.status === Status.RUNNING) return true;
          firstCallError ??= `answered with status ${Status[g.process?.status ?? Status.UNKNOWN] ?? g.process?.status}`;
          return false;
        },
        (e: Error) => {
          firstCallError ??= e.message.slice(0, 200);
          return false;
        },
      );
      const got = await Promise.race([ps, run.then(() => undefined)]);
      if (got === undefined) break; // create answered first
      if (answeredAt === 0) got ? psAnswered++ : psFailed++;
      await sleep(250);
    }
    const r = await run;
    client.close();
    const createSeconds = ((answeredAt || Date.now()) - t0) / 1000;
    await cd.ctr(['task', 'delete', '-f', id], { timeoutMs: 60_000 });
    await cd.ctr(['containers', 'rm', id], { timeoutMs: 60_000 });
    const left = await waitContainerGone(cd, id);
    const stray = hungBackend(w.mark) ? 1 : 0;
    const serves = await leaderServes(env, leader, 'after-hang');
    const after = snapshot(shim, cd.dir);
    const error = errorText(r.stderr, cd, [id]);
    if (kind === 'tsshim') {
      if (!hung) failures.push('the wrapper never hung');
      if (released) failures.push(`Create did not answer within ${watchMs / 1000} s`);
      if (r.exitCode === 0) failures.push('ctr run succeeded with its backend hung');
      if (!/did not finish within/.test(error)) failures.push(`the error does not name the bound: ${error}`);
      if (psAnswered === 0) failures.push("no State of the group's other task was answered while the create hung");
      if (psFailed > 0) failures.push(`${psFailed} call(s) for the group's other task failed while the create hung`);
      for (const l of left) failures.push(`left behind: ${l}`);
      if (stray > 0) failures.push('the hung backend process is still alive');
      if (!serves) failures.push('the group shim no longer serves its other task');
      if (after.zombies > 0) failures.push(`${after.zombies} zombie(s) under the shim`);
    }
    return {
      figures: {
        bound: kind === 'tsshim' ? `${bound / 1000} s (${tsshimBoundMs === undefined ? 'default' : 'handler config timeout_ms'})` : 'none',
        createAnsweredAfterSeconds: released ? null : round1(createSeconds),
        releasedByKillingTheBackendAfterSeconds: released ? round1(watchMs / 1000) : null,
        error,
        otherTaskCallsDuringHang: { answered: psAnswered, failed: psFailed, ...(firstCallError ? { firstError: firstCallError } : {}) },
        leftovers: left,
        hungBackendAlive: stray > 0,
        groupShimServesAfter: serves,
        shimZombies: after.zombies,
      },
      failures,
    };
  } finally {
    await removeContainer(cd, leader);
  }
}

/** The hung backend (the wrapper's shell exec'd into `sleep 3600`, its pid in the marker), while it lives. */
function hungBackend(mark: string): number | undefined {
  try {
    const pid = Number(readFileSync(mark, 'utf8').trim());
    return pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'sleep\x003600\x00' ? pid : undefined;
  } catch {
    return undefined;
  }
}

export const hangSection: SoakSection = {
  name: 'hang',
  description: 'a backend that hangs in create: bounded, clear error, the group shim serves its other task meanwhile',
  async run({ short }) {
    return withContainerd('soak-hang', (env) => perKind((k) => hangInCreate(env, k, short ? 20_000 : undefined)));
  },
};
