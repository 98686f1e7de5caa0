// Terminal, pause/resume, pids, stats, update, OOM, checkpoint/restore.
import { readFileSync } from 'node:fs';
import { cgroupsV1, cgroupsV2 } from '../../src/shim-api/pb.js';
import { runCommand } from '../../test/helpers/proc.js';
import { UnsupportedError, type Json, type Scenario, type ScenarioContext } from '../types.js';
import { cgroupOf, ctrMessage, ctrUnsupported, events, grpcOrUnsupported, ok, requireCriu, runSleeper, sleep, status, topicsOf, waitFor, waitStatus } from './util.js';

/**
 * For the report when `ctr c checkpoint` fails: what `ctr task checkpoint` (which sends no checkpoint
 * options, so no CRIU flags) does on a fresh task.
 */
async function observeTaskCheckpoint(ctx: ScenarioContext): Promise<void> {
  const id = ctx.uniqueId('tckpt');
  await runSleeper(ctx, id);
  const tc = await ctx.ctr.raw(['task', 'checkpoint', id], { timeoutMs: 90_000 });
  const name = tc.stdout.trim();
  if (tc.exitCode === 0 && name) ctx.defer(() => ctx.ctr.raw(['images', 'rm', name]));
  ctx.note('ctrTaskCheckpoint', tc.exitCode === 0 ? `OK: ${name}; task ${await status(ctx, id)}` : `exit ${tc.exitCode}: ${ctrMessage(tc.stderr, id)}`);
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export const controlScenarios: Scenario[] = [
  {
    id: 'tty-size',
    group: 'terminal',
    title: '`ctr run -t` under `script` on a 40x120 terminal: `stty size` inside prints "40 120"',
    async run(ctx) {
      const id = ctx.uniqueId('tty');
      // ctr sizes the console after Start: give it a moment before asking.
      const argv = ctx.ctr.runArgv(id, ['sh', '-c', 'sleep 1; stty size'], { rm: true, tty: true });
      const cmd = `stty rows 40 cols 120; ${argv.map(shq).join(' ')}`;
      const r = await runCommand('script', ['-qfec', cmd, '/dev/null'], { timeoutMs: 60_000 });
      ctx.note('output', r.stdout.slice(0, 200));
      const m = /(\d+) (\d+)/.exec(r.stdout);
      return { exitCode: r.exitCode, size: m ? `${m[1]} ${m[2]}` : null };
    },
    expect: (o) => (o.size === '40 120' ? [] : [`stty size printed ${o.size}`]),
  },
  {
    id: 'tty-resize',
    group: 'terminal',
    title: 'ResizePty of a tty init to 33x77 (gRPC): `stty -F /proc/1/fd/0 size` in an exec prints "33 77"',
    requires: ['exec'],
    async run(ctx) {
      const id = ctx.uniqueId('rsz');
      // ctr wants a terminal for -t, even with -d.
      const argv = ctx.ctr.runArgv(id, ['sleep', '300'], { detach: true, tty: true });
      ok(await runCommand('script', ['-qfec', argv.map(shq).join(' '), '/dev/null'], { timeoutMs: 60_000 }), 'script ctr run -d -t');
      await grpcOrUnsupported(ctx.client.tasks.resizePty({ containerId: id, width: 77, height: 33 }));
      const r = await ctx.ctr.raw(['task', 'exec', '--exec-id', 'sz', id, 'stty', '-F', '/proc/1/fd/0', 'size']);
      return { resize: 'OK', execExit: r.exitCode, size: r.stdout.trim() };
    },
    expect: (o) => (o.size === '33 77' ? [] : [`size ${JSON.stringify(o.size)}`]),
  },
  {
    id: 'pause-resume',
    group: 'control',
    title: '`ctr task pause` then `resume`: PAUSED then RUNNING, /tasks/paused and /tasks/resumed published',
    requires: ['pause', 'resume'],
    async run(ctx) {
      const ev = await events(ctx);
      const id = ctx.uniqueId('pause');
      await runSleeper(ctx, id);
      const p = await ctx.ctr.raw(['task', 'pause', id]);
      ctrUnsupported(p, 'pause');
      ok(p, 'ctr task pause');
      const paused = await waitStatus(ctx, id, 'PAUSED', 5000);
      const r = await ctx.ctr.raw(['task', 'resume', id]);
      ctrUnsupported(r, 'resume');
      ok(r, 'ctr task resume');
      const resumed = await waitStatus(ctx, id, 'RUNNING', 5000);
      await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/resumed' && e.body.container_id === id), 5000, 50);
      const topics = topicsOf(await ev.stop(), id).filter((t) => t === '/tasks/paused' || t === '/tasks/resumed');
      return { afterPause: paused, afterResume: resumed, topics };
    },
    expect: (o) => (o.afterPause === 'PAUSED' && o.afterResume === 'RUNNING' ? [] : [`states ${o.afterPause} / ${o.afterResume}`]),
  },
  {
    id: 'pids',
    group: 'control',
    title: '`ctr task ps` of a task with one exec: two processes, the init pid from `ctr task ls` among them',
    requires: ['ps', 'exec'],
    async run(ctx) {
      const id = ctx.uniqueId('pids');
      const pid = await runSleeper(ctx, id);
      const one = (await ctx.ctr.raw(['task', 'ps', id]));
      ctrUnsupported(one, 'ps');
      ok(one, 'ctr task ps');
      ok(await ctx.ctr.raw(['task', 'exec', '-d', '--exec-id', 'ps2', id, 'sleep', '300']), 'ctr task exec -d');
      let rows: string[] = [];
      await waitFor(async () => {
        rows = (await ctx.ctr.raw(['task', 'ps', id])).stdout.trim().split('\n').slice(1).filter(Boolean);
        return rows.length >= 2;
      }, 10_000, 100);
      const pids = rows.map((l) => Number(l.trim().split(/\s+/)[0]));
      ctx.note('ps', rows.join(' | '));
      ctx.note('taskPid', pid);
      const withInfo = rows.filter((l) => l.trim().split(/\s+/).length > 1).length;
      return {
        countBeforeExec: one.stdout.trim().split('\n').slice(1).filter(Boolean).length,
        countWithExec: pids.length,
        initPidListed: pids.includes(pid),
        rowsWithExecInfo: withInfo,
      };
    },
    expect: (o) => (o.countWithExec === 2 ? [] : [`${o.countWithExec} processes listed, expected 2`]),
  },
  {
    id: 'stats',
    group: 'control',
    title: 'Metrics (gRPC) of a running task: type URL, the cgroup sections, non-zero cpu, memory and pids (a sandbox\'s cgroup also counts the sandbox: counts are not compared)',
    async run(ctx) {
      const id = ctx.uniqueId('stats');
      await runSleeper(ctx, id, { cmd: ['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 300'] });
      await sleep(500);
      const res = await grpcOrUnsupported(ctx.client.tasks.metrics({ filters: [`id==${id}`] }));
      const m = res.metrics.find((x) => x.id === id);
      if (!m?.data) {
        // containerd's Metrics drops a task whose Stats failed and logs why: find the shim's answer there.
        const logged = ctx.cd.logTail(400).split('\n').reverse().find((l) => l.includes(`collecting metrics for ${id}`));
        const why = logged ? (/error="((?:[^"\\]|\\.)*)"/.exec(logged)?.[1] ?? logged) : undefined;
        ctx.note('containerdLog', why ?? null);
        if (why && /not implemented/i.test(why)) throw new UnsupportedError(why.replace(/\\"/g, '"'));
        return { metric: null };
      }
      const typeUrl = m.data.typeUrl;
      const obs: { [k: string]: Json } = { typeUrl };
      if (typeUrl.endsWith('io.containerd.cgroups.v1.Metrics')) {
        const d = cgroupsV1.Metrics.decode(m.data.value);
        obs.sections = Object.entries(d).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)).map(([k]) => k).sort();
        obs.cpuUsagePositive = (d.cpu?.usage?.total ?? 0n) > 0n;
        obs.memoryUsagePositive = (d.memory?.usage?.usage ?? 0n) > 0n;
        obs.pidsCurrentPositive = (d.pids?.current ?? 0n) > 0n;
        ctx.note('pidsCurrent', Number(d.pids?.current ?? -1n));
      } else if (typeUrl.endsWith('io.containerd.cgroups.v2.Metrics')) {
        const d = cgroupsV2.Metrics.decode(m.data.value);
        obs.sections = Object.entries(d).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)).map(([k]) => k).sort();
        obs.cpuUsagePositive = (d.cpu?.usageUsec ?? 0n) > 0n;
        obs.memoryUsagePositive = (d.memory?.usage ?? 0n) > 0n;
        obs.pidsCurrentPositive = (d.pids?.current ?? 0n) > 0n;
        ctx.note('pidsCurrent', Number(d.pids?.current ?? -1n));
      }
      return obs;
    },
    expect: (o) => (o.cpuUsagePositive === true && o.memoryUsagePositive === true ? [] : ['cpu or memory usage missing']),
  },
  {
    id: 'update-memory',
    group: 'resources',
    title: 'Update (gRPC) memory limit to 64 MiB: the task cgroup\'s memory.limit_in_bytes says 67108864',
    requires: ['update'],
    async run(ctx) {
      const id = ctx.uniqueId('upd');
      const pid = await runSleeper(ctx, id);
      const limit = 64 * 1024 * 1024;
      await grpcOrUnsupported(
        ctx.client.tasks.update({
          containerId: id,
          resources: {
            typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources',
            value: Buffer.from(JSON.stringify({ memory: { limit } })),
          },
        }),
        'update',
      );
      const cg = cgroupOf(pid, 'memory');
      ctx.note('cgroup', cg ?? null);
      const file = `/sys/fs/cgroup/memory${cg}/memory.limit_in_bytes`;
      let value: number | null = null;
      try {
        value = Number(readFileSync(file, 'utf8').trim());
      } catch (e) {
        ctx.note('readError', (e as Error).message);
      }
      return { update: 'OK', limitInBytes: value };
    },
    expect: (o) => (o.limitInBytes === 64 * 1024 * 1024 ? [] : [`memory.limit_in_bytes ${o.limitInBytes}`]),
  },
  {
    id: 'oom',
    group: 'resources',
    title: 'a 64 MiB allocation under --memory-limit 16 MiB: exit 137 and /tasks/oom before /tasks/exit',
    async run(ctx) {
      const ev = await events(ctx);
      const id = ctx.uniqueId('oom');
      const r = await ctx.ctr.run(id, ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], { rm: true, flags: ['--memory-limit', String(16 * 1024 * 1024)] });
      await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/delete' && e.body.container_id === id), 5000, 50);
      const topics = topicsOf(await ev.stop(), id);
      const iOom = topics.indexOf('/tasks/oom');
      const iExit = topics.indexOf('/tasks/exit');
      ctx.note('topics', topics);
      return { exitCode: r.exitCode, oomEvent: iOom >= 0, oomBeforeExit: iOom >= 0 && iOom < iExit };
    },
    expect: (o) => (o.exitCode === 137 && o.oomBeforeExit === true ? [] : [`exit ${o.exitCode}, oom before exit ${o.oomBeforeExit}`]),
  },
  {
    id: 'checkpoint-restore',
    group: 'checkpoint',
    title: '`ctr c checkpoint --task` of a counting task, `ctr c restore --live`: the restored task runs and keeps counting',
    requires: ['checkpoint', 'restore'],
    timeoutMs: 120_000,
    async run(ctx) {
      if (ctx.column.checkpointEngine === 'criu') await requireCriu();
      const id = ctx.uniqueId('ckpt');
      await runSleeper(ctx, id, { cmd: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done'] });
      await sleep(500);
      const ref = `checkpoint/${id}:1`;
      const c = await ctx.ctr.raw(['containers', 'checkpoint', '--task', '--rw', id, ref], { timeoutMs: 90_000 });
      if (c.exitCode !== 0) {
        ctx.note('ctrContainerCheckpoint', ctrMessage(c.stderr, id));
        await observeTaskCheckpoint(ctx);
      }
      ctrUnsupported(c, 'checkpoint');
      if (c.exitCode !== 0) throw new Error(`ctr containers checkpoint exited ${c.exitCode}: ${c.stderr.trim()}`);
      ctx.defer(() => ctx.ctr.raw(['images', 'rm', ref]));
      ok(await ctx.ctr.raw(['task', 'kill', '-s', 'SIGKILL', id]), 'kill after checkpoint');
      await waitStatus(ctx, id, 'STOPPED');
      await ctx.ctr.raw(['task', 'rm', id]);
      ok(await ctx.ctr.raw(['containers', 'rm', id]), 'ctr c rm');
      const restored = ctx.uniqueId('rest');
      const rs = await ctx.ctr.raw(['containers', 'restore', '--live', '--rw', restored, ref], { timeoutMs: 90_000 });
      ctrUnsupported(rs, 'restore');
      if (rs.exitCode !== 0) throw new Error(`ctr containers restore exited ${rs.exitCode}: ${rs.stderr.trim()}`);
      const st = await waitStatus(ctx, restored, 'RUNNING', 10_000);
      const read = async () => Number((await ctx.ctr.raw(['task', 'exec', '--exec-id', `r${Date.now() % 100000}`, restored, 'cat', '/tmp/count'])).stdout.trim());
      const a = await read();
      await sleep(600);
      const b = await read();
      return { restoredStatus: st, counting: b > a, resumedFromCheckpoint: a > 3 };
    },
    expect: (o) => (o.restoredStatus === 'RUNNING' && o.counting === true ? [] : [`restored ${o.restoredStatus}, counting ${o.counting}`]),
  },
];

