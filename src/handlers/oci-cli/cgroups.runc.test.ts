/**
 * cgroups.ts against a real runc container: busybox-static bundle with a 32 MiB memory limit
 * (memory+swap 32 MiB too) and 50 pids, in cgroup /tsshim-cgtest/<id>, run detached with a
 * private --root. Reads the init's cgroup, then OOM-kills an exec'd memory hog (busybox tail
 * buffering a 100 MB line) and checks the counter and OomWatcher. Works on v1/hybrid and pure v2.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cgroupsV1, cgroupsV2, TYPE_URL, unpackAny } from '../../shim-api/pb.js';
import { cgroupOfPid, detectMode, loadMetrics, oomKillCount, OomWatcher, readMetrics, type CgroupRef } from './cgroups.js';
import { skipWithReason } from '../../../test/helpers/skip.js';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const runcPath = (await execa('sh', ['-c', 'command -v runc'], { reject: false })).stdout.trim();
const reason =
  process.getuid?.() !== 0 ? 'needs root' : BUSYBOX === undefined ? 'no busybox' : runcPath === '' ? 'no runc in PATH' : undefined;

const top = mkdtempSync('/tmp/tsshim-cgroups-runc-');
const root = path.join(top, 'root');
const ID = `tsshim-cg-${process.pid}-${Date.now().toString(36)}`;
const CG_PARENT = 'tsshim-cgtest';
const LIMIT = 32 * 1024 * 1024;
const mode = detectMode();

let initPid = 0;
let ref: CgroupRef | undefined;

async function runc(args: string[], reject = true) {
  return execa('runc', ['--root', root, ...args], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', reject, timeout: 60_000 });
}

function makeBundle(): string {
  const bundle = path.join(top, 'bundle');
  const bin = path.join(bundle, 'rootfs', 'bin');
  mkdirSync(bin, { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(path.join(bundle, 'rootfs', d), { recursive: true });
  copyFileSync(BUSYBOX!, path.join(bin, 'busybox'));
  for (const applet of ['sh', 'sleep', 'dd', 'head', 'cat', 'tail']) symlinkSync('busybox', path.join(bin, applet));
  return bundle;
}

function decode(any = readMetrics(ref!)): { v1?: cgroupsV1.Metrics; v2?: cgroupsV2.Metrics } {
  if (mode === 'v2') return { v2: unpackAny(any, TYPE_URL.CgroupsV2Metrics, cgroupsV2.Metrics) };
  return { v1: unpackAny(any, TYPE_URL.CgroupsV1Metrics, cgroupsV1.Metrics) };
}

if (reason) {
  skipWithReason(test, 'cgroups against a real runc container', reason);
} else {
  test.before(async () => {
    const bundle = makeBundle();
    await execa('runc', ['spec'], { cwd: bundle });
    const specPath = path.join(bundle, 'config.json');
    const spec = JSON.parse(readFileSync(specPath, 'utf8'));
    spec.process.terminal = false;
    spec.process.args = ['sleep', '1000'];
    spec.process.env = ['PATH=/bin'];
    spec.linux.resources = { ...spec.linux.resources, memory: { limit: LIMIT, swap: LIMIT }, pids: { limit: 50 } };
    spec.linux.cgroupsPath = `/${CG_PARENT}/${ID}`;
    writeFileSync(specPath, JSON.stringify(spec, null, 2));
    // stdio of the detached init is /dev/null: nothing holds our pipes open
    await execa('runc', ['--root', root, 'run', '-d', '--bundle', bundle, ID], { stdio: 'ignore', timeout: 60_000 });
    const state = JSON.parse((await runc(['state', ID])).stdout) as { pid: number; status: string };
    assert.is(state.status, 'running');
    initPid = state.pid;
  });

  test.after(async () => {
    await runc(['delete', '--force', ID], false);
    // runc removes the container's groups; remove what is left of ours (only if empty)
    for (const ctrl of readdirSync('/sys/fs/cgroup')) {
      for (const d of [path.join('/sys/fs/cgroup', ctrl, CG_PARENT, ID), path.join('/sys/fs/cgroup', ctrl, CG_PARENT)]) {
        try {
          rmdirSync(d);
        } catch {
          /* absent, or still used by someone else's container */
        }
      }
    }
    rmSync(top, { recursive: true, force: true });
  });

  test('cgroupOfPid(init) finds the container groups', () => {
    ref = cgroupOfPid(initPid);
    assert.is(ref.mode, mode);
    if (mode === 'v2') {
      assert.ok(ref.dirs.unified!.endsWith(`/${CG_PARENT}/${ID}`), ref.dirs.unified);
      assert.ok(existsSync(ref.dirs.unified!));
      return;
    }
    for (const ctrl of ['memory', 'cpu', 'cpuacct', 'pids']) {
      assert.ok(ref.dirs[ctrl], `no ${ctrl} dir in ${JSON.stringify(ref.dirs)}`);
      assert.ok(ref.dirs[ctrl]!.endsWith(`/${CG_PARENT}/${ID}`), ref.dirs[ctrl]);
      assert.ok(existsSync(ref.dirs[ctrl]!), ref.dirs[ctrl]);
    }
    assert.ok(readFileSync(path.join(ref.dirs.memory!, 'cgroup.procs'), 'utf8').split('\n').includes(String(initPid)));
  });

  test('readMetrics: the limits runc set, live pids and cpu usage', () => {
    const { v1, v2 } = decode();
    if (v2) {
      assert.is(v2.memory!.usageLimit, BigInt(LIMIT));
      assert.is(v2.pids!.limit, 50n);
      assert.ok(v2.pids!.current >= 1n);
      assert.ok(v2.cpu!.usageUsec > 0n);
      assert.ok(v2.memory!.usage > 0n);
      return;
    }
    assert.ok(v1);
    assert.is(v1!.memory!.usage!.limit, 33554432n);
    assert.is(v1!.memory!.hierarchicalMemoryLimit, 33554432n);
    assert.is(v1!.pids!.limit, 50n);
    assert.ok(v1!.pids!.current >= 1n, `pids.current ${v1!.pids!.current}`);
    assert.ok(v1!.cpu!.usage!.total > 0n, `cpu total ${v1!.cpu!.usage!.total}`);
    assert.ok(v1!.cpu!.usage!.perCpu.length >= 1);
    assert.ok(v1!.memory!.usage!.usage > 0n);
    assert.is(v1!.memoryOomControl!.oomKill, 0n);
  });

  test('loadMetrics (the Stats path, async reads) reads the same limits', async () => {
    const { v1, v2 } = decode(await loadMetrics(ref!));
    if (v2) {
      assert.equal([v2.memory!.usageLimit, v2.pids!.limit], [BigInt(LIMIT), 50n]);
      return;
    }
    assert.equal([v1!.memory!.usage!.limit, v1!.pids!.limit, v1!.memoryOomControl!.oomKill], [33554432n, 50n, 0n]);
    assert.ok(v1!.cpu!.usage!.total > 0n && v1!.cpu!.usage!.perCpu.length >= 1);
  });

  test('an exec OOM-killed by the 32 MiB limit: oom_kill grows, OomWatcher fires once, init survives', async () => {
    const before = oomKillCount(ref!);
    let manual = 0;
    let timed = 0;
    const watcher = new OomWatcher(ref!, () => manual++, 600_000);
    const ticking = new OomWatcher(ref!, () => timed++, 50);
    try {
      // busybox tail keeps the last 10 lines: a 100 MB line without newline stays in its buffer
      // The OOM killer picks the highest badness; under load it once picked the init. The hog raises
      // its own oom_score_adj to 1000 (raising needs no privilege; its children inherit it), which
      // adds the whole 32 MiB limit to its score: the init (adj 0, a few pages) is never chosen first.
      const hog = await runc(['exec', ID, 'sh', '-c', 'echo 1000 > /proc/self/oom_score_adj && head -c 100000000 /dev/zero | tail > /dev/null'], false);
      assert.is(hog.exitCode, 137, `hog exit ${hog.exitCode}: ${hog.stderr}`);
      const after = oomKillCount(ref!);
      assert.ok(after > before, `oom_kill ${before} -> ${after}`);
      assert.is(watcher.check(), true);
      assert.is(manual, 1);
      assert.is(watcher.check(), false);
      assert.is(manual, 1);
      const deadline = Date.now() + 3000;
      while (timed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.is(timed, 1, 'the 50 ms timer saw the increase by itself');
    } finally {
      watcher.stop();
      ticking.stop();
    }
    const state = JSON.parse((await runc(['state', ID])).stdout) as { status: string; pid: number };
    assert.is(state.status, 'running');
    assert.is(state.pid, initPid);
    const { v1, v2 } = decode();
    if (v1) {
      assert.ok(v1.memoryOomControl!.oomKill >= 1n);
      assert.ok(v1.memory!.usage!.max <= 33554432n);
    } else {
      assert.ok(v2!.memoryEvents!.oomKill >= 1n);
    }
  });
}

test.run();
