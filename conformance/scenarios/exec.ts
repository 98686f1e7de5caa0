// Exec: output, exit code, stdin, Wait, event order, many execs.
import { fdCount, sleep, zombieChildren } from '../../test/helpers/proc.js';
import type { Json, Scenario } from '../types.js';
import { events, ok, runSleeper, servingDaemons, topicsOf, waitFor, waitStatus } from './util.js';

const at = (w: { exitedAt?: { seconds: number; nanos: number } | undefined }) => `${w.exitedAt?.seconds ?? 0}.${w.exitedAt?.nanos ?? 0}`;

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
      const mine = lines.filter((e) => e.topic.startsWith('/tasks/') && e.body.container_id === id);
      return {
        execExitCode: r.exitCode,
        topics: topicsOf(lines, id, true),
        // The fields each event carries (0 and empty values are omitted by ctr's JSON).
        eventFields: Object.fromEntries(mine.map((e) => [topicsOf([e], id, true)[0]!, Object.keys(e.body).sort()])),
        execExitStatus: (execExit?.body.exit_status as number | undefined) ?? null,
        execStartedPidMatchesExit: started !== undefined && execExit !== undefined && started.body.pid === execExit.body.pid,
      };
    },
    expect: (o) => {
      const want = ['/tasks/create', '/tasks/start', '/tasks/exec-added(x1)', '/tasks/exec-started(x1)', '/tasks/exit(x1)', '/tasks/exit', '/tasks/delete'];
      return JSON.stringify(o.topics) === JSON.stringify(want) ? [] : [`topics ${JSON.stringify(o.topics)}`];
    },
  },
  {
    id: 'exec-wait',
    group: 'exec',
    title: 'Wait (gRPC) on an exec exiting 7: status 7 with exited_at; a second Wait on the exited exec returns the same status and exited_at',
    requires: ['exec'],
    async run(ctx) {
      const id = ctx.uniqueId('xwait');
      await runSleeper(ctx, id);
      ok(await ctx.ctr.raw(['task', 'exec', '-d', '--exec-id', 'w1', id, 'sh', '-c', 'sleep 1; exit 7']), 'ctr task exec -d');
      const first = await ctx.client.tasks.wait({ containerId: id, execId: 'w1' }, { timeoutMs: 30_000 });
      // An exited exec must answer at once; a hung Wait fails on this deadline.
      const again = await ctx.client.tasks.wait({ containerId: id, execId: 'w1' }, { timeoutMs: 10_000 });
      return { status: first.exitStatus, exitedAtSet: (first.exitedAt?.seconds ?? 0) > 0, againStatus: again.exitStatus, againSameExitedAt: at(again) === at(first) };
    },
    expect: (o) => (o.status === 7 && o.againStatus === 7 && o.againSameExitedAt === true ? [] : [`exec wait ${o.status}, again ${o.againStatus} (same exited_at ${o.againSameExitedAt})`]),
  },
  {
    id: 'exec-quick-20',
    group: 'exec',
    title: '20 execs of `true` (exit at once): each gets exec-added, exec-started, exit in that order, status 0',
    requires: ['exec'],
    async run(ctx) {
      const ev = await events(ctx);
      const id = ctx.uniqueId('xq');
      await runSleeper(ctx, id);
      const n = 20;
      const codes: number[] = [];
      for (let i = 0; i < n; i++) codes.push((await ctx.ctr.raw(['task', 'exec', '--exec-id', `q${i}`, id, 'true'])).exitCode);
      await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/exit' && e.body.id === `q${n - 1}`), 5000, 50);
      const lines = await ev.stop();
      const seq = topicsOf(lines, id, true);
      const perExec = new Set<string>();
      const statuses = new Set<number>();
      for (let i = 0; i < n; i++) {
        perExec.add(seq.filter((s) => s.endsWith(`(q${i})`)).map((s) => s.replace(/\(.*\)$/, '')).join(','));
        const exit = lines.find((e) => e.topic === '/tasks/exit' && e.body.container_id === id && e.body.id === `q${i}`);
        statuses.add((exit?.body.exit_status as number | undefined) ?? (exit ? 0 : -1)); // 0 is omitted from ctr's JSON
      }
      return { execExitCodes: [...new Set(codes)], eventsPerExec: [...perExec], exitStatuses: [...statuses] };
    },
    expect: (o) =>
      JSON.stringify(o.eventsPerExec) === JSON.stringify(['/tasks/exec-added,/tasks/exec-started,/tasks/exit']) && JSON.stringify(o.exitStatuses) === '[0]'
        ? []
        : [`events per exec ${JSON.stringify(o.eventsPerExec)}, statuses ${JSON.stringify(o.exitStatuses)}`],
  },
  {
    id: 'exec-200-no-leak',
    group: 'exec',
    title: '200 sequential execs: no zombie child under the shim, the task still execs (tsshim: open fds of the shim do not grow)',
    requires: ['exec'],
    timeoutMs: 300_000,
    async run(ctx) {
      const id = ctx.uniqueId('x200');
      await runSleeper(ctx, id);
      const daemons = servingDaemons(ctx, [id]);
      if (daemons.length !== 1) throw new Error(`expected one shim daemon serving for ${id}, found ${JSON.stringify(daemons)}`);
      const shim = daemons[0]!.pid;
      const fdsBefore = fdCount(shim);
      const failed: Json[] = [];
      for (let i = 0; i < 200; i++) {
        const r = await ctx.ctr.raw(['task', 'exec', '--exec-id', `x${i}`, id, 'true']);
        if (r.exitCode !== 0) failed.push(`x${i}: ${r.exitCode} ${r.stderr.trim().slice(0, 200)}`);
      }
      // Reaping and closing are asynchronous to ctr's exit: give them a moment.
      await waitFor(() => zombieChildren(shim).length === 0, 5000, 100);
      await sleep(500);
      const zombies = zombieChildren(shim).length;
      const fdsAfter = fdCount(shim);
      ctx.note('shimFds', `${fdsBefore} -> ${fdsAfter}`);
      if (failed.length) ctx.note('failedExecs', failed.slice(0, 5));
      const after = await ctx.ctr.raw(['task', 'exec', '--exec-id', 'after', id, 'sh', '-c', 'echo still-works']);
      // Our own shim's fds are held to account; runc-v2's are recorded only.
      if (ctx.column.id !== 'reference' && fdsAfter > fdsBefore + 2) throw new Error(`tsshim open fds grew ${fdsBefore} -> ${fdsAfter} over 200 execs (slack +2)`);
      return { failedExecs: failed.length, zombies, stillWorks: after.stdout };
    },
    expect: (o) => (o.failedExecs === 0 && o.zombies === 0 && o.stillWorks === 'still-works\n' ? [] : [`${o.failedExecs} execs failed, ${o.zombies} zombies, after: ${JSON.stringify(o.stillWorks)}`]),
  },
];
