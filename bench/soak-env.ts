// What the containerd soak sections share: a private containerd 1.6 (test/helpers) with the test
// image, the two runtimes under comparison, backend wrappers (a runc that misbehaves on one
// subcommand) selected per container, and what a shim or a removed container leaves behind.
import { chmodSync, existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importTestImage, startContainerd, type PrivateContainerd } from '../test/helpers/containerd.js';
import { findProcesses, runChecked, waitFor } from '../test/helpers/proc.js';
import { leftovers, RUNC_V2, shimDaemons, TSSHIM } from '../test/helpers/tasks.js';
import { parseMountinfo } from '../src/sys/mountinfo.js';

export type Kind = 'tsshim' | 'runc-v2';
export const KINDS: Kind[] = ['tsshim', 'runc-v2'];
export const runtimeOf = (k: Kind): string => (k === 'tsshim' ? TSSHIM : RUNC_V2);

export interface SoakContainerd {
  cd: PrivateContainerd;
  image: string;
  /** A scratch directory of this containerd (wrappers, handler configs, markers). */
  dir: string;
  runc: string;
}

/** A private containerd with the test image; `fn` runs with it, then it is torn down. */
export async function withContainerd<T>(name: string, fn: (env: SoakContainerd) => Promise<T>): Promise<T> {
  const cd = await startContainerd({ name });
  try {
    const image = await importTestImage(cd);
    const runc = (await runChecked('sh', ['-c', 'command -v runc'])).trim();
    return await fn({ cd, image, dir: cd.dir, runc });
  } finally {
    await cd.stop();
  }
}

/**
 * A runc wrapper: `on` is sh run for the subcommand `sub` (with "$@" the full argv, $RUNC the
 * real runc, $MARK a marker file it may touch); every other call is runc itself.
 */
export function writeWrapper(env: SoakContainerd, name: string, sub: string, on: string): { path: string; mark: string } {
  const path = join(env.dir, `runc-${name}`);
  const mark = join(env.dir, `${name}.mark`);
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      `RUNC=${env.runc}`,
      `MARK=${mark}`,
      'sub=""; skip=0',
      // the subcommand: the first word that is not a global flag or a global flag's value
      'for a in "$@"; do',
      '  if [ $skip = 1 ]; then skip=0; continue; fi',
      '  case "$a" in --root|--log|--log-format|--criu) skip=1;; -*) ;; *) sub="$a"; break;; esac',
      'done',
      `if [ "$sub" = ${sub} ]; then`,
      on,
      'fi',
      'exec "$RUNC" "$@"',
      '',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  return { path, mark };
}

/**
 * ctr run flags selecting `binary` as the backend: runc-v2 takes runc Options.BinaryName
 * (--runc-binary); tsshim a handler config (--runtime-config-path) of the runc handler with that
 * binary and `options` lines.
 */
export function backendFlags(env: SoakContainerd, kind: Kind, binary: string, options = ''): string[] {
  if (kind === 'runc-v2') return ['--runtime', RUNC_V2, '--runc-binary', binary];
  const cfg = join(env.dir, `handler-${binary.split('/').pop()}.toml`);
  writeFileSync(cfg, `handler = "runc"\nbinary = "${binary}"\n\n[options]\n${options}`);
  return ['--runtime', TSSHIM, '--runtime-config-path', cfg];
}

export const groupFlags = (group: string): string[] => ['--annotation', `io.containerd.runc.v2.group=${group}`];

/** The shim daemon serving a group whose first task is `leader`. */
export function shimPidOf(cd: PrivateContainerd, leader: string): number {
  const d = shimDaemons(cd, [leader]);
  if (d.length !== 1) throw new Error(`expected one shim daemon for ${leader}, found ${d.length}`);
  return d[0]!.pid;
}

export interface ShimSnapshot {
  rssMiB: number;
  fds: number;
  socketFds: number;
  pipeFds: number;
  children: number;
  zombies: number;
  /** mounts under the containerd's directory, in the shim's mount namespace */
  mounts: number;
}

function childStates(pid: number): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === pid) out.push(rest[0]!);
    } catch {
      /* gone */
    }
  }
  return out;
}

export function snapshot(pid: number, dir: string): ShimSnapshot {
  let socketFds = 0;
  let pipeFds = 0;
  const fds = readdirSync(`/proc/${pid}/fd`);
  for (const fd of fds) {
    try {
      const t = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (t.startsWith('socket:')) socketFds++;
      else if (t.startsWith('pipe:')) pipeFds++;
    } catch {
      /* closed meanwhile */
    }
  }
  const states = childStates(pid);
  const mounts = parseMountinfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8')).filter((m) => m.mountPoint.startsWith(dir + '/')).length;
  return {
    rssMiB: +(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024).toFixed(1),
    fds: fds.length,
    socketFds,
    pipeFds,
    children: states.length,
    zombies: states.filter((s) => s === 'Z').length,
    mounts,
  };
}

/** Keys of `now` above `base` (after waiting up to settleMs for them to come back). */
export async function aboveBaseline(pid: number, dir: string, base: ShimSnapshot, settleMs = 30_000): Promise<{ snap: ShimSnapshot; above: string[] }> {
  const keys = ['fds', 'socketFds', 'pipeFds', 'children', 'zombies', 'mounts'] as const;
  let snap = snapshot(pid, dir);
  await waitFor(() => {
    snap = snapshot(pid, dir);
    return keys.every((k) => snap[k] <= base[k]);
  }, settleMs, 500);
  return { snap, above: keys.filter((k) => snap[k] > base[k]).map((k) => `${k} ${base[k]} -> ${snap[k]}`) };
}

/**
 * What a removed (or never created) container left: leftovers() (bundle, mounts, runc state,
 * its own shim, pids) plus cgroup directories and processes still in its cgroup.
 */
export function containerLeftovers(cd: PrivateContainerd, id: string): string[] {
  const out = leftovers(cd, id);
  for (const ctrl of readdirSync('/sys/fs/cgroup')) {
    for (const p of [join('/sys/fs/cgroup', ctrl, cd.namespace, id), join('/sys/fs/cgroup', ctrl, 'system.slice', `${cd.namespace}-${id}.scope`)]) {
      if (existsSync(p)) out.push(`cgroup ${p}`);
    }
  }
  const inCgroup = findProcesses(() => true).filter((p) => {
    try {
      return readFileSync(`/proc/${p.pid}/cgroup`, 'utf8').includes(`/${cd.namespace}/${id}\n`);
    } catch {
      return false;
    }
  });
  for (const p of inCgroup) out.push(`process ${p.pid} (${p.argv.join(' ').slice(0, 60)}) in its cgroup`);
  return out;
}

/** containerLeftovers after waiting up to timeoutMs for them to go. */
export async function waitContainerGone(cd: PrivateContainerd, id: string, timeoutMs = 20_000): Promise<string[]> {
  await waitFor(() => containerLeftovers(cd, id).length === 0, timeoutMs, 250);
  return containerLeftovers(cd, id);
}

/** Force-remove a task and its container (teardown; never throws). */
export async function removeContainer(cd: PrivateContainerd, id: string): Promise<void> {
  await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 30_000 }).catch(() => undefined);
  await waitFor(async () => !/RUNNING|PAUSED/.test((await cd.ctr(['task', 'ls'], { timeoutMs: 30_000 }).catch(() => ({ stdout: '' }))).stdout.split('\n').find((l) => l.startsWith(id + ' ')) ?? ''), 20_000, 200);
  await cd.ctr(['task', 'delete', '-f', id], { timeoutMs: 60_000 }).catch(() => undefined);
  await cd.ctr(['containers', 'rm', id], { timeoutMs: 60_000 }).catch(() => undefined);
}

/** First line of a ctr error, ids and this containerd's paths replaced. */
export function errorText(stderr: string, cd: PrivateContainerd, ids: string[]): string {
  let t = (stderr.trim().split('\n').find((l) => /error|fail/i.test(l)) ?? stderr.trim().split('\n')[0] ?? '').replace(/^ctr: /, '');
  t = t.split(cd.dir).join('<dir>');
  for (const id of ids) t = t.split(id).join('<id>');
  return t.slice(0, 400);
}

export const round1 = (n: number): number => Math.round(n * 10) / 10;
