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
import fs from 'node:fs';
import path from 'node:path';
import { cgroupsV1, cgroupsV2, packAny, TYPE_URL, type Any } from '../../shim-api/pb.js';
import { notFound } from '../../shim-api/errors.js';

export type CgroupMode = 'v1' | 'v2';
/** v1: controller -> absolute directory; v2: { unified: directory } */
export interface CgroupRef {
  mode: CgroupMode;
  dirs: Record<string, string>;
}

const ROOT = '/sys/fs/cgroup';
/** math.MaxUint64, what containerd/cgroups v2 reports for "max" */
export const MAX_U64 = 18446744073709551615n;
const MAX_U32 = 4294967295;

/** v2 only when the root itself is the unified hierarchy; hybrid hosts count as v1. */
export function detectMode(root = ROOT): CgroupMode {
  return fs.existsSync(path.join(root, 'cgroup.controllers')) ? 'v2' : 'v1';
}

// ---------------------------------------------------------------------------------------------
// Locating the cgroup

interface CgroupMount {
  mountPoint: string;
  /** the cgroup path the mount shows at its mount point (mountinfo field 4) */
  mountRoot: string;
  controllers: string[];
}

/** cgroup v1 mounts from /proc/self/mountinfo text (fstype "cgroup"; super options name the controllers). */
function v1Mounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 6 || f[sep + 1] !== 'cgroup') continue;
    const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ mountPoint: unescape(f[4]!), mountRoot: unescape(f[3]!), controllers: (f[sep + 3] ?? '').split(',') });
  }
  return out;
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

// ---------------------------------------------------------------------------------------------
// File parsing, with containerd/cgroups' number semantics

function read(dir: string | undefined, file: string): string | undefined {
  if (!dir) return undefined;
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8');
  } catch {
    return undefined;
  }
}

/** Go's cgroups parseUint: unsigned decimal; negative -> 0; anything else -> undefined. */
function parseU64(s: string): bigint | undefined {
  if (/^\+?\d+$/.test(s)) {
    const v = BigInt(s);
    return v <= MAX_U64 ? v : undefined;
  }
  if (/^-\d+$/.test(s)) return 0n;
  return undefined;
}

/** readUint: the whole file as one number; undefined when missing or not a number. */
function readU64(dir: string | undefined, file: string): bigint | undefined {
  const t = read(dir, file);
  return t === undefined ? undefined : parseU64(t.trim());
}

/** v2 getStatFileContentUint64: missing or unparsable -> 0, "max" -> 2^64-1. */
function readU64OrMax(dir: string, file: string): bigint {
  const t = read(dir, file)?.trim();
  if (t === undefined) return 0n;
  if (t === 'max') return MAX_U64;
  return parseU64(t) ?? 0n;
}

/** "key value" lines -> map (lines that are not two fields with a number are skipped); undefined when missing. */
function readKV(dir: string | undefined, file: string): Map<string, bigint> | undefined {
  const t = read(dir, file);
  if (t === undefined) return undefined;
  const out = new Map<string, bigint>();
  for (const line of t.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 2) continue;
    const v = parseU64(f[1]!);
    if (v !== undefined) out.set(f[0]!, v);
  }
  return out;
}

const exists = (dir: string | undefined): dir is string => dir !== undefined && fs.existsSync(dir);
const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

// ---------------------------------------------------------------------------------------------
// cgroup v1

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
  if (fs.existsSync(path.join(dir, 'blkio.io_serviced_recursive'))) {
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
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
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

function v1Metrics(d: Record<string, string>, procRoot: string): cgroupsV1.Metrics {
  const m = cgroupsV1.Metrics.fromPartial({ cpu: { usage: {}, throttling: {} } });
  if (exists(d.hugetlb)) m.hugetlb = v1Hugetlb(d.hugetlb);
  if (exists(d.pids)) m.pids = v1Pids(d.pids);
  if (exists(d.cpu)) v1Cpu(d.cpu, m.cpu!.throttling!);
  if (exists(d.cpuacct)) v1Cpuacct(d.cpuacct, m.cpu!.usage!);
  if (exists(d.memory)) v1Memory(d.memory, m);
  if (exists(d.blkio)) m.blkio = v1Blkio(d.blkio, procRoot);
  return m;
}

// ---------------------------------------------------------------------------------------------
// cgroup v2

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
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
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

function v2Metrics(dir: string): cgroupsV2.Metrics {
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

// ---------------------------------------------------------------------------------------------
// API

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

/** OOM kills so far in the cgroup: v1 memory.oom_control, v2 memory.events ("oom_kill N"); 0 if absent. */
export function oomKillCount(ref: CgroupRef): number {
  const m = ref.mode === 'v2' ? readKV(ref.dirs.unified, 'memory.events') : readKV(ref.dirs.memory, 'memory.oom_control');
  return Number(m?.get('oom_kill') ?? 0n);
}

/**
 * Polls the oom_kill counter (ADR 0004). The baseline is the count at construction; `check()`
 * reads the counter now and calls `onOom` once when it grew since the last reading (a counter
 * that went down, e.g. a recreated group, becomes the new baseline). The interval timer is
 * unref'd, so it never keeps the process alive; `check()` still works after `stop()`.
 * `onOom` runs inside the timer callback: it must not throw.
 */
export class OomWatcher {
  private last: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ref: CgroupRef,
    private readonly onOom: () => void,
    intervalMs = 1000,
  ) {
    this.last = oomKillCount(ref);
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  check(): boolean {
    const n = oomKillCount(this.ref);
    if (n <= this.last) {
      this.last = n;
      return false;
    }
    this.last = n;
    this.onOom();
    return true;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
