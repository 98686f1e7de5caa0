/** cgroup v1 Stats as containerd/cgroups v1 fills `io.containerd.cgroups.v1.Metrics` (see ../cgroups.ts). */
import path from 'node:path';
import { cgroupsV1 } from '../../../shim-api/pb.js';
import { exists, list, parseU64, read, readKV, readU64 } from './files.js';

/** memory.stat key -> MemoryStat field, exactly the keys containerd/cgroups v1 reads */
const V1_MEMORY_STAT: ReadonlyArray<readonly [string, keyof cgroupsV1.MemoryStat]> = [
  ['cache', 'cache'], ['rss', 'rss'], ['rss_huge', 'rssHuge'], ['mapped_file', 'mappedFile'],
  ['dirty', 'dirty'], ['writeback', 'writeback'], ['pgpgin', 'pgPgIn'], ['pgpgout', 'pgPgOut'],
  ['pgfault', 'pgFault'], ['pgmajfault', 'pgMajFault'], ['inactive_anon', 'inactiveAnon'],
  ['active_anon', 'activeAnon'], ['inactive_file', 'inactiveFile'], ['active_file', 'activeFile'],
  ['unevictable', 'unevictable'], ['hierarchical_memory_limit', 'hierarchicalMemoryLimit'],
  ['hierarchical_memsw_limit', 'hierarchicalSwapLimit'], ['total_cache', 'totalCache'],
  ['total_rss', 'totalRss'], ['total_rss_huge', 'totalRssHuge'], ['total_mapped_file', 'totalMappedFile'],
  ['total_dirty', 'totalDirty'], ['total_writeback', 'totalWriteback'], ['total_pgpgin', 'totalPgPgIn'],
  ['total_pgpgout', 'totalPgPgOut'], ['total_pgfault', 'totalPgFault'], ['total_pgmajfault', 'totalPgMajFault'],
  ['total_inactive_anon', 'totalInactiveAnon'], ['total_active_anon', 'totalActiveAnon'],
  ['total_inactive_file', 'totalInactiveFile'], ['total_active_file', 'totalActiveFile'],
  ['total_unevictable', 'totalUnevictable'],
];

function v1Memory(dir: string, m: cgroupsV1.Metrics): void {
  const stat = readKV(dir, 'memory.stat');
  if (!stat) return;
  const memory = cgroupsV1.MemoryStat.fromPartial({ usage: {}, swap: {}, kernel: {}, kernelTcp: {} });
  for (const [key, field] of V1_MEMORY_STAT) (memory as unknown as Record<string, bigint>)[field] = stat.get(key) ?? 0n;
  m.memory = memory;
  const oom = readKV(dir, 'memory.oom_control');
  if (!oom) return;
  m.memoryOomControl = { oomKillDisable: oom.get('oom_kill_disable') ?? 0n, underOom: oom.get('under_oom') ?? 0n, oomKill: oom.get('oom_kill') ?? 0n };
  // Like containerd, the first missing file ends the reading (no memsw without swap accounting
  // also leaves kernel and kernelTcp at zero).
  const entries: Array<[string, cgroupsV1.MemoryEntry]> = [
    ['memory', memory.usage!], ['memory.memsw', memory.swap!], ['memory.kmem', memory.kernel!], ['memory.kmem.tcp', memory.kernelTcp!],
  ];
  const files: Array<[string, keyof cgroupsV1.MemoryEntry]> = [
    ['usage_in_bytes', 'usage'], ['max_usage_in_bytes', 'max'], ['failcnt', 'failcnt'], ['limit_in_bytes', 'limit'],
  ];
  for (const [prefix, entry] of entries) {
    for (const [file, field] of files) {
      const v = readU64(dir, `${prefix}.${file}`);
      if (v === undefined) return;
      entry[field] = v;
    }
  }
}

function v1Pids(dir: string): cgroupsV1.PidsStat | undefined {
  const current = readU64(dir, 'pids.current');
  const max = read(dir, 'pids.max')?.trim();
  if (current === undefined || max === undefined) return undefined;
  if (max === 'max') return { current, limit: 0n };
  const limit = parseU64(max);
  return limit === undefined ? undefined : { current, limit };
}

function v1Cpuacct(dir: string, usage: cgroupsV1.CPUUsage): void {
  const stat = readKV(dir, 'cpuacct.stat');
  const total = readU64(dir, 'cpuacct.usage');
  const percpu = read(dir, 'cpuacct.usage_percpu');
  if (!stat || total === undefined || percpu === undefined) return;
  usage.total = total;
  // cpuacct.stat is in USER_HZ ticks; containerd/cgroups takes USER_HZ = 100 (x * 1e9 / 100 ns)
  usage.user = ((stat.get('user') ?? 0n) * 1_000_000_000n) / 100n;
  usage.kernel = ((stat.get('system') ?? 0n) * 1_000_000_000n) / 100n;
  usage.perCpu = percpu.split(/\s+/).filter(Boolean).map((x) => parseU64(x) ?? 0n);
}

function v1Cpu(dir: string, throttling: cgroupsV1.Throttle): void {
  const stat = readKV(dir, 'cpu.stat');
  if (!stat) return;
  throttling.periods = stat.get('nr_periods') ?? 0n;
  throttling.throttledPeriods = stat.get('nr_throttled') ?? 0n;
  throttling.throttledTime = stat.get('throttled_time') ?? 0n;
}

/** "major minor #blocks name" after two header lines; first occurrence of a device wins. */
function partitions(procRoot: string): Map<string, string> {
  const out = new Map<string, string>();
  const text = read(procRoot, 'partitions');
  if (text === undefined) return out;
  text.split('\n').slice(2).forEach((line) => {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+$/.test(f[0]!) || !/^\d+$/.test(f[1]!)) return;
    const key = `${f[0]}:${f[1]}`;
    if (!out.has(key)) out.set(key, path.join('/dev', f[3]!));
  });
  return out;
}

/** blkio.* lines "maj:min [Op] value" ("Total N" skipped); undefined when the file is missing. */
function blkioEntries(dir: string, name: string, devices: Map<string, string>): cgroupsV1.BlkIOEntry[] | undefined {
  const text = read(dir, `blkio.${name}`);
  if (text === undefined) return undefined;
  const out: cgroupsV1.BlkIOEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(/[ :]/).filter(Boolean);
    if (f.length < 3 || f.length > 4) continue;
    const major = parseU64(f[0]!);
    const minor = parseU64(f[1]!);
    const value = parseU64(f[f.length - 1]!);
    if (major === undefined || minor === undefined || value === undefined) continue;
    out.push({ op: f.length === 4 ? f[2]! : '', device: devices.get(`${major}:${minor}`) ?? '', major, minor, value });
  }
  return out;
}

function v1Blkio(dir: string, procRoot: string): cgroupsV1.BlkIOStat {
  const blkio = cgroupsV1.BlkIOStat.fromPartial({});
  const devices = partitions(procRoot);
  let size = 0;
  // CFQ/BFQ-era recursive files first, as containerd; the throttle.* files when they are absent or empty
  if (exists(path.join(dir, 'blkio.io_serviced_recursive'))) {
    const cfq: Array<[string, keyof cgroupsV1.BlkIOStat]> = [
      ['sectors_recursive', 'sectorsRecursive'], ['io_service_bytes_recursive', 'ioServiceBytesRecursive'],
      ['io_serviced_recursive', 'ioServicedRecursive'], ['io_queued_recursive', 'ioQueuedRecursive'],
      ['io_service_time_recursive', 'ioServiceTimeRecursive'], ['io_wait_time_recursive', 'ioWaitTimeRecursive'],
      ['io_merged_recursive', 'ioMergedRecursive'], ['time_recursive', 'ioTimeRecursive'],
    ];
    for (const [file, field] of cfq) {
      const e = blkioEntries(dir, file, devices);
      if (e === undefined) return blkio;
      blkio[field] = e;
      size += e.length;
    }
    if (size > 0) return blkio;
  }
  const serviced = blkioEntries(dir, 'throttle.io_serviced', devices);
  if (serviced === undefined) return blkio;
  blkio.ioServicedRecursive.push(...serviced);
  const bytes = blkioEntries(dir, 'throttle.io_service_bytes', devices);
  if (bytes !== undefined) blkio.ioServiceBytesRecursive.push(...bytes);
  return blkio;
}

/** Page sizes from the hugetlb.<size>.usage_in_bytes files of the group (e.g. 1GB, 2MB), sorted. */
function v1Hugetlb(dir: string): cgroupsV1.HugetlbStat[] {
  const names = list(dir);
  if (!names) return [];
  const sizes = names.map((n) => /^hugetlb\.([^.]+)\.usage_in_bytes$/.exec(n)?.[1]).filter((s): s is string => !!s).sort();
  const out: cgroupsV1.HugetlbStat[] = [];
  for (const pagesize of sizes) {
    const usage = readU64(dir, `hugetlb.${pagesize}.usage_in_bytes`);
    const max = readU64(dir, `hugetlb.${pagesize}.max_usage_in_bytes`);
    const failcnt = readU64(dir, `hugetlb.${pagesize}.failcnt`);
    if (usage === undefined || max === undefined || failcnt === undefined) break;
    out.push({ pagesize, usage, max, failcnt });
  }
  return out;
}

export function v1Metrics(d: Record<string, string>, procRoot: string): cgroupsV1.Metrics {
  const m = cgroupsV1.Metrics.fromPartial({ cpu: { usage: {}, throttling: {} } });
  if (exists(d.hugetlb)) m.hugetlb = v1Hugetlb(d.hugetlb);
  if (exists(d.pids)) m.pids = v1Pids(d.pids);
  if (exists(d.cpu)) v1Cpu(d.cpu, m.cpu!.throttling!);
  if (exists(d.cpuacct)) v1Cpuacct(d.cpuacct, m.cpu!.usage!);
  if (exists(d.memory)) v1Memory(d.memory, m);
  if (exists(d.blkio)) m.blkio = v1Blkio(d.blkio, procRoot);
  return m;
}
