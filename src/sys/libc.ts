/**
 * Linux primitives Node does not offer, bound to libc through koffi (FFI).
 *
 * koffi and libc are loaded on first use only: importing this module costs
 * nothing at shim start-up. Every failing call throws a SysError carrying the
 * errno name (e.g. EINVAL), its number, the syscall and, where useful, the path.
 *
 * Struct layouts (msghdr, cmsghdr, iovec, ucred, winsize, sockaddr_un) are
 * the Linux LP64 ones (x86-64, arm64, riscv64, ppc64le, loongarch64); the
 * module refuses to load on 32-bit Node.
 */
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { readdirSync, readFileSync } from 'node:fs';
import type * as KoffiModule from 'koffi';

type Koffi = typeof KoffiModule;
// koffi's declared function type is loose; our bindings are called with known
// argument lists, so a plain callable is the honest type here.
type CFn = ((...args: unknown[]) => any) & { async: (...args: unknown[]) => void };

// ---------------------------------------------------------------------------
// constants
// ---------------------------------------------------------------------------

export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
export const MNT_EXPIRE = 4;
export const UMOUNT_NOFOLLOW = 8;

/** mount(2) flags (include/uapi/linux/mount.h). */
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_SILENT = 0x8000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_STRICTATIME = 0x1000000;

const PR_SET_CHILD_SUBREAPER = 36;
const PR_GET_CHILD_SUBREAPER = 37;
const WNOHANG = 1;
const WEXITED = 4;
const WNOWAIT = 0x1000000;
const P_ALL = 0;
const __WALL = 0x40000000;
const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_CLOEXEC = 0o2000000;
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SCM_RIGHTS = 1;
const MSG_CTRUNC = 0x8;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const F_DUPFD_CLOEXEC = 1030;
// asm-generic ioctl numbers; powerpc uses the _IOW/_IOR encoding.
const TIOCGWINSZ = process.arch === 'ppc64' ? 0x40087468 : 0x5413;
const TIOCSWINSZ = process.arch === 'ppc64' ? 0x80087467 : 0x5414;

const SUN_PATH_MAX = 108; // sizeof(sockaddr_un.sun_path), including the NUL

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

const errnoNames: Map<number, string> = new Map(
  Object.entries(osConstants.errno).map(([name, num]) => [num as number, name]),
);

/** Error thrown by every binding here: `code` is the errno name (EINVAL, ...). */
export class SysError extends Error {
  override readonly name = 'SysError';
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly code: string,
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

function sysError(syscall: string, errno: number, detail?: string, path?: string): SysError {
  const code = errnoName(errno);
  let text = '';
  try {
    text = lib().strerror(errno) ?? '';
  } catch {
    text = '';
  }
  const where = detail ? ` ${detail}` : '';
  return new SysError(syscall, errno, code, `${syscall}${where}: ${code}${text ? ` (${text})` : ''}`, path);
}

/**
 * Read errno immediately after a failed call and throw. koffi.errno() is the
 * live thread errno, so the detail is a thunk: nothing runs before errno is read.
 */
function fail(syscall: string, detail?: () => string, path?: string): never {
  const e = koffi().errno();
  throw sysError(syscall, e, detail?.(), path);
}

// ---------------------------------------------------------------------------
// lazy loading
// ---------------------------------------------------------------------------

let koffiMod: Koffi | undefined;
function koffi(): Koffi {
  if (!koffiMod) {
    if (process.platform !== 'linux') throw new Error(`src/sys/libc: Linux only (platform is ${process.platform})`);
    if (process.arch !== 'x64' && process.arch !== 'arm64' && process.arch !== 'riscv64' && process.arch !== 'ppc64' && process.arch !== 'loong64') {
      throw new Error(`src/sys/libc: struct layouts are LP64 only (arch is ${process.arch})`);
    }
    const req = createRequire(import.meta.url);
    koffiMod = req('koffi') as Koffi;
  }
  return koffiMod;
}

/** The koffi module (loaded on first use). For sibling modules (poll handles). */
export function koffiModule(): Koffi {
  return koffi();
}

interface Libc {
  prctl: CFn;
  waitpid: CFn;
  waitid: CFn;
  mount: CFn;
  umount2: CFn;
  mkfifo: CFn;
  ioctl: CFn;
  getsockopt: CFn;
  sendmsg: CFn;
  recvmsg: CFn;
  socket: CFn;
  bind: CFn;
  listen: CFn;
  connect: CFn;
  accept4: CFn;
  fcntl: CFn;
  dup2: CFn;
  close: CFn;
  flock: CFn;
  pipe2: CFn;
  socketpair: CFn;
  open: CFn;
  posix_openpt: CFn;
  grantpt: CFn;
  unlockpt: CFn;
  ptsname_r: CFn;
  strerror: CFn;
}

let libc: Libc | undefined;
function lib(): Libc {
  if (libc) return libc;
  const k = koffi();
  const l = k.load('libc.so.6');
  const f = (proto: string): CFn => l.func(proto) as unknown as CFn;
  libc = {
    prctl: f('int prctl(int option, ...)'),
    waitpid: f('int waitpid(int pid, void *status, int options)'),
    waitid: f('int waitid(int idtype, int id, void *infop, int options)'),
    mount: f('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: f('int umount2(const char *target, int flags)'),
    mkfifo: f('int mkfifo(const char *path, uint32_t mode)'),
    ioctl: f('int ioctl(int fd, unsigned long request, ...)'),
    getsockopt: f('int getsockopt(int fd, int level, int name, void *value, void *len)'),
    sendmsg: f('intptr_t sendmsg(int fd, void *msg, int flags)'),
    recvmsg: f('intptr_t recvmsg(int fd, void *msg, int flags)'),
    socket: f('int socket(int domain, int type, int protocol)'),
    bind: f('int bind(int fd, void *addr, uint32_t len)'),
    listen: f('int listen(int fd, int backlog)'),
    connect: f('int connect(int fd, void *addr, uint32_t len)'),
    accept4: f('int accept4(int fd, void *addr, void *len, int flags)'),
    fcntl: f('int fcntl(int fd, int cmd, ...)'),
    dup2: f('int dup2(int oldfd, int newfd)'),
    close: f('int close(int fd)'),
    flock: f('int flock(int fd, int operation)'),
    pipe2: f('int pipe2(_Out_ int *fds, int flags)'),
    socketpair: f('int socketpair(int domain, int type, int protocol, _Out_ int *fds)'),
    open: f('int open(const char *path, int flags, ...)'),
    posix_openpt: f('int posix_openpt(int flags)'),
    grantpt: f('int grantpt(int fd)'),
    unlockpt: f('int unlockpt(int fd)'),
    ptsname_r: f('int ptsname_r(int fd, void *buf, size_t len)'),
    strerror: f('const char *strerror(int errnum)'),
  };
  return libc;
}

function addr(buf: Uint8Array): bigint {
  return koffi().address(buf);
}

// ---------------------------------------------------------------------------
// process supervision
// ---------------------------------------------------------------------------

/** prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are re-parented to us. */
export function setChildSubreaper(): void {
  if (lib().prctl(PR_SET_CHILD_SUBREAPER, 'unsigned long', 1) !== 0) fail('prctl', () => '(PR_SET_CHILD_SUBREAPER)');
}

export function isChildSubreaper(): boolean {
  const v = new Int32Array(1);
  if (lib().prctl(PR_GET_CHILD_SUBREAPER, 'void *', v) !== 0) fail('prctl', () => '(PR_GET_CHILD_SUBREAPER)');
  return v[0] !== 0;
}

export interface WaitResult {
  pid: number;
  /** exit code, or 128+signal */
  status: number;
  code?: number;
  signal?: number;
}

/** Decode a wait status word (as filled by waitpid) into a WaitResult. */
export function decodeWaitStatus(pid: number, st: number): WaitResult {
  const termsig = st & 0x7f;
  if (termsig === 0) {
    const code = (st >> 8) & 0xff;
    return { pid, status: code, code };
  }
  // WIFSIGNALED (0x7f would be "stopped", never reported without WUNTRACED)
  return { pid, status: 128 + termsig, signal: termsig };
}

/**
 * waitpid(pid, &st, WNOHANG|__WALL). Returns null while the child still runs;
 * throws SysError ECHILD when pid is not (or no longer) our child.
 */
export function waitpidNoHang(pid: number): WaitResult | null {
  if (!Number.isInteger(pid) || pid <= 0) throw new RangeError(`waitpidNoHang: pid must be a positive integer, got ${pid}`);
  const st = new Int32Array(1);
  for (;;) {
    const r = lib().waitpid(pid, st, WNOHANG | __WALL) as number;
    if (r === 0) return null;
    if (r > 0) return decodeWaitStatus(r, st[0]!);
    const e = koffi().errno();
    if (e === osConstants.errno.EINTR) continue;
    throw sysError('waitpid', e, `(${pid})`);
  }
}

/** sizeof(siginfo_t) on Linux; si_pid is the int at offset 16 for SIGCHLD. */
const SIGINFO_SIZE = 128;
const peekInfo = Buffer.alloc(SIGINFO_SIZE);

/**
 * The pid of some child (of any of our threads) that has exited and is waiting to be reaped,
 * WITHOUT reaping it (waitid P_ALL, WEXITED|WNOHANG|WNOWAIT|__WALL); 0 when none has exited
 * or we have no children at all. Costs one syscall, however many children are alive.
 */
export function peekExitedChild(): number {
  for (;;) {
    peekInfo.fill(0, 0, 32);
    const r = lib().waitid(P_ALL, 0, peekInfo, WEXITED | WNOHANG | WNOWAIT | __WALL) as number;
    if (r === 0) return readI32(peekInfo, 16);
    const e = koffi().errno();
    if (e === osConstants.errno.EINTR) continue;
    if (e === osConstants.errno.ECHILD) return 0;
    throw sysError('waitid', e, '(P_ALL, WNOWAIT)');
  }
}

/**
 * Children of this process, from /proc/self/task/<tid>/children for every
 * thread (a child belongs to the thread that forked it, and orphans are
 * re-parented to one of our threads). Includes zombies. Deduplicated.
 */
export function childPids(): number[] {
  const out = new Set<number>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return [];
  }
  for (const tid of tids) {
    let text: string;
    try {
      text = readFileSync(`/proc/self/task/${tid}/children`, 'latin1');
    } catch {
      continue; // thread exited meanwhile
    }
    for (const w of text.split(' ')) {
      if (w.length === 0) continue;
      const n = Number(w);
      if (Number.isInteger(n) && n > 0) out.add(n);
    }
  }
  return [...out];
}

// ---------------------------------------------------------------------------
// filesystem
// ---------------------------------------------------------------------------

// Error texts name the type, source and target only: flags and data are the mount's options,
// which can hold credentials (cifs password=..., ceph secret=...).
function mountDetail(source: string, target: string, fstype: string): string {
  return `(type=${JSON.stringify(fstype)} source=${JSON.stringify(source)} target=${JSON.stringify(target)})`;
}

/** mount(2) on the calling (main) thread. Blocks the event loop: tests and start-up only; request paths use mountAsync. */
export function mount(source: string, target: string, fstype: string, flags: number, data?: string): void {
  const r = lib().mount(source, target, fstype, flags >>> 0, data === undefined || data === '' ? null : data);
  if (r !== 0) fail('mount', () => mountDetail(source, target, fstype), target);
}

/** umount2(2) on the calling thread (see mount: tests and start-up only). */
export function umount2(target: string, flags = 0): void {
  if (lib().umount2(target, flags) !== 0) fail('umount2', () => `(${JSON.stringify(target)}, ${flags})`, target);
}

/**
 * Run a libc call on a libuv threadpool thread (koffi's async calls). koffi (>= 3.2) restores the
 * worker thread's errno for the completion callback, so koffi.errno() there is the call's errno.
 */
function callAsync(fn: CFn, args: unknown[], syscall: string, detail: () => string, path?: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    fn.async(...args, (err: unknown, r: number) => {
      if (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (r < 0) {
        reject(sysError(syscall, koffi().errno(), detail(), path));
        return;
      }
      resolve(r);
    });
  });
}

/** mount(2) off the event loop (a threadpool thread). Same errors as mount(). */
export async function mountAsync(source: string, target: string, fstype: string, flags: number, data?: string): Promise<void> {
  await callAsync(lib().mount, [source, target, fstype, flags >>> 0, data === undefined || data === '' ? null : data], 'mount', () => mountDetail(source, target, fstype), target);
}

/** umount2(2) off the event loop (a threadpool thread). */
export async function umount2Async(target: string, flags = 0): Promise<void> {
  await callAsync(lib().umount2, [target, flags], 'umount2', () => `(${JSON.stringify(target)}, ${flags})`, target);
}

export function mkfifo(path: string, mode: number): void {
  if (lib().mkfifo(path, mode) !== 0) fail('mkfifo', () => `(${JSON.stringify(path)}, 0o${mode.toString(8)})`, path);
}

// ---------------------------------------------------------------------------
// terminals
// ---------------------------------------------------------------------------

/** ioctl(fd, TIOCSWINSZ): works on the pty master (what a shim holds) or slave. */
export function setWinsize(fd: number, rows: number, cols: number): void {
  if (!(rows >= 0 && rows <= 0xffff && cols >= 0 && cols <= 0xffff)) throw new RangeError(`setWinsize: rows/cols must fit in 16 bits (${rows}x${cols})`);
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(rows, 0);
  ws.writeUInt16LE(cols, 2);
  fixEndian16(ws);
  if (lib().ioctl(fd, TIOCSWINSZ, 'void *', ws) !== 0) fail('ioctl', () => `(${fd}, TIOCSWINSZ)`);
}

export function getWinsize(fd: number): { rows: number; cols: number } {
  const ws = Buffer.alloc(8);
  if (lib().ioctl(fd, TIOCGWINSZ, 'void *', ws) !== 0) fail('ioctl', () => `(${fd}, TIOCGWINSZ)`);
  fixEndian16(ws);
  return { rows: ws.readUInt16LE(0), cols: ws.readUInt16LE(2) };
}

/** winsize is native-endian u16s; we encode LE, swap on BE hosts. */
function fixEndian16(buf: Buffer): void {
  if (osEndianness === 'BE') buf.swap16();
}
const osEndianness = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 'LE' : 'BE';

/** A new pty pair (master and slave opened O_RDWR|O_NOCTTY|O_CLOEXEC). */
export function openPty(): { master: number; slave: number; name: string } {
  const l = lib();
  const master = l.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC) as number;
  if (master < 0) fail('posix_openpt');
  try {
    if (l.grantpt(master) !== 0) fail('grantpt');
    if (l.unlockpt(master) !== 0) fail('unlockpt');
    const buf = Buffer.alloc(256);
    const r = l.ptsname_r(master, buf, buf.length) as number;
    if (r !== 0) throw sysError('ptsname_r', r);
    const name = buf.toString('utf8', 0, buf.indexOf(0));
    const slave = l.open(name, O_RDWR | O_NOCTTY | O_CLOEXEC, 'uint32_t', 0) as number;
    if (slave < 0) fail('open', () => `(${name})`, name);
    return { master, slave, name };
  } catch (e) {
    l.close(master);
    throw e;
  }
}

// ---------------------------------------------------------------------------
// file descriptors and unix sockets
// ---------------------------------------------------------------------------

/** pipe2(O_CLOEXEC): a real OS pipe [read, write] for a child's stdio (Node's 'pipe' gives socketpairs). */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  if (lib().pipe2(fds, 0o2000000 /* O_CLOEXEC */) !== 0) fail('pipe2');
  return [fds[0]!, fds[1]!];
}

/**
 * socketpair(AF_UNIX, type|CLOEXEC): 'stream' for a byte channel (e.g. one ttrpc connection),
 * 'seqpacket' where message boundaries matter (fds passed with a name, one per message).
 */
export function socketPair(type: 'stream' | 'seqpacket' = 'stream'): [number, number] {
  const fds = new Int32Array(2);
  const t = (type === 'stream' ? SOCK_STREAM : 5 /* SOCK_SEQPACKET */) | SOCK_CLOEXEC;
  if (lib().socketpair(AF_UNIX, t, 0, fds) !== 0) fail('socketpair');
  return [fds[0]!, fds[1]!];
}

/** dup with O_CLOEXEC (fcntl F_DUPFD_CLOEXEC). */
export function dupFd(fd: number): number {
  const r = lib().fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0) as number;
  if (r < 0) fail('fcntl', () => `(${fd}, F_DUPFD_CLOEXEC)`);
  return r;
}

/** dup2: newFd becomes a copy of fd (without close-on-exec), e.g. to point stdio elsewhere. */
export function dup2(fd: number, newFd: number): void {
  if ((lib().dup2(fd, newFd) as number) < 0) fail('dup2', () => `(${fd}, ${newFd})`);
}

const LOCK_EX = 2;
const LOCK_NB = 4;

/** flock(fd, LOCK_EX|LOCK_NB): true when taken, false when another open file holds it. Never blocks. */
export function tryLockExclusive(fd: number): boolean {
  for (;;) {
    if (lib().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    const e = koffi().errno();
    if (e === osConstants.errno.EINTR) continue;
    if (e === osConstants.errno.EWOULDBLOCK || e === osConstants.errno.EAGAIN) return false;
    throw sysError('flock', e, `(${fd}, LOCK_EX|LOCK_NB)`);
  }
}

export function closeFd(fd: number): void {
  if (lib().close(fd) !== 0) {
    const e = koffi().errno();
    // EINTR on Linux still closes the fd; never retry close.
    if (e !== osConstants.errno.EINTR) throw sysError('close', e, `(${fd})`);
  }
}

function sockaddrUn(path: string): Buffer {
  const p = Buffer.from(path, 'utf8');
  if (p.length >= SUN_PATH_MAX) {
    throw new SysError('bind', osConstants.errno.ENAMETOOLONG, 'ENAMETOOLONG', `unix socket path is ${p.length} bytes, the limit is ${SUN_PATH_MAX - 1}: ${path}`, path);
  }
  const sa = Buffer.alloc(2 + SUN_PATH_MAX);
  if (osEndianness === 'LE') sa.writeUInt16LE(AF_UNIX, 0);
  else sa.writeUInt16BE(AF_UNIX, 0);
  p.copy(sa, 2);
  return sa;
}

/** A listening AF_UNIX stream socket bound at path (non-blocking, close-on-exec). */
export function listenUnix(path: string, backlog = 1): number {
  const l = lib();
  const sa = sockaddrUn(path);
  const fd = l.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) fail('socket');
  try {
    if (l.bind(fd, sa, sa.length) !== 0) fail('bind', () => `(${JSON.stringify(path)})`, path);
    if (l.listen(fd, backlog) !== 0) fail('listen', () => `(${JSON.stringify(path)})`, path);
  } catch (e) {
    l.close(fd);
    throw e;
  }
  return fd;
}

/** A blocking AF_UNIX stream socket connected to path (close-on-exec). */
export function connectUnix(path: string): number {
  const l = lib();
  const sa = sockaddrUn(path);
  const fd = l.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) fail('socket');
  for (;;) {
    if (l.connect(fd, sa, sa.length) === 0) return fd;
    const e = koffi().errno();
    if (e === osConstants.errno.EINTR) continue;
    l.close(fd);
    throw sysError('connect', e, `(${JSON.stringify(path)})`, path);
  }
}

/** accept4(fd, NONBLOCK|CLOEXEC); null when no connection is pending (EAGAIN). */
export function acceptNonBlocking(listenFd: number): number | null {
  for (;;) {
    const r = lib().accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC) as number;
    if (r >= 0) return r;
    const e = koffi().errno();
    if (e === osConstants.errno.EINTR || e === osConstants.errno.ECONNABORTED) continue;
    if (e === osConstants.errno.EAGAIN || e === osConstants.errno.EWOULDBLOCK) return null;
    throw sysError('accept4', e, `(${listenFd})`);
  }
}

/** getsockopt(SO_PEERCRED) on a connected AF_UNIX socket. */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number } {
  const cred = Buffer.alloc(12);
  const len = new Uint32Array([12]);
  if (lib().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0) fail('getsockopt', () => `(${fd}, SO_PEERCRED)`);
  const le = osEndianness === 'LE';
  const rd = (o: number): number => (le ? cred.readInt32LE(o) : cred.readInt32BE(o));
  const ru = (o: number): number => (le ? cred.readUInt32LE(o) : cred.readUInt32BE(o));
  return { pid: rd(0), uid: ru(4), gid: ru(8) };
}

// msghdr on LP64: name(8) namelen(4)+pad(4) iov(8) iovlen(8) control(8) controllen(8) flags(4)+pad(4) = 56
const MSGHDR_SIZE = 56;
const CMSG_HDR = 16; // cmsg_len(size_t) level(int) type(int)
const cmsgAlign = (n: number): number => (n + 7) & ~7;
const cmsgSpace = (n: number): number => CMSG_HDR + cmsgAlign(n);

function writeU64(buf: Buffer, off: number, v: bigint | number): void {
  if (osEndianness === 'LE') buf.writeBigUInt64LE(BigInt(v), off);
  else buf.writeBigUInt64BE(BigInt(v), off);
}
function readU64(buf: Buffer, off: number): number {
  return Number(osEndianness === 'LE' ? buf.readBigUInt64LE(off) : buf.readBigUInt64BE(off));
}
function writeI32(buf: Buffer, off: number, v: number): void {
  if (osEndianness === 'LE') buf.writeInt32LE(v, off);
  else buf.writeInt32BE(v, off);
}
function readI32(buf: Buffer, off: number): number {
  return osEndianness === 'LE' ? buf.readInt32LE(off) : buf.readInt32BE(off);
}

/** sendmsg one SCM_RIGHTS fd with `name` as the payload (what runc does with the pty master). */
export function sendFd(sockFd: number, fd: number, name: string): void {
  const payload = Buffer.from(name.length > 0 ? name : '\0', 'utf8');
  const iov = Buffer.alloc(16);
  writeU64(iov, 0, addr(payload));
  writeU64(iov, 8, payload.length);
  const control = Buffer.alloc(cmsgSpace(4));
  writeU64(control, 0, CMSG_HDR + 4); // CMSG_LEN(sizeof(int))
  writeI32(control, 8, SOL_SOCKET);
  writeI32(control, 12, SCM_RIGHTS);
  writeI32(control, 16, fd);
  const msg = Buffer.alloc(MSGHDR_SIZE);
  writeU64(msg, 16, addr(iov));
  writeU64(msg, 24, 1);
  writeU64(msg, 32, addr(control));
  writeU64(msg, 40, control.length);
  for (;;) {
    const r = Number(lib().sendmsg(sockFd, msg, MSG_NOSIGNAL));
    if (r >= 0) break;
    const e = koffi().errno();
    if (e === osConstants.errno.EINTR) continue;
    throw sysError('sendmsg', e, `(${sockFd}, SCM_RIGHTS fd ${fd})`);
  }
  // keep the buffers reachable until after the call (their addresses are in msg)
  void payload.length;
  void iov.length;
  void control.length;
}

const MAX_RECV_FDS = 16;

/**
 * recvmsg(MSG_DONTWAIT|MSG_CMSG_CLOEXEC) one message carrying SCM_RIGHTS.
 * Returns null when nothing is ready (EAGAIN). The first received fd is
 * returned; any extra fds in the message are closed. Throws when the peer
 * closed the connection or sent data without a descriptor.
 */
export function recvFd(sockFd: number): { fd: number; name: string } | null {
  const data = Buffer.alloc(4096);
  const iov = Buffer.alloc(16);
  writeU64(iov, 0, addr(data));
  writeU64(iov, 8, data.length);
  const control = Buffer.alloc(cmsgSpace(4 * MAX_RECV_FDS));
  const msg = Buffer.alloc(MSGHDR_SIZE);
  writeU64(msg, 16, addr(iov));
  writeU64(msg, 24, 1);
  writeU64(msg, 32, addr(control));
  writeU64(msg, 40, control.length);
  let n: number;
  for (;;) {
    n = Number(lib().recvmsg(sockFd, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    if (n >= 0) break;
    const e = koffi().errno();
    if (e === osConstants.errno.EINTR) continue;
    if (e === osConstants.errno.EAGAIN || e === osConstants.errno.EWOULDBLOCK) return null;
    throw sysError('recvmsg', e, `(${sockFd})`);
  }
  const controllen = readU64(msg, 40);
  const flags = readI32(msg, 48);
  const fds: number[] = [];
  let off = 0;
  while (off + CMSG_HDR <= controllen) {
    const len = readU64(control, off);
    if (len < CMSG_HDR || off + len > controllen) break;
    const level = readI32(control, off + 8);
    const type = readI32(control, off + 12);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let p = off + CMSG_HDR; p + 4 <= off + len; p += 4) fds.push(readI32(control, p));
    }
    off += cmsgAlign(len);
  }
  const name = data.toString('utf8', 0, n).replace(/\0+$/, '');
  if (fds.length === 0) {
    if (n === 0) throw new SysError('recvmsg', osConstants.errno.ECONNRESET, 'ECONNRESET', 'recvmsg: peer closed the connection without sending a file descriptor');
    throw new SysError('recvmsg', osConstants.errno.EPROTO, 'EPROTO', `recvmsg: message ${JSON.stringify(name)} carried no SCM_RIGHTS descriptor${flags & MSG_CTRUNC ? ' (control data truncated)' : ''}`);
  }
  for (const extra of fds.slice(1)) lib().close(extra);
  return { fd: fds[0]!, name };
}
