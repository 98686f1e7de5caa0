/**
 * cgroups.ts against fake cgroup trees in a temp dir: a v1 tree with file contents copied from
 * this host's cgroup v1 files (kernel 6.x: memory.stat with workingset_* and swap keys, the
 * 9223372036854771712 "unlimited" limit), and a pure v2 tree (root cgroup.controllers) with
 * "max" values. The Any is decoded back and its fields asserted.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cgroupsV1, cgroupsV2, TYPE_URL, unpackAny } from '../../shim-api/pb.js';
import { ShimError } from '../../shim-api/errors.js';
import {
  cgroupFromProcText,
  cgroupOfPid,
  detectMode,
  MAX_U64,
  oomKillCount,
  OomWatcher,
  readMetrics,
  loadMetrics,
  type CgroupRef,
} from './cgroups.js';

const top = mkdtempSync(path.join(tmpdir(), 'tsshim-cgroups-'));
let seq = 0;
const UNLIMITED = '9223372036854771712';

function writeTree(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
}

const V1_MEMORY_STAT = `cache 5697536
rss 1851392
rss_huge 2097152
shmem 0
mapped_file 65536
dirty 36864
writeback 4096
workingset_refault_anon 0
workingset_refault_file 2908
swap 0
swapcached 0
pgpgin 32538
pgpgout 30705
pgfault 70516
pgmajfault 228
inactive_anon 1667072
active_anon 12288
inactive_file 1708032
active_file 3989504
unevictable 8192
hierarchical_memory_limit 33554432
hierarchical_memsw_limit ${UNLIMITED}
total_cache 5697537
total_rss 1851393
total_rss_huge 2097153
total_shmem 0
total_mapped_file 65537
total_dirty 36865
total_writeback 4097
total_workingset_refault_anon 0
total_workingset_refault_file 2908
total_swap 0
total_swapcached 0
total_pgpgin 32539
total_pgpgout 30706
total_pgfault 70517
total_pgmajfault 229
total_inactive_anon 1667073
total_active_anon 12289
total_inactive_file 1708033
total_active_file 3989505
total_unevictable 8193
`;

function v1MemoryFiles(opts: { memsw?: boolean } = {}): Record<string, string> {
  const f: Record<string, string> = {
    'memory.stat': V1_MEMORY_STAT,
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n',
    'memory.limit_in_bytes': `${UNLIMITED}\n`,
    'memory.usage_in_bytes': '9031680\n',
    'memory.max_usage_in_bytes': '13381632\n',
    'memory.failcnt': '7\n',
    'memory.kmem.limit_in_bytes': `${UNLIMITED}\n`,
    'memory.kmem.usage_in_bytes': '1884160\n',
    'memory.kmem.max_usage_in_bytes': '2000000\n',
    'memory.kmem.failcnt': '0\n',
    'memory.kmem.tcp.limit_in_bytes': `${UNLIMITED}\n`,
    'memory.kmem.tcp.usage_in_bytes': '0\n',
    'memory.kmem.tcp.max_usage_in_bytes': '4096\n',
    'memory.kmem.tcp.failcnt': '0\n',
  };
  if (opts.memsw !== false) {
    f['memory.memsw.limit_in_bytes'] = `${UNLIMITED}\n`;
    f['memory.memsw.usage_in_bytes'] = '9474048\n';
    f['memory.memsw.max_usage_in_bytes'] = '14000000\n';
    f['memory.memsw.failcnt'] = '0\n';
  }
  return f;
}

const CPUACCT = {
  'cpuacct.stat': 'user 164599\nsystem 42390\n',
  'cpuacct.usage': '2069894919416\n',
  'cpuacct.usage_percpu': '989995416765 1079900502451 \n',
};
const CPU = { 'cpu.stat': 'nr_periods 12\nnr_throttled 3\nthrottled_time 4500000\nnr_bursts 0\nburst_time 0\n' };
const BLKIO_THROTTLE = {
  'blkio.throttle.io_service_bytes': '254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 12288\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 12288\n7:99 Read 1\nTotal 12289\n',
  'blkio.throttle.io_serviced': '254:0 Read 1\n254:0 Write 2\n254:0 Sync 3\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 3\nTotal 3\n',
  'blkio.throttle.io_service_bytes_recursive': 'Total 0\n',
  'blkio.throttle.io_serviced_recursive': 'Total 0\n',
};
const PARTITIONS = 'major minor  #blocks  name\n\n 254        0  268435456 vda\n 254        1  268434432 vda1\n';

/** A v1 root: separate cpu/cpuacct (as this host) or a joint "cpu,cpuacct" mount dir. */
function v1Root(opts: { joint?: boolean; memsw?: boolean; pidsMax?: string; hugetlb?: boolean } = {}): { root: string; proc: string; rel: string; text: string } {
  const root = path.join(top, `v1-${++seq}`);
  const proc = path.join(top, `proc-${seq}`);
  writeTree(proc, { partitions: PARTITIONS });
  const rel = '/tsshim-cgtest/c1';
  const cpuDir = opts.joint ? 'cpu,cpuacct' : 'cpu';
  writeTree(path.join(root, 'memory', rel), v1MemoryFiles(opts));
  writeTree(path.join(root, cpuDir, rel), opts.joint ? { ...CPU, ...CPUACCT } : CPU);
  if (!opts.joint) writeTree(path.join(root, 'cpuacct', rel), CPUACCT);
  writeTree(path.join(root, 'pids', rel), { 'pids.current': '5\n', 'pids.max': `${opts.pidsMax ?? '50'}\n` });
  writeTree(path.join(root, 'blkio', rel), BLKIO_THROTTLE);
  if (opts.hugetlb) {
    writeTree(path.join(root, 'hugetlb', rel), {
      'hugetlb.2MB.usage_in_bytes': '4194304\n',
      'hugetlb.2MB.max_usage_in_bytes': '6291456\n',
      'hugetlb.2MB.failcnt': '1\n',
      'hugetlb.2MB.limit_in_bytes': `${UNLIMITED}\n`,
      'hugetlb.1GB.usage_in_bytes': '0\n',
      'hugetlb.1GB.max_usage_in_bytes': '0\n',
      'hugetlb.1GB.failcnt': '0\n',
      'hugetlb.1GB.limit_in_bytes': `${UNLIMITED}\n`,
    });
  }
  const ctrlLine = opts.joint ? `3:cpu,cpuacct:${rel}` : `3:cpu:${rel}\n2:cpuacct:${rel}`;
  const text = [`12:name=systemd:/user.slice`, `11:pids:${rel}`, `10:blkio:${rel}`, `9:hugetlb:${rel}`, `4:memory:${rel}`, ctrlLine, `0::/`].join('\n') + '\n';
  return { root, proc, rel, text };
}

function decodeV1(ref: CgroupRef, proc: string): cgroupsV1.Metrics {
  const any = readMetrics(ref, proc);
  assert.is(any.typeUrl, 'io.containerd.cgroups.v1.Metrics');
  const m = unpackAny(any, TYPE_URL.CgroupsV1Metrics, cgroupsV1.Metrics);
  assert.ok(m);
  return m!;
}

test('detectMode: v2 only when the root has cgroup.controllers; this host (hybrid) is v1', () => {
  const v2 = path.join(top, 'mode-v2');
  writeTree(v2, { 'cgroup.controllers': 'cpu memory pids\n' });
  assert.is(detectMode(v2), 'v2');
  assert.is(detectMode(path.join(top, 'mode-none')), 'v1');
  // the real host: hybrid (v2 only at /sys/fs/cgroup/unified) counts as v1
  const hybrid = !readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => / \/sys\/fs\/cgroup .* - cgroup2 /.test(l));
  assert.is(detectMode(), hybrid ? 'v1' : 'v2');
});

test('cgroupFromProcText v1: controllers of each line, name= hierarchies and the v2 line ignored, joint cpu,cpuacct dir found', () => {
  const sep = v1Root();
  const r1 = cgroupFromProcText(sep.text, sep.root);
  assert.is(r1.mode, 'v1');
  assert.equal(Object.keys(r1.dirs).sort(), ['blkio', 'cpu', 'cpuacct', 'hugetlb', 'memory', 'pids']);
  assert.is(r1.dirs.memory, path.join(sep.root, 'memory', sep.rel));
  assert.is(r1.dirs.cpuacct, path.join(sep.root, 'cpuacct', sep.rel));
  const joint = v1Root({ joint: true });
  const r2 = cgroupFromProcText(joint.text, joint.root);
  assert.is(r2.dirs.cpu, path.join(joint.root, 'cpu,cpuacct', joint.rel));
  assert.is(r2.dirs.cpuacct, path.join(joint.root, 'cpu,cpuacct', joint.rel));
});

test('cgroupFromProcText v1: the mount from mountinfo wins, and a nested mount root is made relative (containerd getCgroupDestination)', () => {
  const root = path.join(top, `mi-${++seq}`);
  const mountinfo = [
    `31 23 0:28 / ${root} rw,relatime - tmpfs tmpfs rw,mode=755`,
    `32 31 0:29 /docker/abc ${root}/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct`,
    `35 31 0:32 / ${root}/memory rw,relatime - cgroup cgroup rw,memory`,
    `36 31 0:32 / /elsewhere/memory rw,relatime - cgroup cgroup rw,memory`,
  ].join('\n');
  const ref = cgroupFromProcText('4:memory:/a/b\n3:cpu,cpuacct:/docker/abc/sub\n', root, 'v1', mountinfo);
  assert.is(ref.dirs.memory, path.join(root, 'memory', 'a/b'));
  assert.is(ref.dirs.cpu, path.join(root, 'cpu,cpuacct', 'sub'));
  assert.is(ref.dirs.cpuacct, path.join(root, 'cpu,cpuacct', 'sub'));
});

test('cgroupFromProcText v2: the 0:: line under root as { unified }', () => {
  const root = path.join(top, `v2mode-${++seq}`);
  writeTree(root, { 'cgroup.controllers': 'memory\n' });
  const ref = cgroupFromProcText('0::/system.slice/x.scope\n', root);
  assert.equal(ref, { mode: 'v2', dirs: { unified: path.join(root, 'system.slice/x.scope') } });
});

test('cgroupOfPid: reads /proc/<pid>/cgroup of a live process; NotFound for a gone one', () => {
  const root = path.join(top, `self-${++seq}`);
  mkdirSync(root);
  const ref = cgroupOfPid(process.pid, root);
  const memLine = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => /^\d+:memory:/.test(l));
  if (ref.mode === 'v1' && memLine) assert.is(ref.dirs.memory, path.join(root, 'memory', memLine.split(':')[2]!));
  try {
    cgroupOfPid(2 ** 22 + 12345, root);
    assert.unreachable('expected NotFound');
  } catch (e) {
    assert.instance(e, ShimError);
    assert.is((e as ShimError).kind, 'NotFound');
  }
});

test('readMetrics v1: memory (exact bigint "unlimited" limit), entries, oom control, cpu, pids, blkio, hugetlb', () => {
  const t = v1Root({ hugetlb: true });
  const m = decodeV1(cgroupFromProcText(t.text, t.root), t.proc);
  const mem = m.memory!;
  assert.is(mem.usage!.limit, 9223372036854771712n);
  assert.is(mem.usage!.limit.toString(), UNLIMITED);
  assert.equal(mem.usage, { limit: 9223372036854771712n, usage: 9031680n, max: 13381632n, failcnt: 7n });
  assert.equal(mem.swap, { limit: 9223372036854771712n, usage: 9474048n, max: 14000000n, failcnt: 0n });
  assert.equal(mem.kernel, { limit: 9223372036854771712n, usage: 1884160n, max: 2000000n, failcnt: 0n });
  assert.equal(mem.kernelTcp, { limit: 9223372036854771712n, usage: 0n, max: 4096n, failcnt: 0n });
  assert.is(mem.cache, 5697536n);
  assert.is(mem.rss, 1851392n);
  assert.is(mem.rssHuge, 2097152n);
  assert.is(mem.mappedFile, 65536n);
  assert.is(mem.dirty, 36864n);
  assert.is(mem.writeback, 4096n);
  assert.is(mem.pgPgIn, 32538n);
  assert.is(mem.pgPgOut, 30705n);
  assert.is(mem.pgFault, 70516n);
  assert.is(mem.pgMajFault, 228n);
  assert.is(mem.inactiveAnon, 1667072n);
  assert.is(mem.activeAnon, 12288n);
  assert.is(mem.inactiveFile, 1708032n);
  assert.is(mem.activeFile, 3989504n);
  assert.is(mem.unevictable, 8192n);
  assert.is(mem.hierarchicalMemoryLimit, 33554432n);
  assert.is(mem.hierarchicalSwapLimit, 9223372036854771712n);
  assert.is(mem.totalCache, 5697537n);
  assert.is(mem.totalRss, 1851393n);
  assert.is(mem.totalRssHuge, 2097153n);
  assert.is(mem.totalMappedFile, 65537n);
  assert.is(mem.totalDirty, 36865n);
  assert.is(mem.totalWriteback, 4097n);
  assert.is(mem.totalPgPgIn, 32539n);
  assert.is(mem.totalPgPgOut, 30706n);
  assert.is(mem.totalPgFault, 70517n);
  assert.is(mem.totalPgMajFault, 229n);
  assert.is(mem.totalInactiveAnon, 1667073n);
  assert.is(mem.totalActiveAnon, 12289n);
  assert.is(mem.totalInactiveFile, 1708033n);
  assert.is(mem.totalActiveFile, 3989505n);
  assert.is(mem.totalUnevictable, 8193n);
  assert.equal(m.memoryOomControl, { oomKillDisable: 0n, underOom: 0n, oomKill: 3n });
  assert.equal(m.pids, { current: 5n, limit: 50n });
  assert.equal(m.cpu!.usage, {
    total: 2069894919416n,
    user: 164599n * 10_000_000n,
    kernel: 42390n * 10_000_000n,
    perCpu: [989995416765n, 1079900502451n],
  });
  assert.equal(m.cpu!.throttling, { periods: 12n, throttledPeriods: 3n, throttledTime: 4500000n });
  const b = m.blkio!;
  assert.equal(b.ioServicedRecursive.map((e) => `${e.device} ${e.major}:${e.minor} ${e.op} ${e.value}`), [
    '/dev/vda 254:0 Read 1', '/dev/vda 254:0 Write 2', '/dev/vda 254:0 Sync 3', '/dev/vda 254:0 Async 0', '/dev/vda 254:0 Discard 0', '/dev/vda 254:0 Total 3',
  ]);
  assert.is(b.ioServiceBytesRecursive.length, 7);
  assert.equal(b.ioServiceBytesRecursive[1], { op: 'Write', device: '/dev/vda', major: 254n, minor: 0n, value: 8192n });
  assert.equal(b.ioServiceBytesRecursive[6], { op: 'Read', device: '', major: 7n, minor: 99n, value: 1n });
  assert.is(b.sectorsRecursive.length, 0);
  assert.equal(m.hugetlb, [
    { pagesize: '1GB', usage: 0n, max: 0n, failcnt: 0n },
    { pagesize: '2MB', usage: 4194304n, max: 6291456n, failcnt: 1n },
  ]);
  assert.is(oomKillCount(cgroupFromProcText(t.text, t.root)), 3);
});

test('readMetrics v1: joint cpu,cpuacct mount gives the same cpu stats', () => {
  const t = v1Root({ joint: true });
  const m = decodeV1(cgroupFromProcText(t.text, t.root), t.proc);
  assert.is(m.cpu!.usage!.total, 2069894919416n);
  assert.is(m.cpu!.throttling!.throttledPeriods, 3n);
});

test('readMetrics v1: pids.max "max" is limit 0; negative values are 0; no memsw stops at swap like containerd', () => {
  const t = v1Root({ pidsMax: 'max', memsw: false });
  const ref = cgroupFromProcText(t.text, t.root);
  writeFileSync(path.join(ref.dirs.cpuacct!, 'cpuacct.usage'), '-1\n');
  const m = decodeV1(ref, t.proc);
  assert.equal(m.pids, { current: 5n, limit: 0n });
  assert.is(m.cpu!.usage!.total, 0n);
  assert.equal(m.memory!.usage, { limit: 9223372036854771712n, usage: 9031680n, max: 13381632n, failcnt: 7n });
  assert.equal(m.memory!.swap, { limit: 0n, usage: 0n, max: 0n, failcnt: 0n });
  assert.equal(m.memory!.kernel, { limit: 0n, usage: 0n, max: 0n, failcnt: 0n });
  assert.is(m.memory!.cache, 5697536n);
  assert.is(m.hugetlb.length, 0);
});

test('readMetrics v1: blkio recursive (CFQ) files are preferred when they have entries', () => {
  const t = v1Root();
  const ref = cgroupFromProcText(t.text, t.root);
  const names = ['sectors_recursive', 'io_service_bytes_recursive', 'io_serviced_recursive', 'io_queued_recursive', 'io_service_time_recursive', 'io_wait_time_recursive', 'io_merged_recursive', 'time_recursive'];
  writeTree(ref.dirs.blkio!, Object.fromEntries(names.map((n) => [`blkio.${n}`, n === 'time_recursive' || n === 'sectors_recursive' ? '254:0 77\n' : '254:0 Read 11\n254:0 Write 22\nTotal 33\n'])));
  const b = decodeV1(ref, t.proc).blkio!;
  assert.equal(b.ioTimeRecursive, [{ op: '', device: '/dev/vda', major: 254n, minor: 0n, value: 77n }]);
  assert.equal(b.ioServicedRecursive.map((e) => e.value), [11n, 22n]);
  assert.is(b.ioMergedRecursive.length, 2);
});

test('readMetrics v1: NotFound when no directory of the group exists (cgroup removed)', () => {
  const ref: CgroupRef = { mode: 'v1', dirs: { memory: path.join(top, 'gone', 'memory'), pids: path.join(top, 'gone', 'pids') } };
  try {
    readMetrics(ref);
    assert.unreachable('expected NotFound');
  } catch (e) {
    assert.is((e as ShimError).kind, 'NotFound');
  }
  assert.is(oomKillCount(ref), 0);
});

const V2_MEMORY_STAT = `anon 1228800
file 8192000
kernel 602112
kernel_stack 49152
pagetables 86016
sec_pagetables 0
percpu 480
sock 4096
vmalloc 0
shmem 16384
zswap 0
zswapped 0
file_mapped 1040384
file_dirty 12288
file_writeback 8192
swapcached 0
anon_thp 2097152
file_thp 0
shmem_thp 0
inactive_anon 1245184
active_anon 4096
inactive_file 5734400
active_file 2457600
unevictable 20480
slab_reclaimable 240000
slab_unreclaimable 150000
slab 390000
workingset_refault_anon 0
workingset_refault_file 11
workingset_activate_anon 0
workingset_activate_file 5
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 2
pgdemote_kswapd 0
pgscan 31
pgsteal 29
pgscan_kswapd 0
pgfault 12345
pgmajfault 67
pgrefill 3
pgactivate 40
pgdeactivate 4
pglazyfree 1
pglazyfreed 1
thp_fault_alloc 9
thp_collapse_alloc 8
`;

function v2Root(controllers = 'cpuset cpu io memory hugetlb pids rdma misc'): { root: string; dir: string } {
  const root = path.join(top, `v2-${++seq}`);
  writeTree(root, { 'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n' });
  const dir = path.join(root, 'tsshim-cgtest', 'c1');
  writeTree(dir, {
    'cgroup.controllers': `${controllers}\n`,
    'cpu.stat': 'usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\ncore_sched.force_idle_usec 0\nnr_periods 10\nnr_throttled 2\nthrottled_usec 777\nnr_bursts 0\nburst_usec 0\n',
    'memory.stat': V2_MEMORY_STAT,
    'memory.current': '9437184\n',
    'memory.max': 'max\n',
    'memory.swap.current': '0\n',
    'memory.swap.max': 'max\n',
    'memory.events': 'low 0\nhigh 1\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n',
    'pids.current': '4\n',
    'pids.max': 'max\n',
    'io.stat': '254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n7:3 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
    'hugetlb.2MB.max': 'max\n',
    'hugetlb.2MB.current': '2097152\n',
    'hugetlb.2MB.rsvd.max': 'max\n',
    'hugetlb.2MB.rsvd.current': '0\n',
    'hugetlb.2MB.events': 'max 0\n',
    'hugetlb.1GB.max': '1073741824\n',
    'hugetlb.1GB.current': '0\n',
    'rdma.current': 'mlx4_0 hca_handle=2 hca_object=2000\n',
    'rdma.max': 'mlx4_0 hca_handle=max hca_object=10000\n',
  });
  return { root, dir };
}

test('readMetrics v2: cpu.stat, memory.stat, "max" as 2^64-1, memory events, io, hugetlb, rdma', () => {
  const { root } = v2Root();
  const ref = cgroupFromProcText('0::/tsshim-cgtest/c1\n', root);
  assert.is(ref.mode, 'v2');
  const any = readMetrics(ref);
  assert.is(any.typeUrl, 'io.containerd.cgroups.v2.Metrics');
  const m = unpackAny(any, TYPE_URL.CgroupsV2Metrics, cgroupsV2.Metrics)!;
  assert.is(MAX_U64, 2n ** 64n - 1n);
  assert.equal(m.pids, { current: 4n, limit: MAX_U64 });
  assert.equal(m.cpu, { usageUsec: 123456n, userUsec: 100000n, systemUsec: 23456n, nrPeriods: 10n, nrThrottled: 2n, throttledUsec: 777n });
  const mem = m.memory!;
  assert.is(mem.usage, 9437184n);
  assert.is(mem.usageLimit, MAX_U64);
  assert.is(mem.usageLimit.toString(), '18446744073709551615');
  assert.is(mem.swapUsage, 0n);
  assert.is(mem.swapLimit, MAX_U64);
  assert.is(mem.anon, 1228800n);
  assert.is(mem.file, 8192000n);
  assert.is(mem.kernelStack, 49152n);
  assert.is(mem.slab, 390000n);
  assert.is(mem.sock, 4096n);
  assert.is(mem.shmem, 16384n);
  assert.is(mem.fileMapped, 1040384n);
  assert.is(mem.fileDirty, 12288n);
  assert.is(mem.fileWriteback, 8192n);
  assert.is(mem.anonThp, 2097152n);
  assert.is(mem.inactiveAnon, 1245184n);
  assert.is(mem.activeAnon, 4096n);
  assert.is(mem.inactiveFile, 5734400n);
  assert.is(mem.activeFile, 2457600n);
  assert.is(mem.unevictable, 20480n);
  assert.is(mem.slabReclaimable, 240000n);
  assert.is(mem.slabUnreclaimable, 150000n);
  assert.is(mem.pgfault, 12345n);
  assert.is(mem.pgmajfault, 67n);
  assert.is(mem.workingsetRefault, 0n, 'kernel 6 splits workingset_refault into _anon/_file; containerd reads the old key');
  assert.is(mem.workingsetNodereclaim, 2n);
  assert.is(mem.pgscan, 31n);
  assert.is(mem.pgsteal, 29n);
  assert.is(mem.pgrefill, 3n);
  assert.is(mem.pgactivate, 40n);
  assert.is(mem.pgdeactivate, 4n);
  assert.is(mem.pglazyfree, 1n);
  assert.is(mem.pglazyfreed, 1n);
  assert.is(mem.thpFaultAlloc, 9n);
  assert.is(mem.thpCollapseAlloc, 8n);
  assert.equal(m.memoryEvents, { low: 0n, high: 1n, max: 12n, oom: 2n, oomKill: 2n });
  assert.equal(m.io!.usage, [
    { major: 254n, minor: 0n, rbytes: 4096n, wbytes: 8192n, rios: 1n, wios: 2n },
    { major: 7n, minor: 3n, rbytes: 1n, wbytes: 0n, rios: 1n, wios: 0n },
  ]);
  assert.equal(m.hugetlb, [
    { pagesize: '1GB', current: 0n, max: 1073741824n },
    { pagesize: '2MB', current: 2097152n, max: MAX_U64 },
  ]);
  assert.equal(m.rdma, {
    current: [{ device: 'mlx4_0', hcaHandles: 2, hcaObjects: 2000 }],
    limit: [{ device: 'mlx4_0', hcaHandles: 4294967295, hcaObjects: 10000 }],
  });
  assert.is(oomKillCount(ref), 2);
});

test('readMetrics v2: cpu.stat and memory.stat only for enabled controllers; no memory.events, no memoryEvents; NotFound when gone', () => {
  const { root, dir } = v2Root('pids');
  rmSync(path.join(dir, 'memory.events'));
  const ref: CgroupRef = { mode: 'v2', dirs: { unified: dir } };
  const m = unpackAny(readMetrics(ref), TYPE_URL.CgroupsV2Metrics, cgroupsV2.Metrics)!;
  assert.is(m.cpu!.usageUsec, 0n);
  assert.is(m.memory!.anon, 0n);
  assert.is(m.memory!.usage, 9437184n, 'memory.current is read regardless, as containerd');
  assert.is(m.memoryEvents, undefined);
  assert.is(oomKillCount(ref), 0);
  try {
    readMetrics({ mode: 'v2', dirs: { unified: path.join(root, 'gone') } });
    assert.unreachable('expected NotFound');
  } catch (e) {
    assert.is((e as ShimError).kind, 'NotFound');
  }
});

test('loadMetrics (async snapshot, the Stats path) answers exactly what readMetrics reads, v1 and v2; NotFound when gone', async () => {
  const cases: Array<[CgroupRef, string | undefined]> = [];
  for (const o of [{ hugetlb: true }, { joint: true }, { pidsMax: 'max', memsw: false }]) {
    const t = v1Root(o);
    cases.push([cgroupFromProcText(t.text, t.root), t.proc]);
  }
  const cfq = v1Root();
  const cfqRef = cgroupFromProcText(cfq.text, cfq.root);
  writeTree(cfqRef.dirs.blkio!, { 'blkio.io_serviced_recursive': '254:0 Read 11\n', 'blkio.time_recursive': '254:0 77\n' });
  cases.push([cfqRef, cfq.proc]);
  const { root } = v2Root();
  cases.push([cgroupFromProcText('0::/tsshim-cgtest/c1\n', root), undefined]);
  for (const [ref, proc] of cases) {
    const sync = readMetrics(ref, proc);
    const loaded = await loadMetrics(ref, proc);
    assert.is(loaded.typeUrl, sync.typeUrl);
    assert.equal(Buffer.from(loaded.value), Buffer.from(sync.value), `${ref.mode} ${JSON.stringify(ref.dirs)}`);
  }
  const gone: CgroupRef = { mode: 'v2', dirs: { unified: path.join(root, 'gone') } };
  await loadMetrics(gone).then(
    () => assert.unreachable('expected NotFound'),
    (e: ShimError) => assert.is(e.kind, 'NotFound'),
  );
});

test('OomWatcher: fires once per observed increase of oom_kill (v1 and v2), not for an unchanged or reset counter', () => {
  const t = v1Root();
  const v1 = cgroupFromProcText(t.text, t.root);
  const oomFile = path.join(v1.dirs.memory!, 'memory.oom_control');
  let fired = 0;
  const w = new OomWatcher(v1, () => fired++, 60_000);
  assert.is(w.check(), false);
  writeFileSync(oomFile, 'oom_kill_disable 0\nunder_oom 0\noom_kill 4\n');
  assert.is(w.check(), true);
  assert.is(fired, 1);
  assert.is(w.check(), false);
  writeFileSync(oomFile, 'oom_kill_disable 0\nunder_oom 0\noom_kill 7\n');
  assert.is(w.check(), true);
  assert.is(fired, 2, 'one call per observed increase, even when the counter jumped by 3');
  writeFileSync(oomFile, 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n');
  assert.is(w.check(), false);
  writeFileSync(oomFile, 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
  assert.is(w.check(), true, 'a reset counter is the new baseline');
  w.stop();
  assert.is(fired, 3);

  const { dir } = v2Root();
  let fired2 = 0;
  const w2 = new OomWatcher({ mode: 'v2', dirs: { unified: dir } }, () => fired2++, 60_000);
  writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 20\noom 3\noom_kill 3\n');
  assert.is(w2.check(), true);
  w2.stop();
  assert.is(w2.check(), false);
  assert.is(fired2, 1);
});

test('OomWatcher: the interval timer calls check() by itself', async () => {
  const t = v1Root();
  const ref = cgroupFromProcText(t.text, t.root);
  let fired = 0;
  const w = new OomWatcher(ref, () => fired++, 20);
  writeFileSync(path.join(ref.dirs.memory!, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 1\noom_kill 9\n');
  const deadline = Date.now() + 2000;
  while (fired === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  w.stop();
  assert.is(fired, 1);
});

test.after(() => rmSync(top, { recursive: true, force: true }));

test.run();
