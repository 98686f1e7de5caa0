// Misuse: the error containerd's clients branch on (gRPC status through containerd) and its
// message, ids replaced by <id>.
import { randomBytes } from 'node:crypto';
import type { Scenario } from '../types.js';
import { classOf, ok, outcome, runSleeper, waitStatus } from './util.js';

const PROCESS_SPEC_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';
const processSpec = (args: string[]) => ({
  typeUrl: PROCESS_SPEC_URL,
  value: Buffer.from(JSON.stringify({ args, cwd: '/', env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], user: { uid: 0, gid: 0 }, terminal: false })),
});
const T = { timeoutMs: 10_000 };

export const misuseScenarios: Scenario[] = [
  {
    id: 'misuse-start-twice',
    group: 'misuse',
    title: 'Start (gRPC) of an init that is already running: error and message',
    async run(ctx) {
      const id = ctx.uniqueId('st2');
      await runSleeper(ctx, id);
      const second = await outcome(ctx.client.tasks.start({ containerId: id }, T), { [id]: '<id>' });
      return { secondStart: second, stillRunning: (await waitStatus(ctx, id, 'RUNNING', 1000)) === 'RUNNING' };
    },
    expect: (o) => (o.secondStart !== 'OK' ? [] : ['second Start succeeded']),
  },
  {
    id: 'misuse-delete-running',
    group: 'misuse',
    title: 'Delete (gRPC) of a running task: error and message, task keeps running',
    async run(ctx) {
      const id = ctx.uniqueId('delr');
      await runSleeper(ctx, id);
      const del = await outcome(ctx.client.tasks.delete({ containerId: id }, T), { [id]: '<id>' });
      return { delete: del, stillRunning: (await waitStatus(ctx, id, 'RUNNING', 1000)) === 'RUNNING' };
    },
    expect: (o) => (o.delete !== 'OK' && o.stillRunning === true ? [] : [`delete ${o.delete}, running ${o.stillRunning}`]),
  },
  {
    id: 'misuse-exited-init',
    group: 'misuse',
    title: 'Kill (NotFound: the only class CRI ignores), Kill all, Start and Exec (gRPC) of an exited, not yet deleted init',
    async run(ctx) {
      const id = ctx.uniqueId('kex');
      ok(await ctx.ctr.run(id, ['true'], { detach: true }), 'ctr run -d true');
      const st = await waitStatus(ctx, id, 'STOPPED');
      const r = { [id]: '<id>' };
      return {
        status: st,
        kill: await outcome(ctx.client.tasks.kill({ containerId: id, signal: 9 }, T), r),
        killAll: await outcome(ctx.client.tasks.kill({ containerId: id, signal: 9, all: true }, T), r),
        start: await outcome(ctx.client.tasks.start({ containerId: id }, T), r),
        exec: await outcome(ctx.client.tasks.exec({ containerId: id, execId: 'late', spec: processSpec(['true']) }, T), r),
      };
    },
    expect: (o) => [
      ...(classOf(o.kill) === 'NotFound' ? [] : [`Kill of an exited init: ${o.kill}, expected NotFound`]),
      ...(o.start !== 'OK' ? [] : ['Start of an exited init succeeded']),
    ],
  },
  {
    id: 'misuse-duplicate-exec-id',
    group: 'misuse',
    title: 'Exec (gRPC) with the id of an exec that already exists: AlreadyExists',
    requires: ['exec'],
    async run(ctx) {
      const id = ctx.uniqueId('dup');
      await runSleeper(ctx, id);
      const r = { [id]: '<id>' };
      const first = await outcome(ctx.client.tasks.exec({ containerId: id, execId: 'dup', spec: processSpec(['sleep', '300']) }, T), r);
      const second = await outcome(ctx.client.tasks.exec({ containerId: id, execId: 'dup', spec: processSpec(['true']) }, T), r);
      return { first, second };
    },
    expect: (o) => (o.first === 'OK' && classOf(o.second) === 'AlreadyExists' ? [] : [`first ${o.first}, second ${o.second}`]),
  },
  {
    id: 'misuse-unknown-exec',
    group: 'misuse',
    title: 'Kill, Start, Get, DeleteProcess and Wait (gRPC) naming an exec id that does not exist: errors and messages, the task keeps running',
    async run(ctx) {
      const id = ctx.uniqueId('unk');
      await runSleeper(ctx, id);
      const q = { containerId: id, execId: 'nope' };
      const r = { [id]: '<id>' };
      return {
        kill: await outcome(ctx.client.tasks.kill({ ...q, signal: 15 }, T), r),
        start: await outcome(ctx.client.tasks.start(q, T), r),
        get: await outcome(ctx.client.tasks.get(q, T), r),
        deleteProcess: await outcome(ctx.client.tasks.deleteProcess(q, T), r),
        wait: await outcome(ctx.client.tasks.wait(q, T), r),
        stillRunning: (await waitStatus(ctx, id, 'RUNNING', 1000)) === 'RUNNING',
      };
    },
    expect: (o) => {
      const { stillRunning, ...calls } = o;
      return [
        ...(Object.values(calls).every((v) => v !== 'OK') ? [] : [`some call succeeded: ${JSON.stringify(calls)}`]),
        ...(stillRunning === true ? [] : ['the task did not survive']),
      ];
    },
  },
  {
    id: 'misuse-no-task',
    group: 'misuse',
    title: 'Get and Kill (gRPC) of a container without a task, Get of a name nothing has: errors and messages',
    async run(ctx) {
      const bare = ctx.uniqueId('bare');
      ok(await ctx.ctr.createContainer(bare, ['true']), 'ctr c create');
      const ghost = `ghost-${randomBytes(4).toString('hex')}`;
      return {
        getNoTask: await outcome(ctx.client.tasks.get({ containerId: bare }, T), { [bare]: '<id>' }),
        killNoTask: await outcome(ctx.client.tasks.kill({ containerId: bare, signal: 9 }, T), { [bare]: '<id>' }),
        getUnknown: await outcome(ctx.client.tasks.get({ containerId: ghost }, T), { [ghost]: '<ghost>' }),
      };
    },
    expect: (o) => (o.getNoTask !== 'OK' && o.getUnknown !== 'OK' ? [] : [`Get without a task: ${o.getNoTask}, of nothing: ${o.getUnknown}`]),
  },
];
