/**
 * Locating a process's cgroup: v1 or v2 host, and the controller directories of
 * /proc/<pid>/cgroup (v1 mounts found through the shared mountinfo parser).
 */
import fs from 'node:fs';
import path from 'node:path';
import { notFound } from '../../../shim-api/errors.js';
import { parseMountinfo } from '../../../sys/mountinfo.js';

export type CgroupMode = 'v1' | 'v2';
/** v1: controller -> absolute directory; v2: { unified: directory } */
export interface CgroupRef {
  mode: CgroupMode;
  dirs: Record<string, string>;
}

const ROOT = '/sys/fs/cgroup';

/** v2 only when the root itself is the unified hierarchy; hybrid hosts count as v1. */
export function detectMode(root = ROOT): CgroupMode {
  return fs.existsSync(path.join(root, 'cgroup.controllers')) ? 'v2' : 'v1';
}

interface CgroupMount {
  mountPoint: string;
  /** the cgroup path the mount shows at its mount point (mountinfo field 4) */
  mountRoot: string;
  controllers: string[];
}

/** cgroup v1 mounts (fstype "cgroup"; super options name the controllers). */
function v1Mounts(mountinfo: string): CgroupMount[] {
  return parseMountinfo(mountinfo)
    .filter((m) => m.fstype === 'cgroup')
    .map((m) => ({ mountPoint: m.mountPoint, mountRoot: m.root, controllers: m.superOptions.split(',') }));
}

function readMountinfo(): string {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}

/**
 * Parse /proc/<pid>/cgroup text into controller directories under `root`.
 * v1: every controller of every "N:ctrl1,ctrl2:/path" line (named hierarchies such as
 * name=systemd are skipped). The directory is found through the controller's mount in
 * `mountinfo` when that mount lies under `root` (joint mounts such as cpu,cpuacct, and nested
 * mounts whose root is not "/", as containerd's getCgroupDestination), else root/<ctrl>, else
 * root/<ctrl1,ctrl2>. v2: the "0::/path" line, as { unified }.
 * `mountinfo` defaults to /proc/self/mountinfo when `root` is the default root, '' otherwise.
 */
export function cgroupFromProcText(text: string, root = ROOT, mode = detectMode(root), mountinfo?: string): CgroupRef {
  const dirs: Record<string, string> = {};
  const mounts = mode === 'v1' ? v1Mounts(mountinfo ?? (root === ROOT ? readMountinfo() : '')) : [];
  const under = (p: string) => p === root || p.startsWith(root.endsWith('/') ? root : root + '/');
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const ctrls = m[2]!;
    const rel = m[3]!;
    if (mode === 'v2') {
      if (ctrls === '') dirs.unified = path.join(root, rel);
      continue;
    }
    for (const ctrl of ctrls.split(',')) {
      if (!ctrl || ctrl.startsWith('name=')) continue;
      const mount = mounts.find((x) => x.controllers.includes(ctrl) && under(x.mountPoint));
      if (mount) {
        const r = path.posix.relative(mount.mountRoot, rel);
        dirs[ctrl] = r.startsWith('..') ? path.join(mount.mountPoint, rel) : path.join(mount.mountPoint, r);
        continue;
      }
      const candidates = [path.join(root, ctrl), path.join(root, ctrls)];
      const base = candidates.find((c) => fs.existsSync(c)) ?? candidates[0]!;
      dirs[ctrl] = path.join(base, rel);
    }
  }
  return { mode, dirs };
}

/** The cgroup of a live process; NotFound when the process is gone. */
export function cgroupOfPid(pid: number, root = ROOT): CgroupRef {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    throw notFound(`cgroup of pid ${pid}: process not found`);
  }
  return cgroupFromProcText(text, root);
}
