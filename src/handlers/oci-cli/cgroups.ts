/**
 * A container's cgroup as containerd's runc shim (containerd-shim-runc-v2, containerd/cgroups
 * v1.0) reads it: Stats as the `io.containerd.cgroups.v1.Metrics` / `.v2.Metrics` Any, and the
 * OOM-kill counter (docs/adr/0004-oom-detection.md). Plain file reads; any backend whose
 * container lives in a host cgroup (runc, crun, youki; runsc's sandbox) works.
 *
 * Fidelity notes (what containerd/cgroups does, reproduced here):
 * - v1: `Stat(cgroups.IgnoreNotExist)`: a controller whose file is missing stops that
 *   controller's reading at the missing file, keeping what was filled so far; cpu.usage and
 *   cpu.throttling are always present; the four MemoryEntry messages are present (zero) once
 *   memory.stat was read; pids.max "max" is limit 0; cpuacct.stat ticks are USER_HZ=100.
 * - v2: `Manager.Stat()`: cpu.stat / memory.stat only for controllers listed in the group's
 *   cgroup.controllers; "max" is 2^64-1 (pids.max, memory.max, memory.swap.max, hugetlb max);
 *   memory_events only when memory.events has entries; rdma and io always present.
 * - negative numbers parse as 0 (containerd's parseUint), values are exact bigints.
 */
import { cgroupsV1, cgroupsV2, packAny, TYPE_URL, type Any } from '../../shim-api/pb.js';
import { notFound } from '../../shim-api/errors.js';
import type { CgroupRef } from './cgroups/locate.js';
import { exists, snapshot, withFiles } from './cgroups/files.js';
import { v1Metrics } from './cgroups/v1.js';
import { v2Metrics } from './cgroups/v2.js';

export { detectMode, cgroupFromProcText, cgroupOfPid, type CgroupMode, type CgroupRef } from './cgroups/locate.js';
export { MAX_U64 } from './cgroups/files.js';
export { oomKillCount, OomWatcher } from './cgroups/oom.js';

const V1_STAT_CONTROLLERS = ['hugetlb', 'pids', 'cpu', 'cpuacct', 'memory', 'blkio'];

/**
 * Stats, typed as runc-v2 types them. NotFound ("cgroup does not exist") when none of the
 * group's directories exist. `procRoot` is where `partitions` is read for blkio device names.
 */
export function readMetrics(ref: CgroupRef, procRoot = '/proc'): Any {
  if (ref.mode === 'v2') {
    if (!exists(ref.dirs.unified)) throw notFound('cgroup does not exist');
    return packAny(TYPE_URL.CgroupsV2Metrics, cgroupsV2.Metrics, v2Metrics(ref.dirs.unified));
  }
  if (!V1_STAT_CONTROLLERS.some((c) => exists(ref.dirs[c]))) throw notFound('cgroup does not exist');
  return packAny(TYPE_URL.CgroupsV1Metrics, cgroupsV1.Metrics, v1Metrics(ref.dirs, procRoot));
}


/** readMetrics over a snapshot read with async I/O: what a Stats request uses (never blocks the event loop). */
export async function loadMetrics(ref: CgroupRef, procRoot = '/proc'): Promise<Any> {
  const files = await snapshot(Object.values(ref.dirs), ref.mode === 'v1' ? [`${procRoot}/partitions`] : []);
  return withFiles(files, () => readMetrics(ref, procRoot));
}
