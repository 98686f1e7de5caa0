/**
 * A container's cgroup as containerd's runc shim reads it: Stats as the
 * `io.containerd.cgroups.v1.Metrics` / `.v2.Metrics` Any, and the OOM-kill counter
 * (see docs/adr/0004-oom-detection.md). Plain file reads; any backend whose
 * container lives in a host cgroup (runc, crun, youki; runsc's sandbox) works.
 */
import fs from 'node:fs';
import path from 'node:path';
import { cgroupsV1, cgroupsV2, packAny, TYPE_URL, type Any } from '../../shim-api/proto/index.js';
import { notFound } from '../../shim-api/errors.js';

export type CgroupMode = 'v1' | 'v2';
/** v1: controller -> absolute directory; v2: { unified: directory } */
export interface CgroupRef {
  mode: CgroupMode;
  dirs: Record<string, string>;
}

const ROOT = '/sys/fs/cgroup';
const MAX_U64 = 18446744073709551615n;

/** v2 only when the root itself is the unified hierarchy; hybrid hosts count as v1. */
export function detectMode(root = ROOT): CgroupMode {
  return fs.existsSync(path.join(root, 'cgroup.controllers')) ? 'v2' : 'v1';
}

/** Parse /proc/<pid>/cgroup (or its text) into controller directories under `root`. */
export function cgroupFromProcText(text: string, root = ROOT, mode = detectMode(root)): CgroupRef {
  const dirs: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, , ctrls, rel] = m;
    if (mode === 'v2') {
      if (ctrls === '') dirs.unified = path.join(root, rel!);
      continue;
    }
    for (const ctrl of ctrls!.split(',')) {
      if (!ctrl || ctrl.startsWith('name=')) continue;
      // joint mounts (cpu,cpuacct) live under a directory named after the pair or each one
      const candidates = [path.join(root, ctrl), path.join(root, ctrls!)];
      const base = candidates.find((c) => fs.existsSync(c)) ?? candidates[0]!;
      dirs[ctrl] = path.join(base, rel!);
    }
  }
  return { mode, dirs };
}

export function cgroupOfPid(pid: number, root = ROOT): CgroupRef {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    throw notFound(`cgroup of pid ${pid}: process not found`);
  }
  return cgroupFromProcText(text, root);
}

function read(dir: string | undefined, file: string): string | undefined {
  if (!dir) return undefined;
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8').trim();
  } catch {
    return undefined;
  }
}
function num(dir: string | undefined, file: string): bigint {
  const t = read(dir, file);
  if (t === undefined || t === '') return 0n;
  if (t === 'max') return MAX_U64;
  try {
    return BigInt(t.split(/\s+/)[0]!);
  } catch {
    return 0n;
  }
}
/** "key value" lines -> map */
function kv(dir: string | undefined, file: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of (read(dir, file) ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out.set(k, BigInt(v));
  }
  return out;
}
const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

// memory.stat key -> MemoryStat field where the names do not follow snake->camel
const V1_MEMORY_RENAMES: Record<string, string> = {
  pgpgin: 'pgPgIn', pgpgout: 'pgPgOut', pgfault: 'pgFault', pgmajfault: 'pgMajFault',
  total_pgpgin: 'totalPgPgIn', total_pgpgout: 'totalPgPgOut', total_pgfault: 'totalPgFault', total_pgmajfault: 'totalPgMajFault',
  hierarchical_memsw_limit: 'hierarchicalSwapLimit',
};

function v1Metrics(d: Record<string, string>): cgroupsV1.Metrics {
  const mem = d.memory;
  const stat = kv(mem, 'memory.stat');
  const memory: Record<string, unknown> = {};
  for (const [k, v] of stat) memory[V1_MEMORY_RENAMES[k] ?? camel(k)] = v;
  const entry = (prefix: string) => ({
    limit: num(mem, `${prefix}.limit_in_bytes`),
    usage: num(mem, `${prefix}.usage_in_bytes`),
    max: num(mem, `${prefix}.max_usage_in_bytes`),
    failcnt: num(mem, `${prefix}.failcnt`),
  });
  memory.usage = entry('memory');
  if (read(mem, 'memory.memsw.usage_in_bytes') !== undefined) memory.swap = entry('memory.memsw');
  if (read(mem, 'memory.kmem.usage_in_bytes') !== undefined) memory.kernel = entry('memory.kmem');
  if (read(mem, 'memory.kmem.tcp.usage_in_bytes') !== undefined) memory.kernelTcp = entry('memory.kmem.tcp');
  const oom = kv(mem, 'memory.oom_control');
  const acct = d.cpuacct ?? d.cpu;
  const cpuStat = kv(d.cpu, 'cpu.stat');
  const userHz = kv(acct, 'cpuacct.stat');
  const nsPerTick = 1_000_000_000n / 100n; // USER_HZ = 100, as containerd/cgroups assumes
  const blkEntries = (file: string) =>
    (read(d.blkio, file) ?? '')
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length === 3 && /^\d+:\d+$/.test(f[0]!))
      .map(([dev, op, value]) => {
        const [major, minor] = dev!.split(':').map((x) => BigInt(x));
        return { op: op!, device: '', major: major!, minor: minor!, value: BigInt(value!) };
      });
  return cgroupsV1.Metrics.fromPartial({
    pids: d.pids ? { current: num(d.pids, 'pids.current'), limit: read(d.pids, 'pids.max') === 'max' ? 0n : num(d.pids, 'pids.max') } : undefined,
    cpu: acct
      ? {
          usage: {
            total: num(acct, 'cpuacct.usage'),
            kernel: (userHz.get('system') ?? 0n) * nsPerTick,
            user: (userHz.get('user') ?? 0n) * nsPerTick,
            perCpu: (read(acct, 'cpuacct.usage_percpu') ?? '').split(/\s+/).filter(Boolean).map((x) => BigInt(x)),
          },
          throttling: { periods: cpuStat.get('nr_periods') ?? 0n, throttledPeriods: cpuStat.get('nr_throttled') ?? 0n, throttledTime: cpuStat.get('throttled_time') ?? 0n },
        }
      : undefined,
    memory: mem ? (memory as Partial<cgroupsV1.MemoryStat>) : undefined,
    memoryOomControl: mem ? { oomKillDisable: oom.get('oom_kill_disable') ?? 0n, underOom: oom.get('under_oom') ?? 0n, oomKill: oom.get('oom_kill') ?? 0n } : undefined,
    blkio: d.blkio
      ? { ioServiceBytesRecursive: blkEntries('blkio.throttle.io_service_bytes'), ioServicedRecursive: blkEntries('blkio.throttle.io_serviced') }
      : undefined,
  });
}

function v2Metrics(dir: string): cgroupsV2.Metrics {
  const stat = kv(dir, 'memory.stat');
  const memory: Record<string, unknown> = {};
  for (const [k, v] of stat) memory[camel(k)] = v;
  memory.usage = num(dir, 'memory.current');
  memory.usageLimit = num(dir, 'memory.max');
  memory.swapUsage = num(dir, 'memory.swap.current');
  memory.swapLimit = num(dir, 'memory.swap.max');
  const cpu = kv(dir, 'cpu.stat');
  const ev = kv(dir, 'memory.events');
  const io = (read(dir, 'io.stat') ?? '').split('\n').filter(Boolean).map((line) => {
    const [dev, ...pairs] = line.trim().split(/\s+/);
    const [major, minor] = dev!.split(':').map((x) => BigInt(x));
    const f = new Map(pairs.map((p) => p.split('=') as [string, string]));
    const g = (k: string) => BigInt(f.get(k) ?? '0');
    return { major: major!, minor: minor!, rbytes: g('rbytes'), wbytes: g('wbytes'), rios: g('rios'), wios: g('wios') };
  });
  return cgroupsV2.Metrics.fromPartial({
    pids: { current: num(dir, 'pids.current'), limit: read(dir, 'pids.max') === 'max' ? 0n : num(dir, 'pids.max') },
    cpu: {
      usageUsec: cpu.get('usage_usec') ?? 0n,
      userUsec: cpu.get('user_usec') ?? 0n,
      systemUsec: cpu.get('system_usec') ?? 0n,
      nrPeriods: cpu.get('nr_periods') ?? 0n,
      nrThrottled: cpu.get('nr_throttled') ?? 0n,
      throttledUsec: cpu.get('throttled_usec') ?? 0n,
    },
    memory: memory as Partial<cgroupsV2.MemoryStat>,
    memoryEvents: { low: ev.get('low') ?? 0n, high: ev.get('high') ?? 0n, max: ev.get('max') ?? 0n, oom: ev.get('oom') ?? 0n, oomKill: ev.get('oom_kill') ?? 0n },
    io: { usage: io },
  });
}

/** Stats, typed as runc-v2 types them. */
export function readMetrics(ref: CgroupRef): Any {
  if (ref.mode === 'v2') {
    if (!ref.dirs.unified || !fs.existsSync(ref.dirs.unified)) throw notFound('cgroup not found');
    return packAny(TYPE_URL.CgroupsV2Metrics, cgroupsV2.Metrics, v2Metrics(ref.dirs.unified));
  }
  if (!ref.dirs.memory && !ref.dirs.cpuacct && !ref.dirs.pids) throw notFound('cgroup not found');
  return packAny(TYPE_URL.CgroupsV1Metrics, cgroupsV1.Metrics, v1Metrics(ref.dirs));
}

/** OOM kills so far in the cgroup (v1 memory.oom_control, v2 memory.events). */
export function oomKillCount(ref: CgroupRef): number {
  const m = ref.mode === 'v2' ? kv(ref.dirs.unified, 'memory.events') : kv(ref.dirs.memory, 'memory.oom_control');
  return Number(m.get('oom_kill') ?? 0n);
}
