// Cleanup, shim death, containerd restart, log URIs, concurrent waits, host pids, shim grouping.
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TSSHIM, bundleDir, leftovers, shimBinaryOf, shimDaemons, shimPids, waitNoLeftovers } from '../../test/helpers/tasks.js';
import { isAlive } from '../../test/helpers/proc.js';
import type { Json, Scenario, ScenarioContext } from '../types.js';
import { cgroupOf, ctrMessage, isNodeNamespaceSocket, ok, runSleeper, servingDaemons, sleep, waitFor, waitStatus } from './util.js';

/** A leftovers() line without ids and paths: `bundle`, `mount`, `runtime state`, `process`, `shim process (<binary>)`. */
function describeLeftover(line: string): string {
  const shim = /^shim process (\d+)$/.exec(line);
  if (shim) {
    let bin = '?';
    try {
      const argv = readFileSync(`/proc/${shim[1]}/cmdline`, 'utf8').split('\0');
      bin = (argv.find((a) => /containerd-shim-/.test(a)) ?? argv[0] ?? '?').split('/').pop()!;
    } catch {
      bin = 'exited';
    }
    return `shim process (${bin})`;
  }
  return line.split(' ').slice(0, -1).join(' ') || line;
}

/** Leftovers as kinds, plus what the helpers do not look at (runsc state, shim socket, cgroup). */
function leftoverKinds(ctx: ScenarioContext, id: string, pids: number[], extra: { socket?: string; cgroup?: string }): string[] {
  const out = leftovers(ctx.cd, id, pids).map(describeLeftover);
  const runsc = join('/run/containerd/runsc', ctx.cd.namespace);
  try {
    if (readdirSync(runsc).some((f) => f.startsWith(id + '_') || f === id)) out.push('runsc state');
  } catch {
    /* no runsc root */
  }
  if (extra.socket && existsSync(extra.socket)) out.push('shim socket');
  if (extra.cgroup && existsSync(`/sys/fs/cgroup/memory${extra.cgroup}`)) out.push('memory cgroup');
  return out.sort();
}

function socketOf(ctx: ScenarioContext, id: string): string | undefined {
  try {
    return readFileSync(join(bundleDir(ctx.cd, id), 'address'), 'utf8').trim().replace(/^unix:\/\//, '');
  } catch {
    return undefined;
  }
}

export const robustnessScenarios: Scenario[] = [
  {
    id: 'cleanup-after-rm',
    group: 'cleanup',
    title: 'kill, `ctr task rm`, `ctr c rm`: no process, mount, shim socket, runtime state, bundle or cgroup left',
    async run(ctx) {
      const id = ctx.uniqueId('clean');
      const pid = await runSleeper(ctx, id);
      // In node mode the socket is the namespace's, which the node daemon serves on (ADR 0018).
      const taskSocket = socketOf(ctx, id);
      const socket = isNodeNamespaceSocket(ctx, taskSocket) ? undefined : taskSocket;
      if (socket !== taskSocket) ctx.note('nodeSocket', `${taskSocket}: the namespace's socket of the node daemon, not this task's`);
      const cgroup = cgroupOf(pid, 'memory');
      const shims = shimPids(ctx.cd, id);
      ctx.note('socket', socket ?? null);
      ctx.note('cgroup', cgroup ?? null);
      ok(await ctx.ctr.raw(['task', 'kill', '-s', 'SIGKILL', id]), 'kill');
      await waitStatus(ctx, id, 'STOPPED');
      const rm = await ctx.ctr.raw(['task', 'rm', id]);
      const crm = await ctx.ctr.raw(['containers', 'rm', id]);
      await waitNoLeftovers(ctx.cd, id, [pid, ...shims]);
      await waitFor(() => leftoverKinds(ctx, id, [pid, ...shims], { socket, cgroup }).length === 0, 5000, 100);
      // Whether the bundle named a socket is a note, not behaviour: containerd 2.x's runc-v2 writes no
      // `address` file (bootstrap.json instead; docs/containerd-versions.md), tsshim writes one on every version.
      ctx.note('socketKnown', taskSocket !== undefined);
      return { taskRm: rm.exitCode, containerRm: crm.exitCode, leftovers: leftoverKinds(ctx, id, [pid, ...shims], { socket, cgroup }) };
    },
    expect: (o) => ((o.leftovers as Json[]).length === 0 ? [] : [`left behind: ${JSON.stringify(o.leftovers)}`]),
  },
  {
    id: 'run-rm-missing-binary',
    group: 'cleanup',
    title: '`ctr run --rm` of a nonexistent binary (runc fails at Create, gVisor at Start): ctr fails; no task, container, shim, mount, runtime state or cgroup left behind',
    async run(ctx) {
      const id = ctx.uniqueId('nobin');
      const r = await ctx.ctr.run(id, ['/nonexistent-binary'], { rm: true });
      ctx.note('ctrSays', ctrMessage(r.stderr, id));
      const shims = shimPids(ctx.cd, id);
      // Whatever ctr left settles first (a shim on its way out), then is recorded.
      await waitFor(() => leftoverKinds(ctx, id, shims, {}).length === 0, 5000, 100);
      const task = (await ctx.ctr.raw(['task', 'ls'])).stdout.split('\n').some((l) => l.startsWith(id + ' '));
      const container = (await ctx.ctr.raw(['containers', 'ls', '-q'])).stdout.split('\n').includes(id);
      const cgroupLeft = existsSync(`/sys/fs/cgroup/memory/${ctx.cd.namespace}/${id}`);
      return { ctrFailed: r.exitCode !== 0, taskListed: task, containerListed: container, cgroupLeft, leftovers: leftoverKinds(ctx, id, shims, {}) };
    },
    expect: (o) => [
      ...(o.ctrFailed === true ? [] : ['ctr run of a nonexistent binary succeeded']),
      ...(o.taskListed === false && o.containerListed === false && o.cgroupLeft === false ? [] : ['task, container or memory cgroup left behind']),
      ...((o.leftovers as Json[]).length === 0 ? [] : [`left behind: ${JSON.stringify(o.leftovers)}`]),
    ],
  },
  {
    id: 'shim-kill-9',
    group: 'robustness',
    title: 'SIGKILL of the shim daemon: task no longer running, container process gone, removable, nothing left',
    async run(ctx) {
      const id = ctx.uniqueId('shimk');
      const pid = await runSleeper(ctx, id);
      const daemons = servingDaemons(ctx, [id]);
      ctx.note('daemons', daemons.map((d) => `${d.binary}:${d.pid}`));
      if (daemons.length !== 1) throw new Error(`expected one ${shimBinaryOf(ctx.column.runtimeType)} daemon for ${id}, found ${JSON.stringify(daemons)}`);
      process.kill(daemons[0]!.pid, 'SIGKILL');
      let st = '';
      await waitFor(async () => (st = (await ctx.ctr.raw(['task', 'ls'])).stdout.split('\n').find((l) => l.startsWith(id + ' '))?.trim().split(/\s+/)[2] ?? '(not listed)') !== 'RUNNING', 20_000, 200);
      const gone = await waitFor(() => !isAlive(pid), 15_000, 100);
      const rm = await ctx.ctr.raw(['task', 'rm', '-f', id]);
      ctx.note('taskRm', `${rm.exitCode} ${ctrMessage(rm.stderr, id)}`);
      const crm = await ctx.ctr.raw(['containers', 'rm', id]);
      const left = await waitNoLeftovers(ctx.cd, id, [pid]);
      return { statusAfterKill: st, containerProcessGone: gone, containerRm: crm.exitCode, leftovers: left.map(describeLeftover) };
    },
    expect: (o) => (o.containerProcessGone === true && o.containerRm === 0 ? [] : [`process gone ${o.containerProcessGone}, c rm ${o.containerRm}`]),
  },
  {
    id: 'containerd-restart',
    group: 'robustness',
    title: 'containerd restarted while a task runs: still RUNNING with the same pid, then killable and removable',
    timeoutMs: 120_000,
    async run(ctx) {
      const id = ctx.uniqueId('rst');
      const pid = await runSleeper(ctx, id);
      await ctx.cd.restart();
      const row = (await ctx.ctr.raw(['task', 'ls'])).stdout.split('\n').find((l) => l.startsWith(id + ' '))?.trim().split(/\s+/);
      const k = await ctx.ctr.raw(['task', 'kill', '-s', 'SIGKILL', id]);
      const st = await waitStatus(ctx, id, 'STOPPED');
      const rm = await ctx.ctr.raw(['task', 'rm', id]);
      const crm = await ctx.ctr.raw(['containers', 'rm', id]);
      const left = await waitNoLeftovers(ctx.cd, id, [pid]);
      return {
        listedAfterRestart: row !== undefined,
        statusAfterRestart: row?.[2] ?? null,
        samePid: row !== undefined && Number(row[1]) === pid,
        kill: k.exitCode,
        stopped: st,
        taskRmSays: ctrMessage(rm.stderr, id),
        containerRm: crm.exitCode,
        leftovers: left.map(describeLeftover),
      };
    },
    expect: (o) => (o.statusAfterRestart === 'RUNNING' && o.samePid === true ? [] : [`after restart: ${o.statusAfterRestart}, same pid ${o.samePid}`]),
  },
  {
    id: 'log-uri-file',
    group: 'logging',
    title: '`--log-uri file:///...`: stdout and stderr (a pipe inside) appended to the file, nothing on ctr\'s own stdout',
    async run(ctx) {
      const id = ctx.uniqueId('flog');
      const file = join(ctx.tmp, 'container.log');
      writeFileSync(file, 'already here\n');
      const r = await ctx.ctr.run(id, ['sh', '-c', 'echo to-log-out; echo to-log-err >&2; readlink /proc/self/fd/1 | cut -c1-5; exit 4'], { rm: true, flags: ['--log-uri', `file://${file}`] });
      const lines = () => readFileSync(file, 'utf8').split('\n').filter(Boolean);
      await waitFor(() => lines().length >= 4, 10_000, 50);
      // The container writes into a pipe the shim copies from, never into the host file itself.
      return { exitCode: r.exitCode, ctrStdout: r.stdout, firstLine: lines()[0] ?? null, fileLines: lines().slice(1).sort() };
    },
    expect: (o) =>
      o.firstLine === 'already here' && JSON.stringify(o.fileLines) === JSON.stringify(['pipe:', 'to-log-err', 'to-log-out']) ? [] : [`first line ${JSON.stringify(o.firstLine)}, then ${JSON.stringify(o.fileLines)}`],
  },
  {
    id: 'log-uri-binary',
    group: 'logging',
    title: '`--log-uri binary:///logger?arg=v`: the logger gets stdout on fd 3, stderr on fd 4, CONTAINER_ID/CONTAINER_NAMESPACE, args from the query',
    async run(ctx) {
      const id = ctx.uniqueId('blog');
      const dir = ctx.tmp;
      const logger = join(dir, 'logger.sh');
      writeFileSync(
        logger,
        [
          '#!/bin/sh',
          '# containerd logging binary: fd 3 stdout, fd 4 stderr, close fd 5 when ready',
          `echo "$CONTAINER_ID $CONTAINER_NAMESPACE" > ${dir}/env`,
          `echo "$@" > ${dir}/args`,
          // the copies must not hold fd 5, or the shim waits for readiness forever
          `cat <&3 > ${dir}/out 5>&- &`,
          `cat <&4 > ${dir}/err 5>&- &`,
          'exec 5>&-',
          'wait',
          '',
        ].join('\n'),
      );
      chmodSync(logger, 0o755);
      const r = await ctx.ctr.run(id, ['sh', '-c', 'echo bin-out; echo bin-err >&2; exit 2'], { rm: true, flags: ['--log-uri', `binary://${logger}?arg=v`] });
      const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : null);
      await waitFor(() => read('out') === 'bin-out\n' && read('err') === 'bin-err\n', 5000, 50);
      const env = read('env');
      return {
        exitCode: r.exitCode,
        ctrStdout: r.stdout,
        loggerStdout: read('out'),
        loggerStderr: read('err'),
        loggerEnv: env === null ? null : env.replace(id, '<id>').replace(ctx.cd.namespace, '<namespace>').trim(),
        loggerArgs: read('args'),
      };
    },
    expect: (o) =>
      o.loggerStdout === 'bin-out\n' && o.loggerStderr === 'bin-err\n' && o.loggerArgs === 'arg v\n' && o.loggerEnv === '<id> <namespace>'
        ? []
        : [`logger got ${JSON.stringify(o.loggerStdout)} / ${JSON.stringify(o.loggerStderr)}, args ${JSON.stringify(o.loggerArgs)}, env ${JSON.stringify(o.loggerEnv)}`],
  },
  {
    id: 'concurrent-waits',
    group: 'grpc',
    title: 'three concurrent Wait calls (gRPC) on a running task, then one after the exit: all 137 with the same exited_at after SIGKILL',
    async run(ctx) {
      const id = ctx.uniqueId('waits');
      await runSleeper(ctx, id);
      const waits = [0, 1, 2].map(() => ctx.client.tasks.wait({ containerId: id }, { timeoutMs: 30_000 }));
      await sleep(300);
      ok(await ctx.ctr.raw(['task', 'kill', '-s', 'SIGKILL', id]), 'kill');
      const res = await Promise.all(waits);
      // A Wait after the exit answers at once (a hung one fails on this deadline) with the same exit.
      const after = await ctx.client.tasks.wait({ containerId: id }, { timeoutMs: 10_000 });
      const at = [...res, after].map((w) => `${w.exitedAt?.seconds ?? 0}.${w.exitedAt?.nanos ?? 0}`);
      return { statuses: res.map((w) => w.exitStatus), sameExitedAt: at.every((a) => a === at[0]), exitedAtSet: (res[0]?.exitedAt?.seconds ?? 0) > 0, afterExitStatus: after.exitStatus };
    },
    expect: (o) =>
      JSON.stringify(o.statuses) === '[137,137,137]' && o.afterExitStatus === 137 && o.sameExitedAt === true ? [] : [`statuses ${JSON.stringify(o.statuses)}, after exit ${o.afterExitStatus}, same exited_at ${o.sameExitedAt}`],
  },
  {
    id: 'host-pid',
    group: 'grpc',
    title: '`ctr task ls` pid = Get (gRPC) pid, a live host process in the container\'s cgroup',
    async run(ctx) {
      const id = ctx.uniqueId('hpid');
      const pid = await runSleeper(ctx, id);
      const got = await ctx.client.tasks.get({ containerId: id });
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      } catch {
        cmdline = '(no such process)';
      }
      ctx.note('cmdline', cmdline);
      const cg = existsSync(`/proc/${pid}`) ? cgroupOf(pid, 'memory') : undefined;
      ctx.note('memoryCgroup', cg ?? null);
      return {
        pidPositive: pid > 0,
        getPidEqualsLs: got.process?.pid === pid,
        aliveOnHost: isAlive(pid),
        inContainerCgroup: cg !== undefined && cg.endsWith(`/${id}`),
        status: got.process?.status ?? null,
      };
    },
    expect: (o) => (o.aliveOnHost === true && o.getPidEqualsLs === true ? [] : [`alive ${o.aliveOnHost}, Get pid = ls pid ${o.getPidEqualsLs}`]),
  },
  {
    id: 'grouping',
    group: 'grouping',
    title: 'two containers annotated io.containerd.runc.v2.group=<g>: one shim daemon and address; removing one leaves only the daemon, the other still runs and execs; the daemon exits after the last',
    async run(ctx) {
      const a = ctx.uniqueId('grpa');
      const b = ctx.uniqueId('grpb');
      const group = ctx.uniqueId('g');
      const flags = ['--annotation', `io.containerd.runc.v2.group=${group}`];
      const pa = await runSleeper(ctx, a, { flags });
      const pb = await runSleeper(ctx, b, { flags });
      const all = shimDaemons(ctx.cd, [a, b]);
      ctx.note('daemons', all.map((d) => `${d.binary}:${d.pid}`));
      const daemons = servingDaemons(ctx, [a, b]);
      const nodeDaemon = ctx.shimMode === 'node' && ctx.column.runtimeType === TSSHIM;
      const sameAddress = socketOf(ctx, a) !== undefined && socketOf(ctx, a) === socketOf(ctx, b);
      ok(await ctx.ctr.raw(['task', 'kill', '-s', 'SIGKILL', a]), 'kill a');
      await waitStatus(ctx, a, 'STOPPED');
      await ctx.ctr.raw(['task', 'rm', a]);
      await ctx.ctr.raw(['containers', 'rm', a]);
      // Everything of a goes, except the group's shim daemons (started as `-id <a>`; a delegating
      // shim has its delegate's too): they serve b.
      const groupShims = new Set([...all, ...daemons].map((d) => d.pid));
      const leftOfFirst = () => leftovers(ctx.cd, a, [pa]).filter((l) => !groupShims.has(Number(/^shim process (\d+)$/.exec(l)?.[1])));
      await waitFor(() => leftOfFirst().length === 0, 10_000, 100);
      await sleep(300);
      const leftOfA = leftOfFirst().map(describeLeftover);
      const bAfter = await waitStatus(ctx, b, 'RUNNING', 2000);
      const daemonAliveForB = daemons.length > 0 && daemons.every((d) => isAlive(d.pid));
      const x = await ctx.ctr.raw(['task', 'exec', '--exec-id', 'after', b, 'echo', 'alive']);
      ok(await ctx.ctr.raw(['task', 'kill', '-s', 'SIGKILL', b]), 'kill b');
      await waitStatus(ctx, b, 'STOPPED');
      const rm = await ctx.ctr.raw(['task', 'rm', b]);
      await ctx.ctr.raw(['containers', 'rm', b]);
      const gone = await waitFor(() => daemons.every((d) => !isAlive(d.pid)), 10_000, 100);
      const leftOfB = (await waitNoLeftovers(ctx.cd, b, [pb])).map(describeLeftover);
      return {
        shimDaemons: daemons.length,
        sameAddress,
        leftOfFirst: leftOfA,
        secondRunningAfterFirstRemoved: bAfter === 'RUNNING',
        daemonSurvivesFirstRemoval: daemonAliveForB,
        execInSecondAfter: x.exitCode === 0 ? x.stdout : `exit ${x.exitCode}: ${ctrMessage(x.stderr, b)}`,
        secondTaskRmSays: ctrMessage(rm.stderr, b),
        daemonGoneAfterBoth: gone,
        leftOfSecond: leftOfB,
        containerPidsDiffer: pa !== pb,
        // Node mode: the one daemon of the containerd serves on after the group's last task.
        ...(nodeDaemon ? { nodeDaemon: true } : {}),
      };
    },
    expect: (o) =>
      o.shimDaemons === 1 && o.sameAddress === true && (o.daemonGoneAfterBoth === true || o.nodeDaemon === true) && (o.leftOfSecond as Json[]).length === 0
        ? []
        : [`${o.shimDaemons} shim daemons, same address ${o.sameAddress}, daemon gone ${o.daemonGoneAfterBoth}, left of b ${JSON.stringify(o.leftOfSecond)}`],
  },
];
