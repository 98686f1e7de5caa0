/**
 * libc bindings against the real kernel (root needed for mount).
 * Run: node dist/src/sys/libc.test.js
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  acceptNonBlocking,
  childPids,
  closeFd,
  connectUnix,
  decodeWaitStatus,
  getWinsize,
  isChildSubreaper,
  listenUnix,
  mkfifo,
  MNT_DETACH,
  mount,
  openPty,
  peerCredentials,
  pipe,
  recvFd,
  sendFd,
  setChildSubreaper,
  setWinsize,
  SysError,
  umount2,
  waitpidNoHang,
} from './libc.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'tsshim-libc-test-'));

test('decodeWaitStatus: exit codes and signals', () => {
  assert.equal(decodeWaitStatus(10, 0), { pid: 10, status: 0, code: 0 });
  assert.equal(decodeWaitStatus(10, 3 << 8), { pid: 10, status: 3, code: 3 });
  assert.equal(decodeWaitStatus(10, 255 << 8), { pid: 10, status: 255, code: 255 });
  assert.equal(decodeWaitStatus(10, 9), { pid: 10, status: 137, signal: 9 });
  assert.equal(decodeWaitStatus(10, 15 | 0x80 /* core dumped */), { pid: 10, status: 143, signal: 15 });
});

test('pipe: a real pipe, data flows, EOF after the write end closes', () => {
  const [r, w] = pipe();
  assert.ok(fstatSync(r).isFIFO());
  writeSync(w, 'abc');
  closeSync(w);
  const buf = Buffer.alloc(8);
  assert.is(readSync(r, buf), 3);
  assert.is(buf.subarray(0, 3).toString(), 'abc');
  assert.is(readSync(r, buf), 0);
  closeSync(r);
});

test('child subreaper flag: set and read back', () => {
  setChildSubreaper();
  assert.is(isChildSubreaper(), true);
});

test('childPids lists a running child (all threads) and drops it after exit', async () => {
  const cp = spawn('sleep', ['0.2'], { stdio: 'ignore' });
  assert.ok(childPids().includes(cp.pid!));
  await new Promise((r) => cp.on('exit', r));
  assert.not.ok(childPids().includes(cp.pid!));
});

test('waitpidNoHang on an orphan: null while running, then its status; ECHILD after', async () => {
  setChildSubreaper();
  const sh = spawn('sh', ['-c', '(sleep 0.2; exit 42) </dev/null >/dev/null 2>&1 & echo $!'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  sh.stdout!.on('data', (d) => (out += d));
  await new Promise((r) => sh.on('close', r));
  const orphan = Number(out.trim());
  assert.ok(childPids().includes(orphan), 'orphan was re-parented to us');
  assert.is(waitpidNoHang(orphan), null);
  let r = null;
  for (let i = 0; i < 300 && r === null; i++) {
    await sleep(10);
    r = waitpidNoHang(orphan);
  }
  assert.equal(r, { pid: orphan, status: 42, code: 42 });
  assert.throws(() => waitpidNoHang(orphan), (e: SysError) => e instanceof SysError && e.code === 'ECHILD' && e.syscall === 'waitpid');
  assert.throws(() => waitpidNoHang(1), (e: SysError) => e.code === 'ECHILD');
});

test('mkfifo creates a FIFO with the mode; EEXIST is reported by name', () => {
  const dir = tmp();
  try {
    const p = path.join(dir, 'fifo');
    const old = process.umask(0);
    try {
      mkfifo(p, 0o640);
    } finally {
      process.umask(old);
    }
    const st = statSync(p);
    assert.ok(st.isFIFO());
    assert.is(st.mode & 0o777, 0o640);
    assert.throws(() => mkfifo(p, 0o600), (e: SysError) => e.code === 'EEXIST' && e.message.includes(p));
    // it is a real FIFO: a non-blocking reader plus a writer pass data
    const rfd = openSync(p, 'r+');
    const wfd = openSync(p, 'w');
    writeSync(wfd, 'through-fifo');
    const buf = Buffer.alloc(64);
    const n = readSync(rfd, buf);
    assert.is(buf.toString('utf8', 0, n), 'through-fifo');
    closeSync(rfd);
    closeSync(wfd);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('openPty + setWinsize/getWinsize on master and slave', () => {
  const pty = openPty();
  try {
    assert.match(pty.name, /^\/dev\/pts\/\d+$/);
    setWinsize(pty.master, 24, 80);
    assert.equal(getWinsize(pty.slave), { rows: 24, cols: 80 });
    setWinsize(pty.slave, 50, 200);
    assert.equal(getWinsize(pty.master), { rows: 50, cols: 200 });
    assert.throws(() => setWinsize(-1, 1, 1), (e: SysError) => e.code === 'EBADF');
  } finally {
    closeFd(pty.master);
    closeFd(pty.slave);
  }
});

test('sendFd/recvFd: the received descriptor reads the same open file', () => {
  const dir = tmp();
  const sock = path.join(dir, 's.sock');
  const lfd = listenUnix(sock);
  const client = connectUnix(sock);
  const server = acceptNonBlocking(lfd)!;
  try {
    assert.ok(server >= 0);
    assert.is(recvFd(server), null, 'nothing sent yet: EAGAIN -> null');
    writeFileSync(path.join(dir, 'data'), 'payload-123');
    const f = openSync(path.join(dir, 'data'), 'r');
    sendFd(client, f, 'my-name');
    closeSync(f);
    const got = recvFd(server)!;
    assert.is(got.name, 'my-name');
    const buf = Buffer.alloc(32);
    const n = readSync(got.fd, buf, 0, 32, 0);
    assert.is(buf.toString('utf8', 0, n), 'payload-123');
    closeFd(got.fd);
    assert.is(acceptNonBlocking(lfd), null, 'no second connection pending');
  } finally {
    closeFd(client);
    closeFd(server);
    closeFd(lfd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('peerCredentials: pid/uid/gid of another process connected to us', async () => {
  const dir = tmp();
  const sock = path.join(dir, 'cred.sock');
  const lfd = listenUnix(sock);
  const child = spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(sock)}); setTimeout(() => {}, 3000)`], { stdio: 'ignore' });
  try {
    let conn: number | null = null;
    for (let i = 0; i < 500 && conn === null; i++) {
      conn = acceptNonBlocking(lfd);
      if (conn === null) await sleep(10);
    }
    assert.ok(conn !== null, 'child connected');
    const cred = peerCredentials(conn!);
    assert.equal(cred, { pid: child.pid!, uid: process.getuid!(), gid: process.getgid!() });
    closeFd(conn!);
  } finally {
    child.kill();
    await new Promise((r) => child.on('exit', r));
    closeFd(lfd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listenUnix refuses paths longer than sun_path with ENAMETOOLONG', () => {
  assert.throws(() => listenUnix(`/tmp/${'x'.repeat(120)}`), (e: SysError) => e.code === 'ENAMETOOLONG');
});

test('mount/umount2: real tmpfs; errors carry errno names', () => {
  const dir = tmp();
  const target = path.join(dir, 'mnt');
  mkdirSync(target);
  try {
    mount('tmpfs', target, 'tmpfs', 0, 'size=64k');
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === target);
    assert.ok(line && / - tmpfs tmpfs .*size=64k/.test(line), line);
    umount2(target);
    assert.throws(() => umount2(target), (e: SysError) => e.code === 'EINVAL' && e.syscall === 'umount2');
    mount('tmpfs', target, 'tmpfs', 0);
    umount2(target, MNT_DETACH);
    assert.throws(
      () => mount('tmpfs', path.join(dir, 'missing'), 'tmpfs', 0),
      (e: SysError) => e.code === 'ENOENT' && e.message.includes('missing') && e.errno === 2,
    );
    assert.throws(() => mount('x', target, 'no-such-fs-type', 0), (e: SysError) => e.code === 'ENODEV');
  } finally {
    try {
      umount2(target, MNT_DETACH);
    } catch {
      // not mounted
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
