/**
 * Node mode's worker restart, for the OCI-CLI handler on the real runc (ADR 0020): handler A runs
 * a container and execs with a custody; A "dies" (its own fds closed, nothing of the containers'
 * touched; exits held as the supervisor holds them); the containers write and exit meanwhile;
 * handler B adopts from the records and the custody's fds and serves on. The test process is
 * the child subreaper (src/sys/reaper.ts), as the supervisor will be; the custody here is an
 * in-memory map of dup()ed fds, the plumbing the supervisor does over SCM_RIGHTS.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa, execaSync } from 'execa';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import type { Adoption, Custody } from '../../shim-api/custody.js';
import { Status, task, type Any } from '../../shim-api/pb.js';
import { closeFd, dupFd } from '../../sys/libc.js';
import { mountAll, unmountAll } from '../../sys/mount.js';
import { reaper, type ExitEvent } from '../../sys/reaper.js';
import { skipWithReason } from '../../../test/helpers/skip.js';
import { runcProfile } from '../runc/profile.js';
import { OciTaskHandler } from './task-handler.js';
import { makeBundle, unusableReason } from './testing/real-runtime.js';

const why = await unusableReason('runc');
const realTest: (name: string, fn: () => Promise<void>) => void = why ? (name) => skipWithReason(test, name, why) : test;

const top = fs.mkdtempSync('/tmp/tsshim-adopt-test-');
const root = path.join(top, 'root');
const NS = 'tsshim-adopt';
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const log = pino({ level: process.env.TSSHIM_TEST_LOG ?? 'silent' });
const created: string[] = [];
// The exits these tests wait for arrive by SIGCHLD, and a signal listener does not keep Node's
// event loop alive (the shim's listening socket does): without this, a wait with nothing else
// pending ended the process ("Exiting early before testing is finished", seen under load).
const keepAlive = setInterval(() => undefined, 1 << 30);

/** The supervisor's side of custody: dup()s of every fd kept, records as JSON text. */
class Store {
  readonly fds = new Map<string, number>();
  readonly records = new Map<string, string>();

  /** What one worker talks to; a dead worker says nothing any more. */
  view(): Custody & { dead: boolean } {
    const store = this;
    return {
      dead: false,
      keepFd(key, fd) {
        if (this.dead) return;
        const old = store.fds.get(key);
        if (old !== undefined) closeFd(old);
        store.fds.set(key, dupFd(fd));
      },
      dropFds(prefix) {
        if (this.dead) return;
        for (const [k, fd] of store.fds) {
          if (!k.startsWith(prefix)) continue;
          closeFd(fd);
          store.fds.delete(k);
        }
      },
      saveRecord(id, record) {
        if (this.dead) return;
        if (record === undefined) store.records.delete(id);
        else store.records.set(id, JSON.stringify(record));
      },
    };
  }

  /** What a new worker receives for task `id`: the record and its own duplicates of the kept fds (SCM_RIGHTS). */
  adoption(id: string): Adoption {
    const fds = new Map<string, number>();
    for (const [k, fd] of this.fds) if (k.startsWith(`${id}/`)) fds.set(k, dupFd(fd));
    return { id, record: JSON.parse(this.records.get(id)!), fds };
  }

  keys(id: string): string[] {
    return [...this.fds.keys()].filter((k) => k.startsWith(`${id}/`)).sort();
  }
}

/** The exits as the supervisor forwards them: held while no worker runs; `lose` swallows a pid's (reaped by nobody who tells). */
class Exits extends EventEmitter<{ exit: [ExitEvent] }> {
  held?: ExitEvent[];
  readonly lose = new Set<number>();
  readonly seen = new Set<number>();
  constructor() {
    super();
    reaper.on('exit', (e) => {
      this.seen.add(e.pid);
      if (this.lose.has(e.pid)) return;
      if (this.held) this.held.push(e);
      else this.emit('exit', e);
    });
  }
  hold(): void {
    this.held = [];
  }
  flush(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const e of held) this.emit('exit', e);
  }
}

const events: Array<{ topic: string; task: string }> = [];

function handler(exits: Exits, custody: Custody): OciTaskHandler {
  return new OciTaskHandler({
    name: 'runc',
    profile: runcProfile,
    driver: { root },
    namespace: NS,
    publisher: { publish: (topic, _e, t) => void events.push({ topic, task: t }), close: async () => undefined },
    log,
    run: (file, args, opts) => reaper.run(file, args, opts),
    exits,
    spawn: (file, args, opts) => reaper.spawnTracked(file, args, opts),
    mountAll,
    unmountAll,
    custody,
  });
}

/** `p`, or a failure naming `what` after a bound that only ends a test that already failed (never a timing verdict). */
async function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`never happened: ${what}`)), 60_000)));
  try {
    return await Promise.race([p, stuck]);
  } finally {
    clearTimeout(t);
  }
}

/** A FIFO the test reads as a stream: everything received, and whether EOF came. */
function reader(file: string): { text: () => string; ended: Promise<void>; until: (needle: string) => Promise<string> } {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (!fs.existsSync(file)) execaSync('mkfifo', [file]);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const s = new net.Socket({ fd, readable: true, writable: false });
  let buf = '';
  const waiters: Array<() => void> = [];
  s.on('data', (d) => {
    buf += d.toString('utf8');
    for (const w of waiters.splice(0)) w();
  });
  const ended = bounded(new Promise<void>((resolve) => s.once('end', () => resolve())), `EOF on ${file}`);
  ended.catch(() => undefined);
  return {
    text: () => buf,
    ended,
    until: (needle) =>
      bounded(
        (async () => {
          while (!buf.includes(needle)) await new Promise<void>((r) => waiters.push(r));
          return buf;
        })(),
        `${JSON.stringify(needle)} on ${file}`,
      ),
  };
}

/** Write to a FIFO nobody may have opened yet for reading (the container opens it). */
async function poke(fifo: string, text = 'go\n'): Promise<void> {
  const fh = await fs.promises.open(fifo, 'w'); // blocks (threadpool) until the container reads
  await fh.write(text);
  await fh.close();
}

function processSpec(args: string[], terminal = false): Any {
  const spec = { terminal, user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin'], cwd: '/' };
  return { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: Buffer.from(JSON.stringify(spec)) };
}

async function until(cond: () => boolean): Promise<void> {
  await bounded(
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 10));
    })(),
    'the exits of the gap',
  );
}

/** A bundle whose rootfs is a bind mount the handler makes (so Delete has a mount to undo). */
async function bundleWithMountedRootfs(name: string, args: string[], terminal = false): Promise<{ bundle: string; src: string; rootfs: task.CreateTaskRequest['rootfs'] }> {
  const bundle = await makeBundle(top, name, 'runc', args, ['sh', 'sleep', 'cat', 'echo', 'seq', 'true']);
  const src = path.join(top, `${name}-rootfs`);
  fs.renameSync(path.join(bundle, 'rootfs'), src);
  fs.mkdirSync(path.join(bundle, 'rootfs'));
  if (terminal) {
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    spec.process.terminal = true;
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
  }
  return { bundle, src, rootfs: [{ type: 'bind', source: src, target: '', options: ['rbind', 'rw'] }] };
}

function mountedAt(dir: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
}

async function runcKnows(id: string): Promise<boolean> {
  return (await execa('runc', ['--root', path.join(root, NS), 'state', id], { reject: false })).exitCode === 0;
}

const exits = why ? undefined : new Exits();
if (!why) reaper.start();

realTest('adopt: a new handler takes a running container and its execs over; output and exits of the gap are not lost', async () => {
  const id = `adopt-${suffix}`;
  created.push(id);
  const LINES = 20_000; // ~108 KiB: more than a pipe holds, so the container blocks until B copies again
  const { bundle, src, rootfs } = await bundleWithMountedRootfs('b1', ['sh', '-c', `echo ready; read x < /trigger; seq 1 ${LINES}; echo gap-done; exec sleep 1000`]);
  for (const f of ['trigger', 'trigger2', 'trigger3']) await execa('mkfifo', [path.join(src, f)]);
  const out = reader(path.join(top, 'io', 'init-out'));
  const store = new Store();
  const viewA = store.view();
  const a = handler(exits!, viewA);

  const { pid } = await a.create(task.CreateTaskRequest.fromPartial({ id, bundle, rootfs, stdout: path.join(top, 'io', 'init-out') }));
  await a.start({ id, execId: '' });
  await out.until('ready\n');
  // exec1 exits while no handler runs; `lost` too, but its exit is never delivered; cat1 echoes its stdin
  const exec1Out = reader(path.join(top, 'io', 'exec1-out'));
  const catOut = reader(path.join(top, 'io', 'cat-out'));
  const catIn = path.join(top, 'io', 'cat-in');
  await execa('mkfifo', [catIn]);
  const catInFd = fs.openSync(catIn, fs.constants.O_RDWR); // our client end, kept open like ctr's
  await a.exec({ id, execId: 'exec1', stdin: '', stdout: path.join(top, 'io', 'exec1-out'), stderr: '', terminal: false, spec: processSpec(['sh', '-c', 'read x < /trigger2; echo exec-out; exit 3']) });
  const { pid: exec1Pid } = await a.start({ id, execId: 'exec1' });
  await a.exec({ id, execId: 'lost', stdin: '', stdout: '', stderr: '', terminal: false, spec: processSpec(['sh', '-c', 'read x < /trigger3; exit 5']) });
  const { pid: lostPid } = await a.start({ id, execId: 'lost' });
  await a.exec({ id, execId: 'cat1', stdin: catIn, stdout: path.join(top, 'io', 'cat-out'), stderr: '', terminal: false, spec: processSpec(['cat']) });
  const { pid: catPid } = await a.start({ id, execId: 'cat1' });
  fs.writeSync(catInFd, 'before\n');
  await catOut.until('before\n');
  // an exec added and never started is adoptable too
  await a.exec({ id, execId: 'later', stdin: '', stdout: path.join(top, 'io', 'later-out'), stderr: '', terminal: false, spec: processSpec(['sh', '-c', 'echo later-$((6*7))']) });
  const laterOut = reader(path.join(top, 'io', 'later-out'));

  const rec = JSON.parse(store.records.get(id)!);
  assert.is(rec.init.pid, pid);
  assert.equal(rec.execs.map((e: { execId: string; state: string }) => `${e.execId}:${e.state}`), ['exec1:running', 'lost:running', 'cat1:running', 'later:created']);
  assert.ok(JSON.stringify(rec).length < 4096, `record stays small: ${JSON.stringify(rec).length} bytes`);
  assert.equal(store.keys(id), [
    `${id}/cat1/stdin-fifo`, `${id}/cat1/stdin-holder`, `${id}/cat1/stdin-pipe`, `${id}/cat1/stdout-pipe`, `${id}/cat1/stdout-sink`,
    `${id}/exec1/stdout-pipe`, `${id}/exec1/stdout-sink`,
    `${id}/init/stdout-pipe`, `${id}/init/stdout-sink`,
  ]);

  // ---- worker death: A's own fds close, the custody's stay; exits are held by the "supervisor"
  exits!.hold();
  viewA.dead = true;
  await a.close();
  const before = out.text().length;
  await poke(path.join(src, 'trigger')); // the init writes LINES lines into a pipe nobody copies
  await poke(path.join(src, 'trigger2')); // exec1 writes and exits 3
  exits!.lose.add(lostPid);
  await poke(path.join(src, 'trigger3')); // lost exits 5, reaped, never told
  await until(() => exits!.held!.some((e) => e.pid === exec1Pid) && exits!.seen.has(lostPid));
  assert.is(out.text().length, before, 'nothing copied while no handler runs');

  // ---- a new worker
  const b = handler(exits!, store.view());
  await b.adopt(store.adoption(id));
  exits!.flush();

  const st = await b.state({ id, execId: '' });
  assert.is(st.pid, pid);
  assert.is(st.status, Status.RUNNING);
  const e1 = await b.state({ id, execId: 'exec1' });
  assert.is(e1.pid, exec1Pid);
  assert.is(e1.status, Status.STOPPED);
  assert.is(e1.exitStatus, 3, 'the exit held during the gap, delivered after adopt');
  assert.is((await b.wait({ id, execId: 'exec1' })).exitStatus, 3);
  const lost = await b.state({ id, execId: 'lost' });
  assert.is(lost.status, Status.STOPPED);
  assert.is(lost.exitStatus, 255, 'an exit never delivered: unknown status');
  assert.is((await b.state({ id, execId: 'cat1' })).status, Status.RUNNING);
  assert.is((await b.state({ id, execId: 'later' })).status, Status.CREATED);
  const pids = (await b.pids({ id })).processes.map((p) => p.pid);
  assert.ok(pids.includes(pid) && pids.includes(catPid), `pids ${JSON.stringify(pids)}`);

  // output written while no handler existed, in full and in order
  const text = await out.until('gap-done\n');
  const expected = `ready\n${Array.from({ length: LINES }, (_, i) => `${i + 1}\n`).join('')}gap-done\n`;
  assert.is(text.length, expected.length, `bytes received ${text.length}, expected ${expected.length}`);
  assert.ok(text === expected, 'the sequence arrived complete and in order');
  // exec1's output left in its pipe is copied, then its FIFO sees EOF (no kept duplicate holds it)
  await exec1Out.ended;
  assert.is(exec1Out.text(), 'exec-out\n');
  assert.not.ok(store.keys(id).some((k) => k.startsWith(`${id}/exec1/`)), 'exec1 fds dropped once its copy ended');

  // stdin of an adopted exec still flows; CloseIO ends it
  fs.writeSync(catInFd, 'after\n');
  await catOut.until('after\n');
  await b.closeIO({ id, execId: 'cat1', stdin: true });
  fs.closeSync(catInFd);
  assert.is((await b.wait({ id, execId: 'cat1' })).exitStatus, 0);
  await catOut.ended;
  assert.is(catOut.text(), 'before\nafter\n');

  // the exec added by A starts under B; a new exec works too
  await b.start({ id, execId: 'later' });
  assert.is((await b.wait({ id, execId: 'later' })).exitStatus, 0);
  assert.is(await laterOut.until('later-42\n'), 'later-42\n');
  const newOut = reader(path.join(top, 'io', 'new-out'));
  await b.exec({ id, execId: 'new', stdin: '', stdout: path.join(top, 'io', 'new-out'), stderr: '', terminal: false, spec: processSpec(['sh', '-c', 'echo new-$((6*7)); exit 7']) });
  await b.start({ id, execId: 'new' });
  assert.is((await b.wait({ id, execId: 'new' })).exitStatus, 7);
  assert.is(await newOut.until('new-42\n'), 'new-42\n');

  // Kill → the exact status; Wait answers; Delete cleans up
  const waited = b.wait({ id, execId: '' });
  await b.kill({ id, execId: '', signal: 9, all: false });
  assert.is((await waited).exitStatus, 137);
  assert.ok(events.some((e) => e.topic === '/tasks/exit' && e.task === id));
  for (const execId of ['exec1', 'lost', 'cat1', 'later', 'new']) await b.delete({ id, execId });
  const del = await b.delete({ id, execId: '' });
  assert.is(del.exitStatus, 137);
  assert.is(del.pid, pid);
  await out.ended;
  assert.not.ok(mountedAt(path.join(bundle, 'rootfs')), 'rootfs unmounted');
  assert.not.ok(await runcKnows(id), 'runc state gone');
  assert.equal(store.keys(id), [], 'no fd kept');
  assert.not.ok(store.records.has(id), 'no record kept');
  await b.close();
});

realTest('adopt: a terminal container keeps its console across a worker restart', async () => {
  const id = `adopt-tty-${suffix}`;
  created.push(id);
  const LINES = 3000; // more than a pty buffers
  const { bundle, src, rootfs } = await bundleWithMountedRootfs('b2', ['sh', '-c', `echo ready; read x < /trigger; seq 1 ${LINES}; echo gap-done; read y; echo got-$y; exec sleep 1000`], true);
  await execa('mkfifo', [path.join(src, 'trigger')]);
  const outPath = path.join(top, 'io', 'tty-out');
  const inPath = path.join(top, 'io', 'tty-in');
  const out = reader(outPath);
  await execa('mkfifo', [inPath]);
  const inFd = fs.openSync(inPath, fs.constants.O_RDWR);
  const store = new Store();
  const viewA = store.view();
  const a = handler(exits!, viewA);
  const { pid } = await a.create(task.CreateTaskRequest.fromPartial({ id, bundle, rootfs, terminal: true, stdin: inPath, stdout: outPath }));
  await a.start({ id, execId: '' });
  await out.until('ready');
  assert.equal(store.keys(id), [`${id}/init/console-master`, `${id}/init/stdin-fifo`, `${id}/init/stdin-holder`, `${id}/init/stdout-sink`]);

  exits!.hold();
  viewA.dead = true;
  await a.close();
  await poke(path.join(src, 'trigger'));

  const b = handler(exits!, store.view());
  await b.adopt(store.adoption(id));
  exits!.flush();
  const st = await b.state({ id, execId: '' });
  assert.is(st.pid, pid);
  assert.is(st.status, Status.RUNNING);
  assert.ok(st.terminal);
  const text = await out.until('gap-done');
  const lines = text.split('\r\n');
  const start = lines.indexOf('1');
  assert.ok(start > 0, 'the sequence starts');
  assert.equal(lines.slice(start, start + LINES), Array.from({ length: LINES }, (_, i) => String(i + 1)), 'every line of the gap arrived, in order');
  // the console's input goes through the adopted master
  await b.resizePty({ id, execId: '', width: 100, height: 40 });
  fs.writeSync(inFd, 'typed\n');
  await out.until('got-typed');
  const waited = b.wait({ id, execId: '' });
  await b.kill({ id, execId: '', signal: 9, all: false });
  assert.is((await waited).exitStatus, 137);
  await b.delete({ id, execId: '' });
  fs.closeSync(inFd);
  await out.ended;
  assert.not.ok(mountedAt(path.join(bundle, 'rootfs')), 'rootfs unmounted');
  assert.not.ok(await runcKnows(id), 'runc state gone');
  assert.equal(store.keys(id), []);
  await b.close();
});

test.after(async () => {
  clearInterval(keepAlive);
  if (!why) {
    for (const id of created) await execa('runc', ['--root', path.join(root, NS), 'delete', '--force', id], { reject: false });
    for (const b of ['b1', 'b2']) await unmountAll(path.join(top, b, 'rootfs')).catch(() => undefined);
    reaper.stop();
  }
  fs.rmSync(top, { recursive: true, force: true });
});

test.run();
