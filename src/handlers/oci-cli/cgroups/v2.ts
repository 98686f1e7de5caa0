/** cgroup v2 Stats as containerd/cgroups v2 fills `io.containerd.cgroups.v2.Metrics` (see ../cgroups.ts). */
import { cgroupsV2 } from '../../../shim-api/pb.js';
import { camel, list, MAX_U32, MAX_U64, parseU64, read, readKV, readU64, readU64OrMax } from './files.js';

/** memory.stat keys containerd/cgroups v2 reads (the field is the key in camelCase) */
const V2_MEMORY_STAT = [
  'anon', 'file', 'kernel_stack', 'slab', 'sock', 'shmem', 'file_mapped', 'file_dirty', 'file_writeback',
  'anon_thp', 'inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable',
  'slab_reclaimable', 'slab_unreclaimable', 'pgfault', 'pgmajfault', 'workingset_refault',
  'workingset_activate', 'workingset_nodereclaim', 'pgrefill', 'pgscan', 'pgsteal', 'pgactivate',
  'pgdeactivate', 'pglazyfree', 'pglazyfreed', 'thp_fault_alloc', 'thp_collapse_alloc',
] as const;

function v2Io(dir: string): cgroupsV2.IOEntry[] {
  const out: cgroupsV2.IOEntry[] = [];
  for (const line of (read(dir, 'io.stat') ?? '').split('\n')) {
    const parts = line.split(' ');
    if (parts.length < 2) continue;
    const mm = parts[0]!.split(':');
    if (mm.length !== 2) continue;
    const major = parseU64(mm[0]!);
    const minor = parseU64(mm[1]!);
    if (major === undefined || minor === undefined) break;
    const e: cgroupsV2.IOEntry = { major, minor, rbytes: 0n, wbytes: 0n, rios: 0n, wios: 0n };
    for (const kv of parts.slice(1)) {
      const [k, v, extra] = kv.split('=');
      if (v === undefined || extra !== undefined) continue;
      const n = parseU64(v);
      if (n === undefined) continue;
      if (k === 'rbytes' || k === 'wbytes' || k === 'rios' || k === 'wios') e[k] = n;
    }
    out.push(e);
  }
  return out;
}

function v2Rdma(dir: string, file: string): cgroupsV2.RdmaEntry[] {
  const out: cgroupsV2.RdmaEntry[] = [];
  for (const line of (read(dir, file) ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) continue;
    const e: cgroupsV2.RdmaEntry = { device: f[0]!, hcaHandles: 0, hcaObjects: 0 };
    for (const kv of f.slice(1)) {
      const [k, v, extra] = kv.split('=');
      if (v === undefined || extra !== undefined) continue;
      const n = v === 'max' ? MAX_U32 : Number(parseU64(v) ?? -1n);
      if (n < 0 || n > MAX_U32) continue;
      if (k === 'hca_handle') e.hcaHandles = n;
      else if (k === 'hca_object') e.hcaObjects = n;
    }
    out.push(e);
  }
  return out;
}

function v2Hugetlb(dir: string): cgroupsV2.HugeTlbStat[] {
  const names = list(dir);
  if (!names) return [];
  const sizes = new Set<string>();
  for (const n of names) {
    if (n.startsWith('hugetlb.') && (n.endsWith('max') || n.endsWith('current'))) sizes.add(n.split('.')[1]!);
  }
  return [...sizes].sort().map((pagesize) => ({
    pagesize,
    max: readU64OrMax(dir, `hugetlb.${pagesize}.max`),
    current: readU64OrMax(dir, `hugetlb.${pagesize}.current`),
  }));
}

export function v2Metrics(dir: string): cgroupsV2.Metrics {
  const controllers = (read(dir, 'cgroup.controllers') ?? '').split(/\s+/).filter(Boolean);
  const cpu = controllers.includes('cpu') ? (readKV(dir, 'cpu.stat') ?? new Map<string, bigint>()) : new Map<string, bigint>();
  const stat = controllers.includes('memory') ? (readKV(dir, 'memory.stat') ?? new Map<string, bigint>()) : new Map<string, bigint>();
  const memory = cgroupsV2.MemoryStat.fromPartial({});
  for (const key of V2_MEMORY_STAT) (memory as unknown as Record<string, bigint>)[camel(key)] = stat.get(key) ?? 0n;
  memory.usage = readU64OrMax(dir, 'memory.current');
  memory.usageLimit = readU64OrMax(dir, 'memory.max');
  memory.swapUsage = readU64OrMax(dir, 'memory.swap.current');
  memory.swapLimit = readU64OrMax(dir, 'memory.swap.max');
  const ev = readKV(dir, 'memory.events');
  const pidsMax = read(dir, 'pids.max')?.trim();
  return cgroupsV2.Metrics.fromPartial({
    pids: {
      current: readU64(dir, 'pids.current') ?? 0n,
      limit: pidsMax === 'max' ? MAX_U64 : pidsMax === undefined ? 0n : (parseU64(pidsMax) ?? 0n),
    },
    cpu: {
      usageUsec: cpu.get('usage_usec') ?? 0n,
      userUsec: cpu.get('user_usec') ?? 0n,
      systemUsec: cpu.get('system_usec') ?? 0n,
      nrPeriods: cpu.get('nr_periods') ?? 0n,
      nrThrottled: cpu.get('nr_throttled') ?? 0n,
      throttledUsec: cpu.get('throttled_usec') ?? 0n,
    },
    memory,
    memoryEvents:
      ev && ev.size > 0
        ? { low: ev.get('low') ?? 0n, high: ev.get('high') ?? 0n, max: ev.get('max') ?? 0n, oom: ev.get('oom') ?? 0n, oomKill: ev.get('oom_kill') ?? 0n }
        : undefined,
    io: { usage: v2Io(dir) },
    rdma: { current: v2Rdma(dir, 'rdma.current'), limit: v2Rdma(dir, 'rdma.max') },
    hugetlb: v2Hugetlb(dir),
  });
}
