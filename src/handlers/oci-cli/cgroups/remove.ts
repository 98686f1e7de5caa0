/**
 * Removing a container's cgroup after a failed `create`: a runtime killed in the middle of
 * create (SIGKILL, OOM) made the container's cgroup directories but never wrote its state, so
 * `<runtime> delete --force` cannot find the container and the directories stay behind (runc-v2
 * leaves them too). The cgroupsPath of the spec names them on every cgroup hierarchy: v1
 * controllers, named hierarchies (name=systemd) and the v2 (or hybrid "unified") mount.
 * Only the leaf is removed, with rmdir, which the kernel refuses while a process is inside.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { parseMountinfo } from '../../../sys/mountinfo.js';

const ROOT = '/sys/fs/cgroup';

/**
 * The directories an absolute cgroupfs `cgroupsPath` names on each cgroup hierarchy mounted at or
 * under `root`, per `mountinfo`. None for systemd-style paths ("slice:prefix:name"), relative
 * paths (resolved by the runtime against its own cgroup) and the root cgroup itself.
 */
export function cgroupDirsOf(cgroupsPath: string | undefined, mountinfo: string, root = ROOT): string[] {
  if (!cgroupsPath || !cgroupsPath.startsWith('/') || cgroupsPath.includes(':')) return [];
  const rel = path.posix.normalize(cgroupsPath);
  if (rel === '/') return [];
  const under = (p: string) => p === root || p.startsWith(root.endsWith('/') ? root : root + '/');
  const dirs = new Set<string>();
  for (const m of parseMountinfo(mountinfo)) {
    if ((m.fstype !== 'cgroup' && m.fstype !== 'cgroup2') || !under(m.mountPoint)) continue;
    const inMount = path.posix.relative(m.root, rel);
    if (inMount === '' || inMount.startsWith('..')) continue; // the path is not inside this mount's view
    dirs.add(path.join(m.mountPoint, inMount));
  }
  return [...dirs];
}

/** rmdir each of the container's cgroup directories; what was removed and what stayed (with why). */
export async function removeCgroupDirs(
  cgroupsPath: string | undefined,
  opts: { root?: string; mountinfo?: string } = {},
): Promise<{ removed: string[]; kept: Array<{ dir: string; code: string }> }> {
  const removed: string[] = [];
  const kept: Array<{ dir: string; code: string }> = [];
  if (!cgroupsPath) return { removed, kept };
  const mountinfo = opts.mountinfo ?? (await fsp.readFile('/proc/self/mountinfo', 'utf8').catch(() => ''));
  for (const dir of cgroupDirsOf(cgroupsPath, mountinfo, opts.root)) {
    try {
      await fsp.rmdir(dir);
      removed.push(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      if (code !== 'ENOENT') kept.push({ dir, code });
    }
  }
  return { removed, kept };
}
