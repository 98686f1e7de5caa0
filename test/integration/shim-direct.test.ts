// The shim driven directly over our ttrpc client, as containerd would, without
// containerd: start/delete subcommands, bad input, error codes, events on the wire.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Client, Code, Server, TtrpcError, encodeFrame } from 'ttrpc-ts';
import { task, eventsService, events, runcOptions, packAny, TYPE_URL, SERVICE, Status } from '../../src/shim-api/pb.js';
import { makeBundle } from '../helpers/bundle.js';
import { REPO_ROOT, waitFor, isAlive } from '../helpers/proc.js';
import { mkfifo } from '../../src/sys/libc.js';

const SHIM = path.join(REPO_ROOT, 'bin', 'containerd-shim-tsshim-v2');
/** The Node shim without the sh launcher (ADR 0008): the classic start, delete through Node. */
const NODE_SHIM = [path.join(REPO_ROOT, 'dist', 'bundle', 'containerd-shim-tsshim-v2')];
const NS = 'tsshim-direct';

interface Ctx {
  dir: string;
  events: Array<{ topic: string; event: { typeUrl: string; value: Uint8Array } }>;
  eventServer: Server;
  eventsSock: string;
  fakeAddress: string;
  logFds: number[];
}
const t = suite<Ctx>('shim-direct');

t.before(async (ctx) => {
  ctx.dir = fs.mkdtempSync('/run/tsshim-direct-');
  ctx.events = [];
  ctx.logFds = [];
  ctx.eventsSock = path.join(ctx.dir, 'events.sock');
  ctx.fakeAddress = path.join(ctx.dir, 'containerd.sock');
  ctx.eventServer = new Server();
  ctx.eventServer.register(SERVICE.Events, {
    Forward: async (payload) => {
      const req = eventsService.ForwardRequest.decode(payload);
      ctx.events.push({ topic: req.envelope!.topic, event: req.envelope!.event! });
      return undefined;
    },
  });
  await ctx.eventServer.listen(ctx.eventsSock);
});
t.after(async (ctx) => {
  await ctx.eventServer.close();
  for (const fd of ctx.logFds) fs.closeSync(fd);
  fs.rmSync(ctx.dir, { recursive: true, force: true });
});

function newBundle(ctx: Ctx, id: string, args: string[]): string {
  const b = makeBundle(path.join(ctx.dir, id), { args, hostNetwork: true });
  mkfifo(path.join(b, 'log'), 0o600);
  // containerd keeps a reader on the log FIFO; so do we.
  ctx.logFds.push(fs.openSync(path.join(b, 'log'), fs.constants.O_RDWR | fs.constants.O_NONBLOCK));
  return b;
}

function shimStart(ctx: Ctx, bundle: string, id: string, stdin: Buffer = Buffer.alloc(0), launcher = true) {
  const args = ['-namespace', NS, '-address', ctx.fakeAddress, '-publish-binary', '/bin/false', '-id', id, 'start'];
  return spawnSync(launcher ? SHIM : process.execPath, launcher ? args : [...NODE_SHIM, ...args], {
    cwd: bundle,
    input: stdin,
    env: { ...process.env, TTRPC_ADDRESS: ctx.eventsSock },
    encoding: 'buffer',
  });
}

async function expectCode(p: Promise<unknown>, code: Code, match?: RegExp): Promise<TtrpcError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, TtrpcError);
    assert.is((err as TtrpcError).code, code, `${(err as Error).message}`);
    if (match) assert.match((err as Error).message, match);
    return err as TtrpcError;
  }
  assert.unreachable(`expected ttrpc code ${Code[code]}`);
  throw new Error('unreachable');
}

const call = <T>(c: Client, method: string, codec: { encode(m: any): { finish(): Uint8Array }; fromPartial(m: any): any }, req: unknown, resCodec?: { decode(b: Uint8Array): T }) =>
  c.call(SERVICE.Task, method, codec.encode(codec.fromPartial(req)).finish()).then((b) => (resCodec ? resCodec.decode(b) : (b as unknown as T)));

t('start prints only a unix:// address, tolerates malformed options on stdin, and the socket is listening', async (ctx) => {
  const id = 'direct1';
  const bundle = newBundle(ctx, id, ['sh', '-c', 'echo hello > /tmp/x; exit 7']);
  const r = shimStart(ctx, bundle, id, Buffer.from([0xff, 0x00, 0x13, 0x37]));
  assert.is(r.status, 0, r.stderr.toString());
  assert.is(r.stderr.length, 0, 'nothing on stderr');
  const address = r.stdout.toString();
  assert.match(address, /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
  assert.is(fs.readFileSync(path.join(bundle, 'address'), 'utf8'), address);
  const client = await Client.connect(address.slice('unix://'.length));
  try {
    // bad ids: InvalidArgument, nothing created
    for (const bad of ['../x', 'a/b', 'a\0b']) {
      await expectCode(call(client, 'Create', task.CreateTaskRequest, { id: bad, bundle }), Code.InvalidArgument, /identifier|id/);
      await expectCode(call(client, 'State', task.StateRequest, { id: bad }), Code.InvalidArgument);
    }
    await expectCode(call(client, 'State', task.StateRequest, { id: 'nosuch' }), Code.NotFound);
    await expectCode(client.call(SERVICE.Task, 'Frobnicate', new Uint8Array()), Code.Unimplemented, /Frobnicate/);
    await expectCode(client.call('containerd.task.v3.Nope', 'State', new Uint8Array()), Code.Unimplemented);
    // missing runtime binary: FailedPrecondition naming it; nothing mounted, shim still serving
    const opts = packAny(TYPE_URL.RuncOptions, runcOptions.Options, runcOptions.Options.fromPartial({ binaryName: '/nonexistent/runc-missing' }));
    await expectCode(call(client, 'Create', task.CreateTaskRequest, { id, bundle, options: opts }), Code.FailedPrecondition, /runc-missing/);
    // invalid spec: InvalidArgument
    const badBundle = path.join(ctx.dir, 'badspec');
    fs.mkdirSync(badBundle);
    fs.writeFileSync(path.join(badBundle, 'config.json'), '{not json');
    await expectCode(call(client, 'Create', task.CreateTaskRequest, { id: 'badspec', bundle: badBundle }), Code.InvalidArgument, /invalid OCI spec/);

    // a malformed frame on another connection does not disturb this one
    const raw = net.connect(address.slice('unix://'.length));
    await new Promise((res) => raw.once('connect', res));
    raw.write(Buffer.from([0, 0, 0, 5, 0, 0, 0, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff]));
    raw.write(encodeFrame(2, 1, 0, new Uint8Array([1, 2, 3])));
    await new Promise((res) => setTimeout(res, 100));
    raw.destroy();

    // a real task: file:// stdout, exit 7
    const out = path.join(ctx.dir, 'direct1.out');
    const created = await call(client, 'Create', task.CreateTaskRequest, { id, bundle, stdout: `file://${out}`, stderr: `file://${out}` }, task.CreateTaskResponse);
    assert.ok(created.pid > 0);
    const state = await call(client, 'State', task.StateRequest, { id }, task.StateResponse);
    assert.is(state.status, Status.CREATED);
    const waiting = call(client, 'Wait', task.WaitRequest, { id }, task.WaitResponse);
    const started = await call(client, 'Start', task.StartRequest, { id }, task.StartResponse);
    assert.is(started.pid, created.pid);
    const waited = await waiting;
    assert.is(waited.exitStatus, 7);
    await expectCode(call(client, 'Start', task.StartRequest, { id }), Code.Unknown, /cannot start/);
    await expectCode(call(client, 'Kill', task.KillRequest, { id, signal: 9 }), Code.NotFound, /already finished/);
    const conn = await call(client, 'Connect', task.ConnectRequest, { id }, task.ConnectResponse);
    assert.is(conn.taskPid, created.pid);
    assert.ok(conn.shimPid > 0 && isAlive(conn.shimPid));
    const del = await call(client, 'Delete', task.DeleteRequest, { id }, task.DeleteResponse);
    assert.is(del.exitStatus, 7);
    assert.is(del.pid, created.pid);
    await expectCode(call(client, 'Delete', task.DeleteRequest, { id }), Code.NotFound);
    await call(client, 'Shutdown', task.ShutdownRequest, { id });
    assert.ok(await waitFor(() => !isAlive(conn.shimPid), 5000), 'shim exits after Shutdown with no task left');
    assert.not.ok(fs.existsSync(address.slice('unix://'.length)), 'socket removed');
    // events on the wire, in order
    await waitFor(() => ctx.events.length >= 4, 3000);
    const topics = ctx.events.map((e) => e.topic);
    assert.equal(topics, ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    const exit = events.TaskExit.decode(ctx.events[2]!.event.value);
    assert.equal({ containerId: exit.containerId, id: exit.id, pid: exit.pid, exitStatus: exit.exitStatus }, { containerId: id, id, pid: created.pid, exitStatus: 7 });
  } finally {
    client.close();
  }
});

t('stdin FIFO: data reaches cat, CloseIO delivers EOF, output FIFO gets it all', async (ctx) => {
  const id = 'direct3';
  const bundle = newBundle(ctx, id, ['cat']);
  const r = shimStart(ctx, bundle, id);
  assert.is(r.status, 0, r.stderr.toString());
  const client = await Client.connect(r.stdout.toString().slice('unix://'.length));
  const stdin = path.join(ctx.dir, 'direct3.in');
  const stdout = path.join(ctx.dir, 'direct3.out');
  mkfifo(stdin, 0o600);
  mkfifo(stdout, 0o600);
  // as ctr does: the client opens its ends before Create
  const outSock = new net.Socket({ fd: fs.openSync(stdout, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK), readable: true, writable: false });
  let received = '';
  outSock.on('data', (b: Buffer) => (received += b.toString()));
  const eof = new Promise((res) => outSock.once('end', res));
  const inFd = fs.openSync(stdin, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  try {
    await call(client, 'Create', task.CreateTaskRequest, { id, bundle, stdin, stdout });
    const waiting = call(client, 'Wait', task.WaitRequest, { id }, task.WaitResponse);
    await call(client, 'Start', task.StartRequest, { id });
    fs.writeSync(inFd, 'hello through the fifo\n');
    fs.closeSync(inFd);
    await new Promise((res) => setTimeout(res, 200));
    const st = await call(client, 'State', task.StateRequest, { id }, task.StateResponse);
    assert.is(st.status, Status.RUNNING, 'cat still waits for EOF before CloseIO');
    await call(client, 'CloseIO', task.CloseIORequest, { id, stdin: true });
    const w = await waiting;
    assert.is(w.exitStatus, 0);
    await eof;
    assert.is(received, 'hello through the fifo\n');
    await call(client, 'Delete', task.DeleteRequest, { id });
    await call(client, 'Shutdown', task.ShutdownRequest, { id });
  } finally {
    client.close();
    outSock.destroy();
  }
});

for (const launcher of [true, false]) {
  const how = launcher ? 'launcher (start becomes the daemon, delete answered by sh)' : 'Node alone (start spawns a daemon, delete through Node)';
  t(`start and delete through the ${how}: one daemon serves, delete prints the daemon's DeleteResponse`, async (ctx) => {
    const id = launcher ? 'direct4' : 'direct5';
    const bundle = newBundle(ctx, id, ['sh', '-c', 'exit 5']);
    const r = shimStart(ctx, bundle, id, Buffer.alloc(0), launcher);
    assert.is(r.status, 0, r.stderr.toString());
    assert.is(r.stderr.length, 0, 'nothing on stderr');
    const address = r.stdout.toString();
    assert.match(address, /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
    const client = await Client.connect(address.slice('unix://'.length));
    try {
      const conn = await call(client, 'Connect', task.ConnectRequest, { id }, task.ConnectResponse);
      assert.ok(isAlive(conn.shimPid), 'the daemon runs');
      // spawnSync returned, so the start process has exited: the daemon must be another process,
      // in a session of its own (not tied to containerd's), and not a child of the start process.
      assert.is.not(conn.shimPid, r.pid, 'the daemon is not the start process');
      const stat = fs.readFileSync(`/proc/${conn.shimPid}/stat`, 'utf8');
      const [ppid, , session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(1, 4).map(Number);
      assert.is.not(ppid, r.pid, 'the daemon was re-parented away from the start process');
      assert.is(session, conn.shimPid, 'the daemon leads its own session');
      const cmdline = fs.readFileSync(`/proc/${conn.shimPid}/cmdline`, 'utf8').split('\0');
      assert.ok(cmdline.some((a) => a.endsWith('/containerd-shim-tsshim-v2')), `ps shows the shim's name: ${cmdline.join(' ')}`);
      assert.is(cmdline.filter(Boolean).at(-1), 'daemon');
      const created = await call(client, 'Create', task.CreateTaskRequest, { id, bundle }, task.CreateTaskResponse);
      const waiting = call(client, 'Wait', task.WaitRequest, { id }, task.WaitResponse);
      await call(client, 'Start', task.StartRequest, { id });
      assert.is((await waiting).exitStatus, 5);
      const del = await call(client, 'Delete', task.DeleteRequest, { id }, task.DeleteResponse);
      const marker = fs.readFileSync(path.join(bundle, 'tsshim-deleted.pb'));
      assert.equal(task.DeleteResponse.decode(marker), del, 'the bundle keeps the Delete answer');
      const delArgs = ['-namespace', NS, '-address', ctx.fakeAddress, '-publish-binary', '/bin/false', '-id', id, '-bundle', bundle, 'delete'];
      const d = spawnSync(launcher ? SHIM : process.execPath, launcher ? delArgs : [...NODE_SHIM, ...delArgs], { cwd: '/', encoding: 'buffer' });
      assert.is(d.status, 0, d.stderr.toString());
      assert.equal(d.stdout, marker, 'delete prints exactly those bytes');
      assert.equal({ pid: del.pid, exitStatus: del.exitStatus }, { pid: created.pid, exitStatus: 5 });
      await call(client, 'Shutdown', task.ShutdownRequest, { id });
      assert.ok(await waitFor(() => !isAlive(conn.shimPid), 5000), 'shim exits after Shutdown');
    } finally {
      client.close();
    }
  });
}

t('launcher start of a second task of the same pod joins the pod\'s shim', async (ctx) => {
  const annotations = { 'io.kubernetes.cri.sandbox-id': 'direct-pod' };
  const a = newBundle(ctx, 'direct6', ['sleep', '100']);
  const b = newBundle(ctx, 'direct7', ['sleep', '100']);
  for (const dir of [a, b]) {
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    spec.annotations = annotations;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
  }
  const r1 = shimStart(ctx, a, 'direct6');
  assert.is(r1.status, 0, r1.stderr.toString());
  const r2 = shimStart(ctx, b, 'direct7');
  assert.is(r2.status, 0, r2.stderr.toString());
  assert.is(r2.stdout.toString(), r1.stdout.toString(), 'same address');
  assert.is(fs.readFileSync(path.join(b, 'address'), 'utf8'), r1.stdout.toString());
  const client = await Client.connect(r1.stdout.toString().slice('unix://'.length));
  try {
    const c1 = await call(client, 'Connect', task.ConnectRequest, { id: 'direct6' }, task.ConnectResponse);
    const daemonList = () =>
      fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
          return argv.includes(ctx.fakeAddress) && argv.includes('daemon');
        } catch {
          return false;
        }
      });
    // the second start (argv ends in `daemon` too) answers, then exits: give it that moment under load
    await waitFor(() => daemonList().length === 1, 10_000);
    assert.equal(daemonList(), [String(c1.shimPid)], 'one daemon for the pod');
    await call(client, 'Shutdown', task.ShutdownRequest, { id: 'direct6' });
    assert.ok(await waitFor(() => !isAlive(c1.shimPid), 5000), 'shim exits after Shutdown');
  } finally {
    client.close();
  }
});

t('delete subcommand prints exactly one DeleteResponse and is idempotent', async (ctx) => {
  const id = 'direct2';
  const bundle = newBundle(ctx, id, ['sleep', '100']);
  fs.writeFileSync(path.join(bundle, 'init.pid'), '4242');
  for (let i = 0; i < 2; i++) {
    const r = spawnSync(SHIM, ['-namespace', NS, '-address', ctx.fakeAddress, '-publish-binary', '/bin/false', '-id', id, '-bundle', bundle, 'delete'], { cwd: bundle, encoding: 'buffer' });
    assert.is(r.status, 0, r.stderr.toString());
    const resp = task.DeleteResponse.decode(r.stdout);
    assert.is(resp.pid, 4242);
    assert.is(resp.exitStatus, 137);
    assert.ok(resp.exitedAt && resp.exitedAt.seconds > 1_700_000_000);
    assert.equal(Buffer.from(task.DeleteResponse.encode(resp).finish()), r.stdout, 'stdout is exactly the message');
  }
});

t('-v prints a version and exits 0', () => {
  const r = spawnSync(SHIM, ['-v'], { encoding: 'utf8' });
  assert.is(r.status, 0);
  assert.match(r.stdout, /containerd-shim-tsshim-v2:\n\s+Version:\s+\d+\.\d+\.\d+/);
});

t('unknown flag and missing namespace fail clearly', (ctx) => {
  const r = spawnSync(SHIM, ['-bogus', 'x', 'start'], { encoding: 'utf8' });
  assert.is(r.status, 2);
  assert.match(r.stderr, /flag provided but not defined: -bogus/);
  const r2 = spawnSync(SHIM, ['-id', 'x', '-address', ctx.fakeAddress, 'start'], { encoding: 'utf8', cwd: ctx.dir });
  assert.is(r2.status, 1);
  assert.match(r2.stdout + r2.stderr, /namespace cannot be empty/);
});

t.run();
