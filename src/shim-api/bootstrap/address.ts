/**
 * Where a shim listens: one socket per (containerd, namespace, group), as runc-v2 computes it;
 * and the rules that keep a live shim's socket file from being unlinked (docs/adr/0013):
 * every probe-unlink-bind sequence on a socket path runs under one lock file, a probe calls a
 * socket dead only on ECONNREFUSED/ENOENT, and a daemon unlinks its path only if the file there
 * is still the socket it bound.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import { RUNTIME_TYPE } from '../runtime-type.js';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeFd, listenUnix, tryLockExclusive } from '../../sys/libc.js';

export const SOCKET_DIR = '/run/containerd/s';
/** Serialises socket changes (probe, unlink, bind) of every tsshim start, delete and exit. */
export const SOCKET_LOCK = `${SOCKET_DIR}/tsshim.lock`;

/** Grouping as runc-v2: explicit group annotation, else the CRI sandbox id, else the task id. */
export function groupOf(id: string, annotations: Record<string, string>): string {
  return annotations['io.containerd.runc.v2.group'] || annotations['io.kubernetes.cri.sandbox-id'] || id;
}

/**
 * runc-v2 hashes `<containerd address>/<namespace>/<group>`; we salt it with our
 * runtime name so a tsshim task and a runc-v2 task of the same id never share a socket.
 */
export function socketPath(containerdAddress: string, namespace: string, group: string): string {
  const h = createHash('sha256').update(`${RUNTIME_TYPE}:${containerdAddress}/${namespace}/${group}`).digest('hex');
  return `${SOCKET_DIR}/${h}`;
}

const PROBE_TIMEOUT_MS = 2000;

/**
 * Does a shim answer on this socket? false only when the kernel says nobody listens there
 * (ECONNREFUSED: a dead shim's file; ENOENT: no file). Anything else (a full backlog gives
 * EAGAIN, a slow answer) counts as serving: a live socket must never be taken for a dead one.
 */
export function isServing(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(sock);
    const done = (v: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    s.once('connect', () => done(true));
    s.once('error', (err: NodeJS.ErrnoException) => done(!(err.code === 'ECONNREFUSED' || err.code === 'ENOENT')));
  });
}

const openFd = promisify(fs.open) as (file: string, flags: number, mode?: number) => Promise<number>;

/**
 * Run fn holding the socket lock (flock on SOCKET_LOCK, polled without blocking). Rejects after
 * timeoutMs without running fn. The lock goes with its fd: a holder that dies releases it.
 */
export async function withSocketLock<T>(fn: () => Promise<T>, opts: { timeoutMs?: number; lockFile?: string } = {}): Promise<T> {
  const lockFile = opts.lockFile ?? SOCKET_LOCK;
  const fd = await openFd(lockFile, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    let wait = 1;
    while (!tryLockExclusive(fd)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for the shim socket lock ${lockFile}`);
      await sleep(wait);
      wait = Math.min(wait * 2, 20);
    }
    return await fn();
  } finally {
    closeFd(fd); // releases the lock
  }
}

/** What identifies one socket file (an unlinked and re-bound path gets a new inode). */
export interface SocketIdentity {
  dev: number;
  ino: number;
}

export async function socketIdentity(sock: string): Promise<SocketIdentity | undefined> {
  try {
    const st = await fsp.lstat(sock);
    return st.isSocket() ? { dev: st.dev, ino: st.ino } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A daemon leaving: unlink its socket path only if the file there is still the socket it bound.
 * Call it while still listening: the bound socket pins its inode, so an equal (dev, ino) is that
 * very file; after close the number could be recycled for a newer shim's socket.
 */
export async function unlinkOwnSocket(sock: string, own: SocketIdentity | undefined, opts: { lockFile?: string } = {}): Promise<boolean> {
  if (!own) return false;
  return withSocketLock(async () => {
    const now = await socketIdentity(sock);
    if (!now || now.dev !== own.dev || now.ino !== own.ino) return false;
    await fsp.rm(sock, { force: true });
    return true;
  }, opts).catch(() => false);
}

/**
 * Bind and listen on sock (our own socket(2): Node's server would unlink the path when closed,
 * whoever's file it is by then). The fd is close-on-exec and non-blocking; mode 0600.
 */
export async function bindSocket(sock: string): Promise<number> {
  const fd = listenUnix(sock, 511);
  try {
    await fsp.chmod(sock, 0o600);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  return fd;
}

export const toAddress = (path: string) => `unix://${path}`;
export const fromAddress = (address: string) => address.replace(/^unix:\/\//, '');
