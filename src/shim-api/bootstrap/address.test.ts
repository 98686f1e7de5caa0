/**
 * Socket files of live shims are never unlinked (ADR 0013): the probe, the lock, ownership on exit.
 * Real unix sockets in a private directory. Run: node dist/src/shim-api/bootstrap/address.test.js
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { closeFd, listenUnix } from '../../sys/libc.js';
import { isServing, socketIdentity, unlinkOwnSocket, withSocketLock } from './address.js';
import { removeStaleSocket } from './delete.js';
import { listenOrJoin } from './start.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsshim-sock-test-'));
const lockFile = path.join(dir, 'tsshim.lock');
let n = 0;
const sockPath = () => path.join(dir, `s${n++}`);
const fds: number[] = [];

/** A socket file nobody listens on any more: what a kill -9'd shim leaves. */
function staleSocket(): string {
  const p = sockPath();
  closeFd(listenUnix(p, 1));
  return p;
}

/** A listening socket whose backlog is full: connect(2) says EAGAIN, yet a shim owns it. */
async function busySocket(): Promise<{ path: string; clients: net.Socket[] }> {
  const p = sockPath();
  fds.push(listenUnix(p, 0)); // never accepts
  const clients: net.Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const c = net.connect(p);
    c.on('error', () => undefined);
    clients.push(c);
  }
  await new Promise((r) => setTimeout(r, 50));
  return { path: p, clients };
}

function bundleFor(sock: string): string {
  const b = fs.mkdtempSync(path.join(dir, 'bundle-'));
  fs.writeFileSync(path.join(b, 'address'), `unix://${sock}`);
  return b;
}

test('isServing: a dead file and no file are not serving; a listener is, even with its backlog full (EAGAIN)', async () => {
  assert.is(await isServing(staleSocket()), false);
  assert.is(await isServing(path.join(dir, 'missing')), false);
  const live = sockPath();
  fds.push(listenUnix(live, 16));
  assert.is(await isServing(live), true);
  const busy = await busySocket();
  assert.is(await isServing(busy.path), true, 'EAGAIN is a live shim that is busy, not a dead one');
  for (const c of busy.clients) c.destroy();
});

test('delete removes a dead shim\'s socket, never a live one (also not one with a full backlog)', async () => {
  const stale = staleSocket();
  assert.is(await removeStaleSocket(bundleFor(stale), { lockFile, socketDir: dir }), true);
  assert.not.ok(fs.existsSync(stale));
  const busy = await busySocket();
  assert.is(await removeStaleSocket(bundleFor(busy.path), { lockFile, socketDir: dir }), false);
  assert.ok(fs.existsSync(busy.path), 'the busy shim keeps its socket');
  for (const c of busy.clients) c.destroy();
});

test('delete waits for the socket lock: a start that re-binds the path meanwhile keeps its socket', async () => {
  const p = staleSocket();
  let release!: () => void;
  let held!: () => void;
  const isHeld = new Promise<void>((r) => (held = r));
  // a "start" holding the lock: it replaces the dead file with its own listening socket
  const starting = withSocketLock(
    () =>
      new Promise<void>((r) => {
        release = r;
        held();
      }),
    { lockFile },
  );
  await isHeld;
  const deleting = removeStaleSocket(bundleFor(p), { lockFile, socketDir: dir });
  await new Promise((r) => setTimeout(r, 100));
  fs.rmSync(p);
  fds.push(listenUnix(p, 16));
  const ours = await socketIdentity(p);
  release();
  await starting;
  assert.is(await deleting, false, 'delete saw the new listener');
  assert.equal(await socketIdentity(p), ours, 'the new socket file is still there');
});

test('listenOrJoin: ten concurrent starts on a dead socket: one listens, nine join, the file is the listener\'s', async () => {
  const p = staleSocket();
  const listening: number[] = [];
  const results = await Promise.all(
    Array.from({ length: 10 }, () =>
      listenOrJoin(
        p,
        async (fd) => {
          listening.push(fd);
          fds.push(fd);
        },
        { lockFile },
      ),
    ),
  );
  assert.is(results.filter((r) => r === 'listening').length, 1);
  assert.is(results.filter((r) => r === 'joined').length, 9);
  assert.is(listening.length, 1);
  assert.is(await isServing(p), true, 'the path reaches the one listener');
  assert.is((fs.statSync(p).mode & 0o777).toString(8), '600');
});

test('a leaving daemon unlinks its path only while the file there is still its own socket', async () => {
  const p = sockPath();
  const fd = listenUnix(p, 16);
  const own = await socketIdentity(p);
  assert.ok(own);
  // someone replaced the file while it still listens (its bound socket pins its inode number)
  fs.rmSync(p);
  fds.push(listenUnix(p, 16));
  const newer = await socketIdentity(p);
  assert.is(await unlinkOwnSocket(p, own, { lockFile }), false);
  assert.equal(await socketIdentity(p), newer, 'the newer shim keeps its socket');
  closeFd(fd);
  // its own file: removed
  const q = sockPath();
  const fd2 = listenUnix(q, 16);
  const own2 = await socketIdentity(q);
  assert.is(await unlinkOwnSocket(q, own2, { lockFile }), true);
  closeFd(fd2);
  assert.not.ok(fs.existsSync(q));
});

test('withSocketLock gives up after its timeout without running fn', async () => {
  let release!: () => void;
  let held!: () => void;
  const isHeld = new Promise<void>((r) => (held = r));
  const holder = withSocketLock(() => new Promise<void>((r) => ((release = r), held())), { lockFile });
  await isHeld;
  let ran = false;
  const err = await withSocketLock(async () => void (ran = true), { lockFile, timeoutMs: 100 }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.match((err as Error).message, 'timed out');
  assert.is(ran, false);
  release();
  await holder;
});

test.after(() => {
  for (const fd of fds) {
    try {
      closeFd(fd);
    } catch {
      /* closed */
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
