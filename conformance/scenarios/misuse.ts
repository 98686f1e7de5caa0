// Misuse: the error class containerd's clients branch on (gRPC status through containerd).
import type { Scenario } from '../types.js';
import { outcome, ok, runSleeper, waitStatus } from './util.js';

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
    title: 'Start (gRPC) of an init that is already running: error class',
    async run(ctx) {
      const id = ctx.uniqueId('st2');
      await runSleeper(ctx, id);
      const second = await outcome(ctx.client.tasks.start({ containerId: id }, T), ctx, 'message');
      return { secondStart: second, stillRunning: (await waitStatus(ctx, id, 'RUNNING', 1000)) === 'RUNNING' };
    },
    expect: (o) => (o.secondStart !== 'OK' ? [] : ['second Start succeeded']),
  },
  {
    id: 'misuse-delete-running',
    group: 'misuse',
    title: 'Delete (gRPC) of a running task: error class, task keeps running',
    async run(ctx) {
      const id = ctx.uniqueId('delr');
      await runSleeper(ctx, id);
      const del = await outcome(ctx.client.tasks.delete({ containerId: id }, T), ctx, 'message');
      return { delete: del, stillRunning: (await waitStatus(ctx, id, 'RUNNING', 1000)) === 'RUNNING' };
    },
    expect: (o) => (o.delete !== 'OK' && o.stillRunning === true ? [] : [`delete ${o.delete}, running ${o.stillRunning}`]),
  },
  {
    id: 'misuse-kill-exited',
    group: 'misuse',
    title: 'Kill (gRPC) of an exited, not yet deleted init: NotFound (the only class CRI ignores)',
    async run(ctx) {
      const id = ctx.uniqueId('kex');
      ok(await ctx.ctr.run(id, ['true'], { detach: true }), 'ctr run -d true');
      const st = await waitStatus(ctx, id, 'STOPPED');
      const kill = await outcome(ctx.client.tasks.kill({ containerId: id, signal: 9 }, T), ctx, 'message');
      const killAll = await outcome(ctx.client.tasks.kill({ containerId: id, signal: 9, all: true }, T), ctx, 'messageAll');
      return { status: st, kill, killAll };
    },
    expect: (o) => (o.kill === 'NotFound' ? [] : [`Kill of an exited init: ${o.kill}, expected NotFound`]),
  },
  {
    id: 'misuse-duplicate-exec-id',
    group: 'misuse',
    title: 'Exec (gRPC) with the id of an exec that already exists: AlreadyExists',
    requires: ['exec'],
    async run(ctx) {
      const id = ctx.uniqueId('dup');
      await runSleeper(ctx, id);
      const first = await outcome(ctx.client.tasks.exec({ containerId: id, execId: 'dup', spec: processSpec(['sleep', '300']) }, T), ctx, 'firstMessage');
      const second = await outcome(ctx.client.tasks.exec({ containerId: id, execId: 'dup', spec: processSpec(['true']) }, T), ctx, 'message');
      return { first, second };
    },
    expect: (o) => (o.first === 'OK' && o.second === 'AlreadyExists' ? [] : [`first ${o.first}, second ${o.second}`]),
  },
  {
    id: 'misuse-unknown-exec',
    group: 'misuse',
    title: 'Kill, Start, Get, DeleteProcess and Wait (gRPC) naming an exec id that does not exist: error classes',
    async run(ctx) {
      const id = ctx.uniqueId('unk');
      await runSleeper(ctx, id);
      const q = { containerId: id, execId: 'nope' };
      return {
        kill: await outcome(ctx.client.tasks.kill({ ...q, signal: 15 }, T), ctx, 'killMessage'),
        start: await outcome(ctx.client.tasks.start(q, T), ctx, 'startMessage'),
        get: await outcome(ctx.client.tasks.get(q, T), ctx, 'getMessage'),
        deleteProcess: await outcome(ctx.client.tasks.deleteProcess(q, T), ctx, 'deleteMessage'),
        wait: await outcome(ctx.client.tasks.wait(q, T), ctx, 'waitMessage'),
      };
    },
    expect: (o) => (Object.values(o).every((v) => v !== 'OK') ? [] : [`some call succeeded: ${JSON.stringify(o)}`]),
  },
];
