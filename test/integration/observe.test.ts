// Issue 13.4 (ADR 0025), pod mode through a private real containerd (TSSHIM_CONTAINERD, default
// 1.6) and the real ctr: each pod shim serves Prometheus text on <pod_dir>/<its socket>.sock
// (tasks by handler and state, RPCs by method and code, backend command durations and a failing
// command), exports one span per RPC with a child per backend command to a local OTLP/HTTP
// receiver, and logs into containerd's log in the format runc-v2's lines have there.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { waitFor } from '../helpers/proc.js';
import { TSSHIM, RUNC_V2, bundleDir } from '../helpers/tasks.js';
import { Client } from 'ttrpc-ts';
import { SERVICE, task } from '../../src/shim-api/pb.js';
import { scrape, startReceiver, sumOf, type Receiver, type ReceivedSpan } from '../../src/observe/testing.js';

interface Ctx {
  cd: PrivateContainerd;
  image: string;
  dir: string;
  podDir: string;
  receiver: Receiver;
  savedConfig: string | undefined;
}
const t = suite<Ctx>('observe-pod');

t.before(async (ctx) => {
  ctx.receiver = await startReceiver();
  ctx.dir = mkdtempSync('/run/tsshim-observe-');
  ctx.podDir = join(ctx.dir, 'metrics');
  const config = join(ctx.dir, 'config.toml');
  writeFileSync(config, `handler = "runc"\n\n[metrics]\npod_dir = "${ctx.podDir}"\n\n[tracing]\nendpoint = "${ctx.receiver.url}/v1/traces"\n`);
  ctx.savedConfig = process.env.TSSHIM_CONFIG;
  process.env.TSSHIM_CONFIG = config; // containerd passes its environment to the shims it starts
  // debug: containerd passes -debug to its shims, and runc-v2 logs its "starting signal loop" line
  // (namespace, path, pid, runtime), the reference for ours.
  ctx.cd = await startContainerd({ name: 'observe', debug: true });
  ctx.image = await importTestImage(ctx.cd);
});
t.after(async (ctx) => {
  await ctx.cd?.stop();
  await ctx.receiver?.close();
  if (ctx.savedConfig === undefined) delete process.env.TSSHIM_CONFIG;
  else process.env.TSSHIM_CONFIG = ctx.savedConfig;
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

async function removeTask(cd: PrivateContainerd, id: string): Promise<void> {
  await cd.ctr(['task', 'kill', '-s', 'KILL', id]);
  await waitFor(async () => /STOPPED/.test((await cd.ctr(['task', 'ls'])).stdout.split('\n').find((l) => l.startsWith(`${id} `)) ?? 'STOPPED'), 10_000);
  await cd.ctr(['task', 'rm', id]);
  await cd.ctr(['c', 'rm', id]);
}

/** logfmt line -> ordered [key, value] pairs (values unquoted). */
function logfmtPairs(line: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push([m[1]!, m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!]);
  return out;
}

t('pod mode: one metrics socket per pod shim with tasks, RPC counts by code, backend command durations and failures', async ({ cd, image, podDir }) => {
  const id = uniqueId('obs');
  const r = await cd.ctr(['run', '-d', '--runtime', TSSHIM, image, id, 'sleep', '300']);
  assert.is(r.exitCode, 0, r.stderr);
  const address = readFileSync(join(bundleDir(cd, id), 'address'), 'utf8');
  const shimSock = address.slice('unix://'.length);
  const metricsSock = join(podDir, `${basename(shimSock)}.sock`);
  assert.ok(await waitFor(() => existsSync(metricsSock), 10_000), `the pod's metrics socket ${metricsSock} appears`);
  // A backend command that fails: the exec's `runc exec` of a binary that does not exist.
  const ex = await cd.ctr(['task', 'exec', '--exec-id', 'bad', id, '/does-not-exist']);
  assert.is.not(ex.exitCode, 0, 'the exec fails');
  // A request answered NotFound, straight on the shim's socket.
  const client = await Client.connect(shimSock);
  try {
    await client.call(SERVICE.Task, 'State', task.StateRequest.encode({ id: 'no-such-task', execId: '' }).finish(), { metadata: { 'containerd-namespace': cd.namespace } }).then(
      () => assert.unreachable('State of an unknown task'),
      (err: Error) => assert.match(err.message, /not found/),
    );
  } finally {
    client.close();
  }
  const got = await scrape(`unix://${metricsSock}`);
  assert.is(got.status, 200);
  assert.is(got.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  const m = got.body;
  assert.is(sumOf(m, 'tsshim_tasks', { handler: 'runc', state: 'running' }), 1, `one running runc task:\n${m}`);
  assert.is(sumOf(m, 'tsshim_rpc_requests_total', { method: 'Create', code: 'OK' }), 1);
  assert.ok(sumOf(m, 'tsshim_rpc_requests_total', { method: 'Start', code: 'OK' }) >= 1);
  assert.is(sumOf(m, 'tsshim_rpc_requests_total', { method: 'State', code: 'NotFound' }), 1);
  const failedStarts = sumOf(m, 'tsshim_rpc_requests_total', { method: 'Start' }) - sumOf(m, 'tsshim_rpc_requests_total', { method: 'Start', code: 'OK' });
  assert.is(failedStarts, 1, "the exec's Start answered with an error code");
  assert.ok(sumOf(m, 'tsshim_rpc_duration_seconds_count', { method: 'Create' }) === 1, 'Create latency observed');
  assert.is(sumOf(m, 'tsshim_backend_command_duration_seconds_count', { handler: 'runc', command: 'create' }), 1);
  assert.is(sumOf(m, 'tsshim_backend_command_failures_total', { handler: 'runc', command: 'exec', reason: 'exit' }), 1, `the failing runc exec is counted:\n${m}`);
  assert.is(sumOf(m, 'tsshim_backend_command_failures_total', { command: 'create' }), 0);
  assert.ok(sumOf(m, 'tsshim_events_published_total', { topic: '/tasks/create' }) >= 1, 'events counted');
  assert.is(sumOf(m, 'tsshim_build_info', { mode: 'pod', role: 'shim' }), 1);
  await removeTask(cd, id);
  assert.ok(await waitFor(() => !existsSync(metricsSock), 10_000), 'the socket goes with its shim');
});

t("logs: tsshim's lines in containerd's log are logrus text with runc-v2's keys, like runc-v2's own lines", async ({ cd, image }) => {
  const from = readFileSync(cd.logFile).length;
  const ids = [uniqueId('obs-log'), uniqueId('obs-rv2')];
  for (const [id, rt] of [[ids[0]!, TSSHIM], [ids[1]!, RUNC_V2]] as const) {
    const r = await cd.ctr(['run', '-d', '--runtime', rt, image, id, 'sleep', '300']);
    assert.is(r.exitCode, 0, r.stderr);
  }
  for (const id of ids) await removeTask(cd, id);
  const lines = readFileSync(cd.logFile).subarray(from).toString('utf8').split('\n');
  const ours = lines.filter((l) => l.includes(`runtime=${TSSHIM}`));
  const theirs = lines.filter((l) => l.includes(`runtime=${RUNC_V2}`));
  assert.ok(ours.length > 0, 'tsshim logged into containerd\'s log');
  assert.ok(theirs.length > 0, `runc-v2 logged into containerd's log (its lines are the reference): ${lines.slice(-20).join('\n')}`);
  assert.not.ok(lines.some((l) => l.startsWith('{') && l.includes(TSSHIM)), 'no raw JSON line of ours');
  const shape = (l: string) => {
    const p = logfmtPairs(l);
    return { first: p.slice(0, 3).map(([k]) => k), keys: new Set(p.map(([k]) => k)), time: p[0]?.[1] ?? '', rest: p.slice(3).map(([k]) => k) };
  };
  const signalLoop = theirs.find((l) => l.includes('msg="starting signal loop"'));
  assert.ok(signalLoop, `runc-v2's "starting signal loop" line: ${theirs.join('\n')}`);
  const ref = shape(signalLoop!);
  assert.equal(ref.first, ['time', 'level', 'msg'], `runc-v2's line: ${signalLoop}`);
  for (const k of ['runtime', 'namespace', 'pid']) assert.ok(ref.keys.has(k), `runc-v2 logs ${k}: ${signalLoop}`);
  const timeRe = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$/;
  assert.match(ref.time, timeRe, "runc-v2's time format");
  for (const l of ours) {
    const s = shape(l);
    assert.equal(s.first, ['time', 'level', 'msg'], l);
    assert.match(s.time, timeRe, l);
    assert.equal(s.rest, [...s.rest].sort(), `fields sorted as logrus sorts them: ${l}`);
    for (const k of ['runtime', 'namespace', 'pid']) assert.ok(s.keys.has(k), `${k} in ${l}`);
  }
  // The keys runc-v2's lines carry (runtime, namespace, pid...) are on ours with the same meaning.
  const serving = ours.find((l) => l.includes('msg="shim serving"'))!;
  assert.ok(serving, 'the shim serving line');
  const p = new Map(logfmtPairs(serving));
  assert.is(p.get('namespace'), cd.namespace);
  assert.is(p.get('level'), 'info');
  assert.match(p.get('pid') ?? '', /^\d+$/);
  for (const k of [...ref.keys].filter((k) => ['runtime', 'namespace', 'pid'].includes(k))) assert.ok(p.has(k), `runc-v2's key ${k}`);
  assert.is(p.get('runtime'), TSSHIM);
  const refPairs = new Map(logfmtPairs(signalLoop!));
  assert.is(refPairs.get('namespace'), cd.namespace, 'same namespace value as runc-v2 writes');
  process.stdout.write(`\nrunc-v2: ${signalLoop}\ntsshim:  ${serving}\n`);
});

t('traces: one span per RPC, a child span per backend command, the failing one marked', async ({ cd, image, receiver }) => {
  const id = uniqueId('obs-tr');
  const r = await cd.ctr(['run', '-d', '--runtime', TSSHIM, image, id, 'sleep', '300']);
  assert.is(r.exitCode, 0, r.stderr);
  const ex = await cd.ctr(['task', 'exec', '--exec-id', 'bad', id, '/does-not-exist']);
  assert.is.not(ex.exitCode, 0);
  await removeTask(cd, id);
  const ofTask = () => receiver.spans.filter((s) => s.service === 'tsshim' && s.attributes['tsshim.task.id'] === id);
  const find = (name: string, pred: (s: ReceivedSpan) => boolean = () => true) => ofTask().find((s) => s.name === name && pred(s));
  assert.ok(await waitFor(() => find('containerd.task.v2.Task/Delete') !== undefined, 15_000), `spans arrive (${receiver.spans.length} so far)`);
  const create = find('containerd.task.v2.Task/Create')!;
  assert.ok(create, 'a Create span');
  assert.is(create.kind, 2, 'server span');
  assert.is(create.attributes['rpc.system'], 'ttrpc');
  assert.is(create.attributes['rpc.ttrpc.status_code'], 0);
  const children = (p: ReceivedSpan) => receiver.spans.filter((s) => s.parentSpanId === p.spanId && s.traceId === p.traceId);
  const runcCreate = children(create).find((s) => s.name === 'runc create');
  assert.ok(runcCreate, `runc create is a child of Create: ${children(create).map((s) => s.name)}`);
  assert.ok(runcCreate!.start >= create.start && runcCreate!.end <= create.end);
  const execStart = find('containerd.task.v2.Task/Start', (s) => s.attributes['tsshim.exec.id'] === 'bad')!;
  assert.ok(execStart, "the exec's Start span");
  assert.is.not(execStart.attributes['rpc.ttrpc.status_code'], 0);
  const runcExec = children(execStart).find((s) => s.name === 'runc exec');
  assert.ok(runcExec, 'runc exec is its child');
  assert.is(runcExec!.status.code, 2, 'the failed command is an error span');
  assert.match(runcExec!.status.message, /exit status/);
});

t.run();
