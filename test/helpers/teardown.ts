// Teardown shared by the private containerd helper (stop()) and the conformance runner (after
// each cell): remove containers through containerd, then whatever outlived it (shim processes,
// runc/runsc state, mounts).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { findProcesses, runCommand, type RunResult } from './proc.js';
import { parseMountinfo } from '../../src/sys/mountinfo.js';

/** A ctr bound to one containerd: `ctr --address .. -n <namespace> <args>`; never rejects on a non-zero exit. */
export type CtrCall = (args: string[], opts?: { namespace?: string; timeoutMs?: number }) => Promise<RunResult>;

const lines = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean);

/**
 * SIGKILL the task, delete it (-f) and remove the container, for each id that containerd lists in
 * namespace ns. Returns problems (task deletes that failed); never throws.
 */
export async function removeContainers(ctr: CtrCall, ids: readonly string[], ns?: string): Promise<string[]> {
  const problems: string[] = [];
  if (ids.length === 0) return problems;
  const listed = new Set(lines((await ctr(['containers', 'ls', '-q'], { namespace: ns, timeoutMs: 10_000 }).catch(() => ({ stdout: '' }))).stdout));
  const tasks = new Set(lines((await ctr(['tasks', 'ls', '-q'], { namespace: ns, timeoutMs: 10_000 }).catch(() => ({ stdout: '' }))).stdout));
  const mine = ids.filter((id) => listed.has(id) || tasks.has(id));
  for (const id of mine) if (tasks.has(id)) await ctr(['tasks', 'kill', '-s', 'SIGKILL', id], { namespace: ns, timeoutMs: 10_000 }).catch(() => undefined);
  for (const id of mine) {
    if (!tasks.has(id)) continue;
    const r = await ctr(['tasks', 'delete', '-f', id], { namespace: ns, timeoutMs: 30_000 }).catch((e: Error) => ({ exitCode: -1, stderr: e.message }));
    if (r.exitCode !== 0) problems.push(`task ${ns ?? ''}/${id} delete: ${r.stderr.trim()}`);
  }
  const containers = mine.filter((id) => listed.has(id));
  if (containers.length > 0) await ctr(['containers', 'rm', ...containers], { namespace: ns, timeoutMs: 30_000 }).catch(() => undefined);
  return problems;
}

/** removeContainers for every task and container of every namespace. Returns problems; never throws. */
export async function removeAllContainers(ctr: CtrCall): Promise<string[]> {
  try {
    const namespaces = lines((await ctr(['namespaces', 'ls', '-q'], { timeoutMs: 10_000 })).stdout);
    const problems: string[] = [];
    for (const ns of namespaces) {
      const tasks = lines((await ctr(['tasks', 'ls', '-q'], { namespace: ns, timeoutMs: 10_000 })).stdout);
      const containers = lines((await ctr(['containers', 'ls', '-q'], { namespace: ns, timeoutMs: 10_000 })).stdout);
      problems.push(...(await removeContainers(ctr, [...new Set([...tasks, ...containers])], ns)));
    }
    return problems;
  } catch (e) {
    return [`ctr cleanup: ${(e as Error).message}`];
  }
}

/** SIGKILL every process with one of these words in its argv (alone or as `--flag=<word>`): shims and ctr of one containerd. */
export function killProcessesNaming(words: readonly string[]): void {
  const named = (argv: string[]) => argv.some((a) => words.some((w) => a === w || a.endsWith('=' + w)));
  for (const p of findProcesses(named)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** The low-level runtimes whose state outlives a dead shim, under /run/containerd/<name>/<namespace>. */
const RUNTIMES = [
  { binary: 'runc', kill: (id: string) => ['kill', id, 'KILL'], del: (id: string) => ['delete', '-f', id] },
  { binary: 'runsc', kill: (id: string) => ['kill', id, 'KILL'], del: (id: string) => ['delete', '-force', id] },
] as const;

/**
 * Containers whose shim died before cleaning up: runc and runsc state (every namespace) whose
 * bundle lies under dir is killed and deleted. Never throws.
 */
export async function deleteOrphanContainers(dir: string): Promise<void> {
  for (const rt of RUNTIMES) {
    const base = `/run/containerd/${rt.binary}`;
    if (!existsSync(base)) continue;
    for (const ns of readdirSync(base)) {
      const root = join(base, ns);
      let list: Array<{ id: string; bundle: string }>;
      try {
        const r = await runCommand(rt.binary, ['--root', root, 'list', '--format', 'json'], { timeoutMs: 10_000 });
        if (r.exitCode !== 0) continue;
        list = JSON.parse(r.stdout || 'null') ?? [];
      } catch {
        continue; // runtime not installed, or its output is not JSON
      }
      for (const c of list) {
        if (!c.bundle?.startsWith(dir + '/')) continue;
        await runCommand(rt.binary, ['--root', root, ...rt.kill(c.id)], { timeoutMs: 10_000 }).catch(() => undefined);
        await runCommand(rt.binary, ['--root', root, ...rt.del(c.id)], { timeoutMs: 20_000 }).catch(() => undefined);
      }
    }
  }
}

/** Mount points at or under dir, from /proc/self/mountinfo (octal escapes decoded). */
export function mountsUnder(dir: string): string[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    .map((m) => m.mountPoint)
    .filter((mp) => mp === dir || mp.startsWith(dir + '/'));
}

/** Unmounts everything at or under dir, deepest first (lazily when a plain umount fails). */
export async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(dir).sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    for (const mp of points) {
      const r = await runCommand('umount', [mp], { timeoutMs: 10_000 }).catch(() => ({ exitCode: 1 }));
      if (r.exitCode !== 0) await runCommand('umount', ['-l', mp], { timeoutMs: 10_000 }).catch(() => undefined);
    }
  }
}
