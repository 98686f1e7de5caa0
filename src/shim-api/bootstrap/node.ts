/**
 * Node mode (docs/adr/0018-node-mode.md): one tsshim daemon per containerd instance serves every
 * tsshim task of that containerd, whatever its namespace or pod.
 *
 * - The daemon of a containerd is found by its `-address`: state in NODE_ROOT/<key> (pid file,
 *   control socket, lock), key = a hash of the address, so private containerds side by side each
 *   get their own daemon.
 * - Each containerd namespace gets its own task socket (socketPath(address, ns, NODE_GROUP)) and
 *   its own TaskService (in the worker, src/shim-api/node/): a connection belongs to one namespace by the socket it came in on, so
 *   tasks are keyed by (namespace, id) even when the requests carry no namespace metadata (`ctr`).
 * - `start` (bin/containerd-shim-tsshim-v2) answers with the namespace socket without booting
 *   Node when the daemon already serves it; otherwise Node asks the daemon over the control
 *   socket to serve the namespace, or becomes the daemon itself.
 * - Shutdown never ends the daemon: containerd asks every task's shim to shut down, and other
 *   tasks live on the same process.
 */
import { createHash } from 'node:crypto';
import { Client } from 'ttrpc-ts';
import { RUNTIME_TYPE } from '../runtime-type.js';
import { socketPath } from './address.js';

export const NODE_ROOT = '/run/tsshim/node';
/** The group part of a namespace socket's hash: not an identifier, so no task id can collide with it. */
export const NODE_GROUP = '@node';
export const CONTROL_SERVICE = 'tsshim.node.v1.Node';
export const NODE_LOG_DIR = '/var/log/tsshim';

/** Where the daemon of the containerd at `containerdAddress` keeps its state. */
export interface NodePaths {
  key: string;
  dir: string;
  pidFile: string;
  control: string;
  lock: string;
  log: string;
}

/** The launcher (bin/containerd-shim-tsshim-v2) computes the same key with sha256sum: keep them equal. */
export function nodeKey(containerdAddress: string): string {
  return createHash('sha256').update(`${RUNTIME_TYPE}:${containerdAddress}`).digest('hex').slice(0, 16);
}

export function nodePaths(containerdAddress: string, root = NODE_ROOT): NodePaths {
  const key = nodeKey(containerdAddress);
  const dir = `${root}/${key}`;
  return { key, dir, pidFile: `${dir}/pid`, control: `${dir}/control.sock`, lock: `${dir}/lock`, log: `${NODE_LOG_DIR}/node-${key}.log` };
}

/** The task socket of one namespace (the launcher computes it too). */
export function namespaceSocket(containerdAddress: string, namespace: string): string {
  return socketPath(containerdAddress, namespace, NODE_GROUP);
}

// --- the control protocol (ttrpc, JSON payloads: only tsshim's own start and CLI speak it) ---

/** One process's event-loop delay over a window (src/shim-api/node/event-loop.ts measures it). */
export interface EventLoopDelay {
  /** the largest delay of a tick, ms: a stall of S ms shows as S − resolutionMs … S */
  maxMs: number;
  p99Ms: number;
  meanMs: number;
  /**
   * the largest delay minus the time the main thread waited for a CPU in its interval: what the
   * process caused itself (JavaScript, GC, native calls), not the host's load; null without schedstat
   */
  maxOwnMs: number | null;
  /** ticks recorded */
  samples: number;
  /** length of the window (since the last reset or the process's start), ms */
  sinceMs: number;
  resolutionMs: number;
}

export interface NodeStatus {
  mode: 'node';
  /** The process that holds containerd's connections; null while supervisor and worker are one process. */
  supervisorPid: number | null;
  /** The process that runs handler code, backend commands and stdio copying (null while it restarts). */
  workerPid: number | null;
  /** the worker adopted the tasks and serves containerd's connections */
  workerReady: boolean;
  pid: number;
  version: string;
  containerdAddress: string;
  startedAt: string;
  uptimeSeconds: number;
  restarts: number;
  /** socketRebinds: times the socket file was removed by another program and bound again. */
  namespaces: Record<string, { address: string; tasks: number; byHandler: Record<string, number>; socketRebinds: number }>;
  tasks: Array<{ namespace: string; id: string; handler: string }>;
  /**
   * Event-loop delay of each process since the last reset (`Status` with resetEventLoop; the
   * worker's window also starts at its own start); worker null while none serves or it did not
   * answer. Absent from a supervisor older than this field (a reload replaces the worker only).
   */
  eventLoop?: { supervisor: EventLoopDelay; worker: EventLoopDelay | null };
}

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = (b: Uint8Array): unknown => (b.length === 0 ? {} : JSON.parse(new TextDecoder().decode(b)));

async function call(control: string, method: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const client = await Client.connect(control, { connectTimeoutMs: timeoutMs });
  try {
    return dec(await client.call(CONTROL_SERVICE, method, enc(body), { timeoutMs }));
  } finally {
    client.close();
  }
}

/** Ask the running daemon to serve `namespace`; resolves to its task address. */
export async function askServe(control: string, namespace: string, timeoutMs = 10_000): Promise<string> {
  const r = (await call(control, 'Serve', { namespace }, timeoutMs)) as { address?: unknown };
  if (typeof r.address !== 'string') throw new Error('tsshim node daemon: Serve answered without an address');
  return r.address;
}

/** resetEventLoop: the answer covers the window up to now, and a new event-loop window starts (both processes). */
export async function askStatus(control: string, timeoutMs = 5_000, opts: { resetEventLoop?: boolean } = {}): Promise<NodeStatus> {
  return (await call(control, 'Status', opts.resetEventLoop ? { resetEventLoop: true } : {}, timeoutMs)) as NodeStatus;
}

export async function askReload(control: string, timeoutMs = 30_000): Promise<{ oldWorkerPid: number | null; restarts: number }> {
  return (await call(control, 'Reload', {}, timeoutMs)) as { oldWorkerPid: number | null; restarts: number };
}
