// Run to completion, exit codes, signals, stdio and the event order of a run.
import type { Scenario } from '../types.js';
import { KERNEL_PROBE, classifyKernel } from '../../test/helpers/isolation.js';
import { stripCtrDeprecationNotices } from '../../test/helpers/containerd-version.js';
import { randomOutputCommand, streamAndHash } from '../../test/helpers/proc.js';
import { ctrMessage, events, ok, runSleeper, topicsOf, waitFor, waitStatus } from './util.js';

const exitCode = (code: number): Scenario => ({
  id: `exit-code-${code}`,
  group: 'exit codes',
  title: `\`sh -c 'exit ${code}'\`: ctr run exits ${code}`,
  async run(ctx) {
    const id = ctx.uniqueId('exit');
    const r = await ctx.ctr.run(id, ['sh', '-c', `exit ${code}`], { rm: true });
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  },
  expect: (o) => (o.exitCode === code ? [] : [`exit code ${o.exitCode}, expected ${code}`]),
});

export const lifecycleScenarios: Scenario[] = [
  {
    id: 'run-exit-0',
    group: 'lifecycle',
    title: '`ctr run --rm` of `echo hello`: output, exit 0, container removed',
    async run(ctx) {
      const id = ctx.uniqueId('run');
      const r = await ctx.ctr.run(id, ['echo', 'hello'], { rm: true });
      const ls = await ctx.ctr.raw(['containers', 'ls', '-q']);
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, containerLeft: ls.stdout.split('\n').includes(id) };
    },
    expect: (o) => (o.exitCode === 0 && o.stdout === 'hello\n' ? [] : [`expected exit 0 and "hello\\n", got ${o.exitCode} ${JSON.stringify(o.stdout)}`]),
  },
  {
    id: 'isolation-kernel',
    group: 'lifecycle',
    title: '`uname -r; dmesg` inside: the container sees the kernel its column declares (host, gVisor Sentry or a VM)',
    async run(ctx) {
      const id = ctx.uniqueId('kernel');
      const r = await ctx.ctr.run(id, KERNEL_PROBE, { rm: true });
      const seen = classifyKernel(r.stdout);
      ctx.note('declared', ctx.column.isolation);
      ctx.note('seen', seen.kernel);
      ctx.note('uname', seen.uname);
      ctx.note('dmesg', seen.dmesg.split('\n').slice(0, 2).join(' | '));
      // Compared with the reference: "as declared" (the kernels themselves differ by design).
      return { exitCode: r.exitCode, kernelAsDeclared: seen.kernel === ctx.column.isolation };
    },
    expect: (o) => (o.kernelAsDeclared === true ? [] : ['the container does not see the kernel its column declares (see notes: declared, seen, uname, dmesg)']),
  },
  exitCode(42),
  exitCode(1),
  exitCode(255),
  {
    id: 'signal-term-143',
    group: 'signals',
    title: 'init `sleep` in the host pid namespace (or, in a sandbox, an exec) killed with SIGTERM: exit 143',
    async run(ctx) {
      const id = ctx.uniqueId('term');
      if (ctx.column.hostPidNamespaceJoinable) {
        // A PID 1 ignores signals it has no handler for; in the host pid namespace `sleep` is not PID 1.
        await runSleeper(ctx, id, { flags: ['--with-ns', `pid:/proc/${ctx.cd.pid}/ns/pid`] });
        ctx.note('via', 'init in the host pid namespace');
        const wait = ctx.client.tasks.wait({ containerId: id });
        ok(await ctx.ctr.raw(['task', 'kill', '-s', 'SIGTERM', id]), 'ctr task kill -s SIGTERM');
        const w = await wait;
        const rm = await ctx.ctr.raw(['task', 'rm', id]);
        ctx.note('ctrTaskRm', ctrMessage(rm.stderr, id));
        return { exitStatus: w.exitStatus };
      }
      // A sandbox (gVisor) has its own pid namespace whatever the spec says: signal a non-PID-1 exec.
      await runSleeper(ctx, id);
      ctx.note('via', 'exec in the sandbox (cannot join the host pid namespace)');
      const exec = ctx.ctr.raw(['task', 'exec', '--exec-id', 'sleeper', id, 'sleep', '300']);
      await waitFor(async () => (await ctx.ctr.raw(['task', 'ps', id])).stdout.trim().split('\n').length >= 3, 10_000, 100);
      ok(await ctx.ctr.raw(['task', 'kill', '-s', 'SIGTERM', '--exec-id', 'sleeper', id]), 'ctr task kill --exec-id');
      const r = await exec;
      return { exitStatus: r.exitCode };
    },
    expect: (o) => (o.exitStatus === 143 ? [] : [`exit status ${o.exitStatus}, expected 143`]),
  },
  {
    id: 'signal-term-exec-143',
    group: 'signals',
    title: 'an exec `sleep` (not PID 1) killed with SIGTERM through Kill(exec_id): exit 143',
    requires: ['exec'],
    async run(ctx) {
      const id = ctx.uniqueId('termx');
      await runSleeper(ctx, id);
      const exec = ctx.ctr.raw(['task', 'exec', '--exec-id', 'sleeper', id, 'sleep', '300']);
      const started = await waitFor(async () => (await ctx.ctr.raw(['task', 'ps', id])).stdout.trim().split('\n').length >= 3, 10_000, 100);
      const k = await ctx.ctr.raw(['task', 'kill', '-s', 'SIGTERM', '--exec-id', 'sleeper', id]);
      const r = await exec;
      return { execListed: started, killExit: k.exitCode, execExit: r.exitCode, initStatus: await waitStatus(ctx, id, 'RUNNING', 1000) };
    },
    expect: (o) => (o.execExit === 143 ? [] : [`exec exit ${o.execExit}, expected 143`]),
  },
  {
    id: 'signal-kill-137',
    group: 'signals',
    title: '`ctr task kill -s SIGKILL` of a running init: STOPPED, exit 137 from Wait and `ctr task rm`',
    async run(ctx) {
      const id = ctx.uniqueId('kill');
      await runSleeper(ctx, id);
      const wait = ctx.client.tasks.wait({ containerId: id });
      ok(await ctx.ctr.raw(['task', 'kill', '-s', 'SIGKILL', id]), 'ctr task kill');
      const w = await wait;
      const st = await waitStatus(ctx, id, 'STOPPED');
      const rm = await ctx.ctr.raw(['task', 'rm', id]);
      return { waitExitStatus: w.exitStatus, exitedAtSet: (w.exitedAt?.seconds ?? 0) > 0, status: st, rmSays: ctrMessage(rm.stderr, id) };
    },
    expect: (o) => (o.waitExitStatus === 137 ? [] : [`exit status ${o.waitExitStatus}, expected 137`]),
  },
  {
    id: 'stdout-stderr',
    group: 'stdio',
    title: 'stdout and stderr arrive separately and in order',
    async run(ctx) {
      const id = ctx.uniqueId('stdio');
      const r = await ctx.ctr.run(id, ['sh', '-c', 'echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3'], { rm: true });
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    },
    expect: (o) => (o.stdout === 'out1\nout2\n' && o.stderr === 'err1\nerr2\n' ? [] : ['stdout/stderr mixed or missing']),
  },
  {
    id: 'large-output-10mb',
    group: 'stdio',
    title: '10 MiB of random stdout arrive byte-exact (sha256 inside = sha256 received)',
    timeoutMs: 120_000,
    async run(ctx) {
      const id = ctx.uniqueId('big');
      const size = 10 * 1024 * 1024;
      const t0 = Date.now();
      const r = await streamAndHash(ctx.ctr.runArgv(id, randomOutputCommand(size), { rm: true }), {
        cleanStderr: stripCtrDeprecationNotices,
        onSpawn: (child) => ctx.defer(() => child.exitCode === null && child.kill('SIGKILL')),
      });
      ctx.note('transferMs', Date.now() - t0);
      return { exitCode: r.code, bytes: r.bytes, sha256Matches: r.sha256Matches };
    },
    expect: (o) => (o.bytes === 10 * 1024 * 1024 && o.sha256Matches === true ? [] : [`received ${o.bytes} bytes, sha256 match ${o.sha256Matches}`]),
  },
  {
    id: 'stdin-line',
    group: 'stdio',
    title: 'one line on stdin reaches `read` in the container',
    async run(ctx) {
      const id = ctx.uniqueId('stdin');
      const r = await ctx.ctr.run(id, ['sh', '-c', 'read line; echo "got:$line"'], { rm: true, input: 'hello stdin\n' });
      return { exitCode: r.exitCode, stdout: r.stdout };
    },
    expect: (o) => (o.stdout === 'got:hello stdin\n' ? [] : [`stdout ${JSON.stringify(o.stdout)}`]),
  },
  {
    id: 'events-run-order',
    group: 'events',
    title: '`ctr run --rm` publishes /tasks/create, start, exit, delete in order, same pid, exit status 3',
    async run(ctx) {
      const ev = await events(ctx);
      const id = ctx.uniqueId('ev');
      const r = await ctx.ctr.run(id, ['sh', '-c', 'exit 3'], { rm: true });
      await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/delete' && e.body.container_id === id), 5000, 50);
      const lines = (await ev.stop()).filter((e) => e.topic.startsWith('/tasks/') && e.body.container_id === id);
      const pid = lines[0]?.body.pid;
      const exit = lines.find((e) => e.topic === '/tasks/exit');
      const del = lines.find((e) => e.topic === '/tasks/delete');
      return {
        exitCode: r.exitCode,
        topics: topicsOf(lines, id),
        samePid: lines.filter((e) => e.topic !== '/tasks/create' || e.body.pid !== undefined).every((e) => e.body.pid === pid),
        exitId: exit ? (exit.body.id === id ? '<container id>' : String(exit.body.id)) : null,
        exitStatus: (exit?.body.exit_status as number | undefined) ?? null,
        deleteStatus: (del?.body.exit_status as number | undefined) ?? null,
      };
    },
    expect: (o) =>
      JSON.stringify(o.topics) === JSON.stringify(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']) ? [] : [`topics ${JSON.stringify(o.topics)}`],
  },
];
