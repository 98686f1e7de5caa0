// Terminal, pause/resume, pids, stats, update, OOM, checkpoint/restore.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupsV1, cgroupsV2 } from '../../src/shim-api/pb.js';
import { underTerminal } from '../../test/helpers/proc.js';
import { bundleDir } from '../../test/helpers/tasks.js';
import { NotRunError, UnsupportedError, type Json, type Scenario, type ScenarioContext } from '../types.js';
import { cgroupOf, criuProblem, ctrMessage, ctrUnsupported, events, grpcOrUnsupported, ok, requireCriu, runSleeper, sleep, status, topicsOf, waitFor, waitStatus } from './util.js';

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

/** `ctr task metrics` of a task: the table's metric names and the sections of --format json that are not empty. */
async function ctrMetrics(ctx: ScenarioContext, id: string): Promise<{ names: string[]; nonEmpty: string[]; json: Record<string, any> }> {
  const table = ok(await ctx.ctr.raw(['task', 'metrics', id]), 'ctr task metrics');
  const names = table.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter((n) => /^[a-z_]+\./.test(n));
  const json = JSON.parse(ok(await ctx.ctr.raw(['task', 'metrics', '--format', 'json', id]), 'ctr task metrics --format json').stdout) as Record<string, any>;
  const nonEmpty = Object.entries(json).filter(([, v]) => v !== null && typeof v === 'object' && Object.keys(v as object).length > 0).map(([k]) => k).sort();
  return { names, nonEmpty, json };
}

export const controlScenarios: Scenario[] = [
  {
    id: 'tty-size',
    group: 'terminal',
    title: '`ctr run -t` under `script` on a 40x120 terminal: `stty size` inside prints "40 120", `tty` names a /dev/pts node',
    async run(ctx) {
      const id = ctx.uniqueId('tty');
      // ctr sizes the console after Start: give it a moment before asking.
      const r = await underTerminal(ctx.ctr.runArgv(id, ['sh', '-c', 'sleep 1; stty size; tty; exit 0'], { rm: true, tty: true }), { rows: 40, cols: 120 });
      const out = r.stdout.replace(/\r/g, '').replace(/\^@/g, ''); // the terminal echoes a NUL as ^@
      ctx.note('output', out.slice(0, 200));
      return { exitCode: r.exitCode, size: /^(\d+ \d+)$/m.exec(out)?.[1] ?? null, stdinIsPty: /^\/dev\/pts\/\d+$/m.test(out) };
    },
    // stdinIsPty is compared with the reference (gVisor declares why it differs).
    expect: (o) => (o.size === '40 120' ? [] : [`stty size printed ${o.size}`]),
  },
  {
    id: 'tty-exec-size',
    group: 'terminal',
    title: '`ctr task exec -t` under `script` on a 40x120 terminal: `stty size` prints "40 120", exit code 3 passes through',
    requires: ['exec'],
    async run(ctx) {
      const id = ctx.uniqueId('ttx');
      await runSleeper(ctx, id);
      const r = await underTerminal(ctx.cd.ctrArgv(['task', 'exec', '-t', '--exec-id', 't1', id, 'sh', '-c', 'sleep 1; stty size; exit 3']), { rows: 40, cols: 120 });
      const out = r.stdout.replace(/\r/g, '').replace(/\^@/g, '');
      ctx.note('output', out.slice(0, 200));
      return { exitCode: r.exitCode, size: /^(\d+ \d+)$/m.exec(out)?.[1] ?? null };
    },
    expect: (o) => (o.size === '40 120' && o.exitCode === 3 ? [] : [`stty size printed ${o.size}, exit ${o.exitCode}`]),
  },
  {
    id: 'tty-resize',
    group: 'terminal',
    title: 'ResizePty of a tty init to 33x77 (gRPC): `stty -F /proc/1/fd/0 size` in an exec prints "33 77"',
    requires: ['exec'],
    async run(ctx) {
      const id = ctx.uniqueId('rsz');
      // ctr wants a terminal for -t, even with -d.
      ok(await underTerminal(ctx.ctr.runArgv(id, ['sleep', '300'], { detach: true, tty: true })), 'script ctr run -d -t');
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
      const pid = await runSleeper(ctx, id);
      // The freezer cgroup of the task pid (a sandbox may pause inside instead): recorded, not compared.
      const freezer = () => {
        try {
          return readFileSync(`/sys/fs/cgroup/freezer${cgroupOf(pid, 'freezer')}/freezer.state`, 'utf8').trim();
        } catch (e) {
          return `unreadable: ${(e as Error).message}`;
        }
      };
      const p = await ctx.ctr.raw(['task', 'pause', id]);
      ctrUnsupported(p, 'pause');
      ok(p, 'ctr task pause');
      const paused = await waitStatus(ctx, id, 'PAUSED', 5000);
      ctx.note('freezerWhenPaused', freezer());
      const r = await ctx.ctr.raw(['task', 'resume', id]);
      ctrUnsupported(r, 'resume');
      ok(r, 'ctr task resume');
      const resumed = await waitStatus(ctx, id, 'RUNNING', 5000);
      ctx.note('freezerWhenResumed', freezer());
      await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/resumed' && e.body.container_id === id), 5000, 50);
      const topics = topicsOf(await ev.stop(), id).filter((t) => t === '/tasks/paused' || t === '/tasks/resumed');
      // Resuming a task that is not paused: whatever runc-v2 answers.
      const again = await ctx.ctr.raw(['task', 'resume', id]);
      return { afterPause: paused, afterResume: resumed, topics, resumeRunning: { exitCode: again.exitCode, says: ctrMessage(again.stderr, id) } };
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
    id: 'metrics-ctr',
    group: 'control',
    title: '`ctr task metrics` (table and --format json) of a running task: the same metric names and non-empty sections, one process counted',
    async run(ctx) {
      const id = ctx.uniqueId('met');
      const pid = await runSleeper(ctx, id, { cmd: ['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 300'] });
      await waitFor(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep'), 10_000, 50).catch(() => false);
      const m = await ctrMetrics(ctx, id);
      ctx.note('pidsCurrent', (m.json.pids?.current as number | undefined) ?? null);
      return { names: m.names, jsonKeys: Object.keys(m.json).sort(), nonEmpty: m.nonEmpty, cpuPositive: (m.json.cpu?.usage?.total ?? 0) > 0, memoryPositive: (m.json.memory?.usage?.usage ?? 0) > 0 };
    },
    expect: (o) => (JSON.stringify(o.nonEmpty) === JSON.stringify(['cpu', 'memory', 'pids']) && o.cpuPositive === true ? [] : [`non-empty sections ${JSON.stringify(o.nonEmpty)}, cpu ${o.cpuPositive}`]),
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
      const metrics = await ctrMetrics(ctx, id);
      return { update: 'OK', limitInBytes: value, metricsLimit: (metrics.json.memory?.usage?.limit as number | undefined) ?? null };
    },
    expect: (o) => (o.limitInBytes === 64 * 1024 * 1024 && o.metricsLimit === 64 * 1024 * 1024 ? [] : [`memory.limit_in_bytes ${o.limitInBytes}, metrics limit ${o.metricsLimit}`]),
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
  {
    id: 'checkpoint-criu-failure',
    group: 'checkpoint',
    title: '`ctr task checkpoint` where CRIU cannot dump: fails naming criu, CRIU\'s log kept as <bundle>/criu-dump.log, the task keeps running',
    requires: ['checkpoint'],
    timeoutMs: 120_000,
    async run(ctx) {
      if (ctx.column.checkpointEngine !== 'criu') throw new NotRunError(`the ${ctx.column.id} column checkpoints with ${ctx.column.checkpointEngine}, not CRIU`);
      const problem = await criuProblem();
      if (problem === undefined) throw new NotRunError('`criu check` passes on this host: a CRIU dump failure cannot be provoked here (checkpoint-restore covers the round trip)');
      const id = ctx.uniqueId('ckf');
      await runSleeper(ctx, id);
      const r = await ctx.ctr.raw(['task', 'checkpoint', id], { timeoutMs: 90_000 });
      ctrUnsupported(r, 'checkpoint');
      const bundle = bundleDir(ctx.cd, id);
      const msg = ctrMessage(r.stderr, { [bundle]: '<bundle>', [id]: '<id>' });
      ctx.note('message', msg.slice(0, 500));
      const log = join(bundle, 'criu-dump.log');
      return {
        exitCode: r.exitCode,
        mentionsCriu: /criu/i.test(msg),
        namesDumpLog: / path= <bundle>\/criu-dump\.log/.test(msg),
        dumpLogHoldsError: existsSync(log) && statSync(log).size > 0 && /Error/.test(readFileSync(log, 'utf8')),
        firstCriuWords: /criu failed: type DUMP errno \d+/.exec(msg)?.[0] ?? msg,
        status: await status(ctx, id),
      };
    },
    expect: (o) =>
      o.exitCode !== 0 && o.mentionsCriu === true && o.dumpLogHoldsError === true && o.status === 'RUNNING'
        ? []
        : [`exit ${o.exitCode}, names criu ${o.mentionsCriu}, dump log ${o.dumpLogHoldsError}, task ${o.status}`],
  },
];
