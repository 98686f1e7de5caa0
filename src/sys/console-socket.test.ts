/**
 * ConsoleSocket with a koffi-made pty pair, then against the real runc
 * (--console-socket, TIOCSWINSZ before start, output read from the master).
 * Run: node dist/src/sys/console-socket.test.js   (root; runc and /bin/busybox)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, writeSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tty from 'node:tty';
import { ConsoleSocket } from './console-socket.js';
import { closeFd, connectUnix, dupFd, getWinsize, openPty, sendFd, setWinsize } from './libc.js';
import { reaper, type ExitEvent } from './reaper.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Collect everything read from a pty master; EIO (slave side gone) counts as the end. */
function collect(fd: number): { text: () => string; ended: Promise<void>; stream: tty.ReadStream } {
  const stream = new tty.ReadStream(fd);
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
  });
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EIO' ? resolve() : reject(e)));
  });
  return { text: () => buf, ended, stream };
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('create() listens at <tmpdir>/tsshim-pty-*/pty.sock; close() removes it', async () => {
  const cs = await ConsoleSocket.create();
  assert.ok(cs.path.startsWith(path.join(tmpdir(), 'tsshim-pty-')));
  assert.is(path.basename(cs.path), 'pty.sock');
  assert.ok(statSync(cs.path).isSocket());
  await cs.close();
  assert.not.ok(existsSync(path.dirname(cs.path)));
  cs.close(); // idempotent
  const custom = mkdtempSync(path.join(tmpdir(), 'tsshim-cs-dir-'));
  const cs2 = await ConsoleSocket.create(custom);
  assert.is(path.dirname(path.dirname(cs2.path)), custom);
  cs2.close();
  rmSync(custom, { recursive: true });
});

test('receive(): the fd sent with SCM_RIGHTS is the same pty (winsize and IO both ways)', async () => {
  const cs = await ConsoleSocket.create();
  const pty = openPty();
  const pending = cs.receive(5000);
  const client = connectUnix(cs.path);
  sendFd(client, pty.master, '/dev/ptmx');
  const got = await pending;
  closeFd(client);
  cs.close();
  assert.is(got.name, '/dev/ptmx');
  assert.ok(got.fd !== pty.master && got.fd > 2);

  setWinsize(got.fd, 40, 120);
  assert.equal(getWinsize(pty.slave), { rows: 40, cols: 120 }, 'resize through the received master is seen on the slave');

  // master -> slave and slave -> master through Node streams on the received fd
  const slave = new tty.ReadStream(pty.slave);
  slave.setRawMode(true);
  let slaveText = '';
  slave.on('data', (d) => (slaveText += String(d)));
  const out = collect(got.fd);
  const writer = new tty.WriteStream(dupFd(got.fd));
  writer.write('to-slave\n');
  await until(() => slaveText.includes('to-slave'), 3000, 'data on the slave');
  const slaveDup = dupFd(pty.slave);
  const slaveWriter = new tty.WriteStream(slaveDup);
  slaveWriter.write('to-master\n');
  await until(() => out.text().includes('to-master'), 3000, 'data on the master');
  // libuv reopens a pty *slave* (/dev/pts/N) for its streams and leaves the fd it
  // was given open, so those are closed by hand; it does not reopen a master.
  slave.destroy();
  slaveWriter.destroy();
  closeFd(pty.slave);
  closeFd(slaveDup);
  // every slave fd is closed now: reading the master ends with EIO
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    out.ended,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no EIO/end on the master')), 3000))),
  ]);
  clearTimeout(timer);
  out.stream.destroy();
  writer.destroy();
  closeFd(pty.master);
});

test('net.Socket cannot wrap a pty master (documents why tty streams are used)', () => {
  const pty = openPty();
  const fd = dupFd(pty.master);
  try {
    assert.throws(() => new net.Socket({ fd }), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_FD_TYPE');
  } finally {
    closeFd(fd);
    closeFd(pty.master);
    closeFd(pty.slave);
  }
});

test('receive(): a peer that connects first and sends later is still served', async () => {
  const cs = await ConsoleSocket.create();
  const pty = openPty();
  const pending = cs.receive(5000);
  const client = connectUnix(cs.path);
  await sleep(100); // receive() is now polling the accepted connection
  sendFd(client, pty.slave, 'late');
  const got = await pending;
  assert.is(got.name, 'late');
  setWinsize(pty.master, 7, 9);
  assert.equal(getWinsize(got.fd), { rows: 7, cols: 9 });
  for (const fd of [client, got.fd, pty.master, pty.slave]) closeFd(fd);
  cs.close();
});

test('receive(timeout) rejects with ETIMEDOUT and the socket stays usable', async () => {
  const cs = await ConsoleSocket.create();
  const t0 = Date.now();
  try {
    await cs.receive(100);
    assert.unreachable('must time out');
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ETIMEDOUT');
    assert.match((e as Error).message, cs.path);
  }
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 95 && elapsed < 1000, `timed out after ${elapsed} ms`);
  const pty = openPty();
  const pending = cs.receive(5000);
  const client = connectUnix(cs.path);
  sendFd(client, pty.master, '/dev/ptmx');
  const got = await pending;
  assert.ok(got.fd > 2);
  for (const fd of [client, got.fd, pty.master, pty.slave]) closeFd(fd);
  cs.close();
});

test('close() wakes a pending receive() at once', async () => {
  const cs = await ConsoleSocket.create();
  const pending = cs.receive(); // no timeout
  const t0 = Date.now();
  setTimeout(() => cs.close(), 50);
  // The outcome as a value, so an assertion thrown inside cannot pass for the rejection itself.
  const settle = (p: Promise<unknown>) => p.then(() => 'resolved', (e: Error) => `rejected: ${e.message}`);
  assert.match(await settle(pending), /^rejected: .*closed/);
  assert.ok(Date.now() - t0 < 1000);
  await cs.close(); // already closed: settles once the file and its directory are removed
  assert.not.ok(existsSync(cs.path));
  assert.match(await settle(cs.receive()), /^rejected: .*closed/, 'a closed socket rejects receive()');
});

test('a peer that hangs up without sending a descriptor is an error, not a hang', async () => {
  const cs = await ConsoleSocket.create();
  const pending = cs.receive(5000);
  const client = connectUnix(cs.path);
  closeFd(client);
  try {
    await pending;
    assert.unreachable('must reject');
  } catch (e) {
    assert.match((e as Error).message, 'without sending a file descriptor');
  }
  cs.close();
});

// ---------------------------------------------------------------------------
// real runc
// ---------------------------------------------------------------------------

test('runc create --console-socket: master received, TIOCSWINSZ before start, output read, init reaped', async () => {
  reaper.start(); // the container init is re-parented to us when `runc create` exits
  const exits = new Map<number, ExitEvent>();
  const onExit = (ev: ExitEvent): void => void exits.set(ev.pid, ev);
  reaper.on('exit', onExit);

  const work = mkdtempSync(path.join(tmpdir(), 'tsshim-test-runc-'));
  const root = path.join(work, 'runc-root');
  const bundle = path.join(work, 'bundle');
  const id = `tsshim-cs-${process.pid}`;
  mkdirSync(path.join(bundle, 'rootfs', 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', path.join(bundle, 'rootfs', 'bin', 'busybox'));
  for (const applet of ['sh', 'stty', 'echo']) symlinkSync('busybox', path.join(bundle, 'rootfs', 'bin', applet));
  const spec = await reaper.run('runc', ['spec', '--bundle', bundle]);
  assert.is(spec.exitCode, 0, spec.stderr);
  const configPath = path.join(bundle, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  config.process.terminal = true;
  // The shell stays until the test has read the size: Linux may drop what a pty slave wrote just
  // before its last close (the master then reads EIO), which made the bare `stty size` flaky in CI.
  config.process.args = ['sh', '-c', 'echo hello-tty; stty size; read -t 15 line; echo bye'];
  writeFileSync(configPath, JSON.stringify(config));

  const cs = await ConsoleSocket.create();
  let master = -1;
  let out: ReturnType<typeof collect> | undefined;
  try {
    const received = cs.receive(15000);
    const pidFile = path.join(work, 'init.pid');
    const create = await reaper.run('runc', ['--root', root, 'create', '--bundle', bundle, '--console-socket', cs.path, '--pid-file', pidFile, id], {
      timeoutMs: 30000,
    });
    assert.is(create.exitCode, 0, `runc create failed: ${create.stderr}`);
    const got = await received;
    master = got.fd;
    assert.is(got.name, '/dev/ptmx');
    setWinsize(master, 40, 120);
    assert.equal(getWinsize(master), { rows: 40, cols: 120 });
    const initPid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(initPid > 0);

    out = collect(master);
    const start = await reaper.run('runc', ['--root', root, 'start', id], { timeoutMs: 30000 });
    assert.is(start.exitCode, 0, `runc start failed: ${start.stderr}`);
    await until(() => out!.text().includes('40 120'), 15000, `"40 120" on the pty (got ${JSON.stringify(out.text())})`);
    assert.match(out.text(), 'hello-tty');
    writeSync(master, 'go\n'); // ends the shell's read: the init exits with status 0
    await until(() => exits.has(initPid), 15000, `exit of container init ${initPid}`);
    assert.is(exits.get(initPid)!.status, 0);
  } finally {
    await reaper.run('runc', ['--root', root, 'delete', '--force', id]);
    out?.stream.destroy();
    if (!out && master >= 0) closeFd(master);
    cs.close();
    reaper.off('exit', onExit);
    reaper.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
