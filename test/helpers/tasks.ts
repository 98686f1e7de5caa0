// Observations about tasks for integration tests: shim processes, leftovers, events.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { NODE_ROOT } from '../../src/shim-api/bootstrap/node.js';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { findProcesses, waitFor } from './proc.js';
import type { PrivateContainerd } from './containerd.js';
import { mountsUnder } from './teardown.js';
import { RUNTIME_TYPE, SHIM_BINARY } from '../../src/shim-api/runtime-type.js';

export const TSSHIM = RUNTIME_TYPE;
export const RUNC_V2 = 'io.containerd.runc.v2';

/** The shim binary containerd runs for a runtime type. */
export const shimBinaryOf = (runtimeType: string): string =>
  runtimeType === RUNC_V2 ? 'containerd-shim-runc-v2' : runtimeType === 'io.containerd.runsc.v1' ? 'containerd-shim-runsc-v1' : SHIM_BINARY;

/** Shim daemons (not `start`/`delete` invocations) of this containerd launched for one of these task ids (the first task of a group), with their binary's name. */
export function shimDaemons(cd: PrivateContainerd, ids: string[]): Array<{ pid: number; binary: string }> {
  // A node daemon (ADR 0018) is started as `-id <its first task>` but is no task's own shim.
  const nodeDaemons = nodeDaemonPids();
  return findProcesses((argv, pid) => {
    if (nodeDaemons.has(pid)) return false;
    const i = argv.indexOf('-id');
    const a = argv.indexOf('-address');
    return i >= 0 && ids.includes(argv[i + 1] ?? '') && a >= 0 && argv[a + 1] === cd.address && !argv.includes('start') && !argv.includes('delete');
  }).map((p) => ({ pid: p.pid, binary: (p.argv.find((x) => /containerd-shim-/.test(x)) ?? p.argv[0] ?? '').split('/').pop()! }));
}

/** Pids of tsshim's node daemons (their pid files under NODE_ROOT). */
export function nodeDaemonPids(): Set<number> {
  const out = new Set<number>();
  let keys: string[] = [];
  try {
    keys = readdirSync(NODE_ROOT);
  } catch {
    return out;
  }
  for (const k of keys) {
    try {
      out.add(Number(readFileSync(join(NODE_ROOT, k, 'pid'), 'utf8').trim()));
    } catch {
      /* no daemon there */
    }
  }
  return out;
}

/** Shim daemons serving task `id` (first task id of the group) for this containerd. */
export function shimPids(cd: PrivateContainerd, id: string): number[] {
  return shimDaemons(cd, [id]).map((d) => d.pid);
}

export function bundleDir(cd: PrivateContainerd, id: string, ns = cd.namespace): string {
  return join(cd.state, 'io.containerd.runtime.v2.task', ns, id);
}

/** Everything a removed task must not leave behind; empty when clean. */
export function leftovers(cd: PrivateContainerd, id: string, pids: number[] = [], ns = cd.namespace): string[] {
  const out: string[] = [];
  const bundle = bundleDir(cd, id, ns);
  if (existsSync(bundle)) out.push(`bundle ${bundle}`);
  for (const m of mountsUnder(bundle)) out.push(`mount ${m}`);
  for (const p of ['/run/containerd/runc', '/run/containerd/runsc']) {
    if (existsSync(join(p, ns, id))) out.push(`runtime state ${join(p, ns, id)}`);
  }
  for (const pid of shimPids(cd, id)) out.push(`shim process ${pid}`);
  for (const pid of pids) if (existsSync(`/proc/${pid}`)) out.push(`process ${pid}`);
  return out;
}

export async function waitNoLeftovers(cd: PrivateContainerd, id: string, pids: number[] = [], timeoutMs = 10_000): Promise<string[]> {
  await waitFor(() => leftovers(cd, id, pids).length === 0, timeoutMs, 100);
  return leftovers(cd, id, pids);
}

export interface TaskRow {
  id: string;
  pid: number;
  status: string;
}

export async function taskList(cd: PrivateContainerd): Promise<TaskRow[]> {
  const r = await cd.ctr(['task', 'ls']);
  return r.stdout
    .trim()
    .split('\n')
    .slice(1)
    .filter(Boolean)
    .map((l) => {
      const [id, pid, status] = l.trim().split(/\s+/);
      return { id: id!, pid: Number(pid), status: status! };
    });
}

export async function taskStatus(cd: PrivateContainerd, id: string): Promise<TaskRow | undefined> {
  return (await taskList(cd)).find((t) => t.id === id);
}

export interface EventLine {
  topic: string;
  body: Record<string, unknown>;
}

/** Collects `ctr events` output; call stop() to end it and get the parsed lines. */
export function collectEvents(cd: PrivateContainerd): { child: ChildProcess; ready: Promise<void>; stop(): Promise<EventLine[]>; lines(): EventLine[] } {
  const child = cd.ctrSpawn(['events']);
  let buf = '';
  const parsed: EventLine[] = [];
  child.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const m = /\s(\/[a-z-]+\/[a-z-]+)\s+(\{.*\})\s*$/.exec(line);
      if (!m) continue;
      const topic = m[1]!;
      const json = m[2]!;
      try {
        parsed.push({ topic, body: JSON.parse(json) as Record<string, unknown> });
      } catch {
        /* partial line */
      }
    }
  });
  const ready = new Promise<void>((r) => setTimeout(r, 300));
  return {
    child,
    ready,
    lines: () => parsed,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      return parsed;
    },
  };
}
