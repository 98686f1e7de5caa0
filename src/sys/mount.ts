/**
 * Rootfs mounts the way containerd's mount package does them (mount/mount_linux.go, 1.6):
 * fstab-style option words become MS_* flags, everything else is the data string;
 * propagation changes are separate mount(2) calls; bind+ro needs a remount.
 * Every syscall here runs off the event loop (koffi async calls on libuv's threadpool).
 */
import fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MS_BIND,
  MS_DIRSYNC,
  MS_MANDLOCK,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_SHARED,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
  MS_UNBINDABLE,
  MNT_DETACH,
  SysError,
  errnoName,
  mountAsync,
  umount2Async,
} from './libc.js';
import { reaper } from './reaper.js';

export { MNT_DETACH, MNT_FORCE } from './libc.js';

export interface MountSpec {
  type: string;
  source: string;
  /** relative to rootfs (containerd 2.x); absent = the rootfs itself */
  target?: string;
  options: string[];
}

export interface ParsedMountOptions {
  /** MS_* flags for the mount call (propagation excluded) */
  flags: number;
  /** comma-joined filesystem-specific options */
  data: string;
  /** propagation changes to apply, in order, after the mount (MS_SHARED|MS_REC, ...) */
  propagation: number[];
  /** bind + ro: the kernel ignores MS_RDONLY on a bind, a remount applies it */
  remountRo: boolean;
  /** the `loop` word was present (loop devices are not supported here) */
  loop: boolean;
}

const FLAG_WORDS: Record<string, { clear: boolean; flag: number }> = {
  async: { clear: true, flag: MS_SYNCHRONOUS },
  atime: { clear: true, flag: MS_NOATIME },
  bind: { clear: false, flag: MS_BIND },
  defaults: { clear: false, flag: 0 },
  dev: { clear: true, flag: MS_NODEV },
  diratime: { clear: true, flag: MS_NODIRATIME },
  dirsync: { clear: false, flag: MS_DIRSYNC },
  exec: { clear: true, flag: MS_NOEXEC },
  mand: { clear: false, flag: MS_MANDLOCK },
  noatime: { clear: false, flag: MS_NOATIME },
  nodev: { clear: false, flag: MS_NODEV },
  nodiratime: { clear: false, flag: MS_NODIRATIME },
  noexec: { clear: false, flag: MS_NOEXEC },
  nomand: { clear: true, flag: MS_MANDLOCK },
  norelatime: { clear: true, flag: MS_RELATIME },
  nostrictatime: { clear: true, flag: MS_STRICTATIME },
  nosuid: { clear: false, flag: MS_NOSUID },
  rbind: { clear: false, flag: MS_BIND | MS_REC },
  relatime: { clear: false, flag: MS_RELATIME },
  remount: { clear: false, flag: MS_REMOUNT },
  ro: { clear: false, flag: MS_RDONLY },
  rw: { clear: true, flag: MS_RDONLY },
  strictatime: { clear: false, flag: MS_STRICTATIME },
  suid: { clear: true, flag: MS_NOSUID },
  sync: { clear: false, flag: MS_SYNCHRONOUS },
};

const PROPAGATION_WORDS: Record<string, number> = {
  private: MS_PRIVATE,
  rprivate: MS_PRIVATE | MS_REC,
  shared: MS_SHARED,
  rshared: MS_SHARED | MS_REC,
  slave: MS_SLAVE,
  rslave: MS_SLAVE | MS_REC,
  unbindable: MS_UNBINDABLE,
  runbindable: MS_UNBINDABLE | MS_REC,
};

/** fstab words -> MS_* flags; unknown words -> data (containerd's parseMountOptions, plus propagation words). */
export function parseMountOptions(options: string[]): ParsedMountOptions {
  let flags = 0;
  const data: string[] = [];
  const propagation: number[] = [];
  let loop = false;
  for (const o of options) {
    const f = FLAG_WORDS[o];
    if (f && f.flag !== 0) {
      if (f.clear) flags &= ~f.flag;
      else flags |= f.flag;
    } else if (f) {
      // "defaults": no flag. containerd passes it on as data, which filesystems
      // such as tmpfs then reject; it is dropped here instead.
    } else if (o in PROPAGATION_WORDS) {
      propagation.push(PROPAGATION_WORDS[o]!);
    } else if (o === 'loop') {
      loop = true;
    } else {
      data.push(o);
    }
  }
  flags >>>= 0;
  const remountRo = (flags & (MS_BIND | MS_RDONLY)) === (MS_BIND | MS_RDONLY);
  return { flags, data: data.join(','), propagation, remountRo, loop };
}

const PAGE_SIZE = 4096;

/**
 * containerd's compactLowerdirOption: when overlay options approach one page,
 * mount from the lowerdirs' common parent with relative lowerdir paths.
 * Returns the directory to mount from ('' = no change) and the new options.
 */
export function compactLowerdirOption(options: string[]): { chdir: string; options: string[] } {
  const idx = options.findIndex((o) => o.startsWith('lowerdir='));
  if (idx === -1) return { chdir: '', options };
  const dirs = options[idx]!.slice('lowerdir='.length).split(':');
  if (dirs.length === 1) return { chdir: '', options };
  let min = dirs[0]!;
  let max = dirs[0]!;
  for (const d of dirs) {
    if (d < min) min = d;
    if (d > max) max = d;
  }
  let i = 0;
  while (i < min.length && i < max.length && min[i] === max[i]) i++;
  const common = min.slice(0, i);
  if (common === '') return { chdir: '', options };
  // snapshot ids are digits: step back to the parent so "snapshots/1" and "snapshots/12" do not share "snapshots/1"
  // (Go's path.Dir semantics: "/a/snapshots/" -> "/a/snapshots", unlike node's dirname)
  const slash = common.lastIndexOf('/');
  if (slash <= 0) return { chdir: '', options };
  const parent = `${path.posix.normalize(common.slice(0, slash))}/`;
  const rel = dirs.map((d) => d.slice(parent.length));
  const out = options.filter((_, j) => j !== idx);
  out.push(`lowerdir=${rel.join(':')}`);
  return { chdir: parent, options: out };
}

function optionsSize(options: string[]): number {
  return options.reduce((n, o) => n + Buffer.byteLength(o), 0);
}

/** What errors and logs may say about a mount: never its options (they can hold credentials). */
function describe(m: MountSpec): string {
  return `{type=${m.type} source=${m.source}${m.target ? ` target=${m.target}` : ''}}`;
}

const MAX_SYMLINKS = 255;

/**
 * securejoin (github.com/cyphar/filepath-securejoin, containerd's fs.RootPath): `root/unsafe`
 * resolved component by component, symlinks resolved relative to `root` (an absolute link
 * target starts again at root), `..` never climbs above root. Components that do not exist
 * are joined lexically. The result always lies inside root.
 */
export async function secureJoin(root: string, unsafe: string): Promise<string> {
  const base = path.resolve(root);
  let resolved = ''; // '' or '/a/b': inside root, symlink-free
  let remaining = unsafe;
  let links = 0;
  while (remaining !== '') {
    const slash = remaining.indexOf('/');
    const comp = slash === -1 ? remaining : remaining.slice(0, slash);
    remaining = slash === -1 ? '' : remaining.slice(slash + 1);
    if (comp === '' || comp === '.') continue;
    if (comp === '..') {
      resolved = resolved.slice(0, Math.max(0, resolved.lastIndexOf('/')));
      continue;
    }
    const candidate = `${resolved}/${comp}`;
    let st;
    try {
      st = await fsp.lstat(base + candidate);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') {
        resolved = candidate;
        continue;
      }
      throw e;
    }
    if (!st.isSymbolicLink()) {
      resolved = candidate;
      continue;
    }
    if (++links > MAX_SYMLINKS) throw new SysError('securejoin', osConstants.errno.ELOOP, 'ELOOP', `too many symlinks resolving ${JSON.stringify(unsafe)} in ${root}`, base + candidate);
    const dest = await fsp.readlink(base + candidate);
    if (dest.startsWith('/')) resolved = '';
    remaining = remaining === '' ? dest : `${dest}/${remaining}`;
  }
  return base + resolved;
}

/** m.target resolved inside rootfs (securejoin semantics); the rootfs itself when absent. */
async function targetOf(m: MountSpec, rootfs: string): Promise<string> {
  if (!m.target) return rootfs;
  return secureJoin(rootfs, m.target);
}

const MOUNT_IN_DIR_SCRIPT = `
const [koffiPath, source, target, type, flags, data] = process.argv.slice(1);
const k = require(koffiPath);
const mount = k.load('libc.so.6').func('int mount(const char *s, const char *t, const char *f, unsigned long fl, const char *d)');
if (mount(source, target, type, Number(flags), data === '' ? null : data) !== 0) { process.stderr.write('errno=' + k.errno()); process.exit(1); }
`;

/**
 * mount(2) with relative paths in `data` resolved against `dir`. The cwd is per process, so
 * a chdir in the shim would move every other request's relative paths; a short-lived helper
 * does it (only overlays whose options approach a page take this path).
 */
async function mountInDir(dir: string, source: string, target: string, fstype: string, flags: number, data: string): Promise<void> {
  const koffiPath = createRequire(import.meta.url).resolve('koffi');
  const r = await reaper.run(process.execPath, ['-e', MOUNT_IN_DIR_SCRIPT, koffiPath, source, path.resolve(target), fstype, String(flags >>> 0), data], { cwd: dir });
  if (r.exitCode === 0) return;
  const m = /errno=(\d+)/.exec(r.stderr);
  if (!m) throw new Error(`mount (type=${JSON.stringify(fstype)} source=${JSON.stringify(source)} target=${JSON.stringify(target)}): the mount helper failed (exit status ${r.exitCode})`);
  const errno = Number(m[1]);
  const code = errnoName(errno);
  throw new SysError('mount', errno, code, `mount (type=${JSON.stringify(fstype)} source=${JSON.stringify(source)} target=${JSON.stringify(target)}): ${code}`, target);
}

/** Mount one spec at target; calls onMounted as soon as something is mounted there (for rollback). */
async function mountOne(m: MountSpec, target: string, onMounted: () => void): Promise<void> {
  let options = m.options;
  let chdir = '';
  if (m.type === 'overlay' && optionsSize(options) >= PAGE_SIZE - 512) {
    ({ chdir, options } = compactLowerdirOption(options));
  }
  const p = parseMountOptions(options);
  if (p.loop) throw new Error('loop mounts are not supported');
  if (m.type.startsWith('fuse.') || m.type.startsWith('fuse3.')) throw new Error(`FUSE mounts (${m.type}) are not supported`);
  if (Buffer.byteLength(p.data) > PAGE_SIZE) throw new Error(`mount options are too long (${Buffer.byteLength(p.data)} bytes, the limit is ${PAGE_SIZE})`);
  const PTYPES = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;
  const oflags = (p.flags & ~PTYPES) >>> 0;
  if ((p.flags & MS_REMOUNT) === 0 || p.data !== '') {
    if (chdir) await mountInDir(chdir, m.source, target, m.type, oflags, p.data);
    else await mountAsync(m.source, target, m.type, oflags, p.data);
    onMounted();
  }
  for (const prop of p.propagation) await mountAsync('', target, '', prop, undefined);
  if (p.remountRo) await mountAsync('', target, '', (oflags | MS_REMOUNT) >>> 0, undefined);
}

/**
 * Apply mounts in order on rootfs (each at rootfs/<target>, resolved inside rootfs). Every
 * syscall runs off the event loop. On failure, unmount what this call mounted (newest first)
 * and reject naming the mount (type, source, target: never its options), its index and errno.
 */
export async function mountAll(mounts: MountSpec[], rootfs: string): Promise<void> {
  const done: string[] = [];
  for (let i = 0; i < mounts.length; i++) {
    const m = mounts[i]!;
    try {
      const target = await targetOf(m, rootfs);
      await mountOne(m, target, () => done.push(target));
    } catch (e) {
      const cleanup: string[] = [];
      for (const t of done.reverse()) {
        try {
          await umount2Async(t, 0);
        } catch (ue) {
          try {
            await umount2Async(t, MNT_DETACH);
          } catch {
            cleanup.push(`${t}: ${(ue as Error).message}`);
          }
        }
      }
      const why = e instanceof Error ? e.message : String(e);
      const err = new Error(
        `failed to mount ${describe(m)} (${i + 1} of ${mounts.length}) on ${rootfs}: ${why}` +
          (cleanup.length ? `; could not undo earlier mounts: ${cleanup.join('; ')}` : ''),
        { cause: e },
      );
      if (e instanceof SysError) Object.assign(err, { code: e.code });
      throw err;
    }
  }
}

/** umount with containerd's EBUSY retry (50 x 50 ms, waiting on a timer). EINVAL (not a mount point) passes through. */
async function unmountRetry(target: string, flags: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      await umount2Async(target, flags);
      return;
    } catch (e) {
      if (e instanceof SysError && e.code === 'EBUSY') {
        await sleep(50);
        continue;
      }
      throw e;
    }
  }
  throw new SysError('umount2', 16, 'EBUSY', `failed to unmount ${target}: EBUSY after 50 attempts`, target);
}

/**
 * Unmount target repeatedly until nothing is mounted there (EINVAL), like
 * containerd's UnmountAll. No-op for '' or a missing path.
 */
export async function unmountAll(target: string, flags = 0): Promise<void> {
  if (target === '') return;
  try {
    await fsp.lstat(target);
  } catch {
    return;
  }
  for (;;) {
    try {
      await unmountRetry(target, flags);
    } catch (e) {
      if (e instanceof SysError && (e.code === 'EINVAL' || e.code === 'ENOENT')) return;
      throw e;
    }
  }
}
