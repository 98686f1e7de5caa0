// Exec: output, exit code, stdin, event order.
import type { Scenario } from '../types.js';
import { events, ok, runSleeper, topicsOf, waitFor, waitStatus } from './util.js';

export const execScenarios: Scenario[] = [
  {
    id: 'exec-output',
    group: 'exec',
    title: '`ctr task exec` in a running task: its stdout and stderr, exit 0',
    requires: ['exec'],
    async run(ctx) {
      const id = ctx.uniqueId('exo');
      await runSleeper(ctx, id);
      const r = await ctx.ctr.raw(['task', 'exec', '--exec-id', 'e1', id, 'sh', '-c', 'echo exec-out; echo exec-err >&2']);
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, initStillRunning: (await waitStatus(ctx, id, 'RUNNING', 1000)) === 'RUNNING' };
    },
    expect: (o) => (o.stdout === 'exec-out\n' && o.stderr === 'exec-err\n' && o.exitCode === 0 ? [] : [`exec gave ${o.exitCode} ${JSON.stringify(o.stdout)} ${JSON.stringify(o.stderr)}`]),
  },
  {
    id: 'exec-exit-code',
    group: 'exec',
    title: 'an exec exiting 7 makes `ctr task exec` exit 7; the init keeps running',
    requires: ['exec'],
    async run(ctx) {
      const id = ctx.uniqueId('exc');
      await runSleeper(ctx, id);
      const r = await ctx.ctr.raw(['task', 'exec', '--exec-id', 'e7', id, 'sh', '-c', 'exit 7']);
      return { exitCode: r.exitCode, initStatus: await waitStatus(ctx, id, 'RUNNING', 1000) };
    },
    expect: (o) => (o.exitCode === 7 ? [] : [`exec exit ${o.exitCode}, expected 7`]),
  },
  {
    id: 'exec-stdin',
    group: 'exec',
    title: 'a line on the stdin of `ctr task exec` reaches the exec',
    requires: ['exec'],
    async run(ctx) {
      const id = ctx.uniqueId('exi');
      await runSleeper(ctx, id);
      const r = await ctx.ctr.raw(['task', 'exec', '--exec-id', 'ein', id, 'sh', '-c', 'read l; echo "got:$l"'], { input: 'exec line\n', timeoutMs: 30_000 });
      return { exitCode: r.exitCode, stdout: r.stdout };
    },
    expect: (o) => (o.stdout === 'got:exec line\n' ? [] : [`stdout ${JSON.stringify(o.stdout)}`]),
  },
  {
    id: 'exec-events-order',
    group: 'events',
    title: 'events of a task with one exec: exec-added, exec-started, exit(exec) before the init exit and delete',
    requires: ['exec'],
    async run(ctx) {
      const ev = await events(ctx);
      const id = ctx.uniqueId('exev');
      await runSleeper(ctx, id);
      const r = await ctx.ctr.raw(['task', 'exec', '--exec-id', 'x1', id, 'sh', '-c', 'exit 5']);
      ok(await ctx.ctr.raw(['task', 'kill', '-s', 'SIGKILL', id]), 'ctr task kill');
      await waitStatus(ctx, id, 'STOPPED');
      await ctx.ctr.raw(['task', 'rm', id]);
      await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/delete' && e.body.container_id === id), 5000, 50);
      const lines = await ev.stop();
      const execExit = lines.find((e) => e.topic === '/tasks/exit' && e.body.container_id === id && e.body.id === 'x1');
      const started = lines.find((e) => e.topic === '/tasks/exec-started' && e.body.container_id === id);
      return {
        execExitCode: r.exitCode,
        topics: topicsOf(lines, id, true),
        execExitStatus: (execExit?.body.exit_status as number | undefined) ?? null,
        execStartedPidMatchesExit: started !== undefined && execExit !== undefined && started.body.pid === execExit.body.pid,
      };
    },
    expect: (o) => {
      const want = ['/tasks/create', '/tasks/start', '/tasks/exec-added(x1)', '/tasks/exec-started(x1)', '/tasks/exit(x1)', '/tasks/exit', '/tasks/delete'];
      return JSON.stringify(o.topics) === JSON.stringify(want) ? [] : [`topics ${JSON.stringify(o.topics)}`];
    },
  },
];
