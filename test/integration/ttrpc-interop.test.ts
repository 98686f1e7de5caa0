// Our ttrpc client against Go peers: containerd's ttrpc events service (Forward)
// and containerd-shim-runc-v2's task API. (containerd calling our server is what
// every ctr test does.)
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { Client, Code, TtrpcError } from 'ttrpc-ts';
import { eventsService, events, task, packAny, timestampFromDate, TYPE_URL, SERVICE, Status } from '../../src/shim-api/pb.js';
import { startContainerd, importTestImage, uniqueId, type PrivateContainerd } from '../helpers/containerd.js';
import { waitFor } from '../helpers/proc.js';
import { collectEvents, bundleDir, taskStatus, RUNC_V2 } from '../helpers/tasks.js';

const t = suite<{ cd: PrivateContainerd; image: string }>('ttrpc-interop');
t.before(async (ctx) => {
  ctx.cd = await startContainerd({ name: 'interop' });
  ctx.image = await importTestImage(ctx.cd);
});
t.after(async (ctx) => ctx.cd?.stop());

t('our client -> containerd ttrpc Events.Forward: the event reaches ctr events', async ({ cd }) => {
  const ev = collectEvents(cd);
  await ev.ready;
  const client = await Client.connect(cd.ttrpcAddress);
  try {
    const req = eventsService.ForwardRequest.encode({
      envelope: {
        timestamp: timestampFromDate(new Date()),
        namespace: cd.namespace,
        topic: '/tasks/oom',
        event: packAny(TYPE_URL.TaskOOM, events.TaskOOM, { containerId: 'interop-oom' }),
      },
    }).finish();
    const res = await client.call(SERVICE.Events, 'Forward', req, { timeoutMs: 5000, metadata: { 'containerd-namespace': cd.namespace } });
    assert.is(res.length, 0, 'Empty reply');
    assert.ok(await waitFor(() => ev.lines().some((e) => e.topic === '/tasks/oom' && e.body.container_id === 'interop-oom'), 5000));
    // containerd validates the envelope: a bad topic is refused with its own status
    const bad = eventsService.ForwardRequest.encode({
      envelope: { timestamp: timestampFromDate(new Date()), namespace: cd.namespace, topic: 'no-slash', event: packAny(TYPE_URL.TaskOOM, events.TaskOOM, { containerId: 'x' }) },
    }).finish();
    try {
      await client.call(SERVICE.Events, 'Forward', bad, { timeoutMs: 5000 });
      assert.unreachable('bad topic accepted');
    } catch (err) {
      assert.instance(err, TtrpcError);
      assert.ok([Code.InvalidArgument, Code.Unknown].includes((err as TtrpcError).code), (err as Error).message);
    }
  } finally {
    client.close();
    await ev.stop();
  }
});

t('our client -> containerd-shim-runc-v2 task API: State, Connect, Pids of a task runc-v2 started', async ({ cd, image }) => {
  const id = uniqueId('interop');
  const r = await cd.ctr(['run', '-d', '--runtime', RUNC_V2, image, id, 'sleep', '300']);
  assert.is(r.exitCode, 0, r.stderr);
  const row = (await taskStatus(cd, id))!;
  const address = fs.readFileSync(`${bundleDir(cd, id)}/address`, 'utf8').trim();
  const client = await Client.connect(address.replace(/^unix:\/\//, ''));
  try {
    const md = { 'containerd-namespace': cd.namespace };
    const st = task.StateResponse.decode(await client.call(SERVICE.Task, 'State', task.StateRequest.encode({ id, execId: '' }).finish(), { metadata: md, timeoutMs: 5000 }));
    assert.is(st.id, id);
    assert.is(st.pid, row.pid);
    assert.is(st.status, Status.RUNNING);
    const cn = task.ConnectResponse.decode(await client.call(SERVICE.Task, 'Connect', task.ConnectRequest.encode({ id }).finish(), { metadata: md }));
    assert.is(cn.taskPid, row.pid);
    assert.ok(cn.shimPid > 0);
    const ps = task.PidsResponse.decode(await client.call(SERVICE.Task, 'Pids', task.PidsRequest.encode({ id }).finish(), { metadata: md }));
    assert.ok(ps.processes.some((p) => p.pid === row.pid));
    // a Go server's error statuses decode: unknown exec -> NotFound
    try {
      await client.call(SERVICE.Task, 'State', task.StateRequest.encode({ id, execId: 'nope' }).finish(), { metadata: md });
      assert.unreachable();
    } catch (err) {
      assert.instance(err, TtrpcError);
      assert.is((err as TtrpcError).code, Code.NotFound);
    }
    // and an unknown method -> Unimplemented from the Go side
    try {
      await client.call(SERVICE.Task, 'Frobnicate', new Uint8Array(), { metadata: md });
      assert.unreachable();
    } catch (err) {
      assert.is((err as TtrpcError).code, Code.Unimplemented);
    }
  } finally {
    client.close();
    await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    await waitFor(async () => (await taskStatus(cd, id))?.status === 'STOPPED', 10_000);
    await cd.ctr(['task', 'rm', id]);
    await cd.ctr(['c', 'rm', id]);
  }
});

t.run();
