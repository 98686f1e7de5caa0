/**
 * `tsshim node status [--json] [--reset-event-loop] [--address ADDR]`: the node daemon (ADR 0018)
 * of the containerd at ADDR (default /run/containerd/containerd.sock), asked over its control socket.
 */
import { askReload, askStatus, nodePaths, type EventLoopDelay, type NodeStatus } from '../shim-api/bootstrap/node.js';

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';

export function renderStatus(s: NodeStatus): string {
  const lines = [
    `node daemon of ${s.containerdAddress} (tsshim ${s.version})`,
    `  supervisor pid: ${s.supervisorPid ?? '-'}`,
    `  worker pid:     ${s.workerPid ?? '- (restarting)'}`,
    `  uptime:         ${s.uptimeSeconds} s (since ${s.startedAt}), restarts: ${s.restarts}`,
    `  tasks:          ${s.tasks.length}`,
  ];
  for (const [ns, n] of Object.entries(s.namespaces).sort(([a], [b]) => a.localeCompare(b))) {
    const by = Object.entries(n.byHandler).map(([h, c]) => `${h} ${c}`).join(', ');
    lines.push(`    ${ns}: ${n.tasks}${by ? ` (${by})` : ''}`);
  }
  if (s.eventLoop) {
    const own = (d: EventLoopDelay) => (d.maxOwnMs === null || d.maxOwnMs === undefined ? '' : ` (${d.maxOwnMs} ms not waiting for a CPU)`);
    const loop = (d: EventLoopDelay | null) => (d ? `max ${d.maxMs} ms${own(d)}, p99 ${d.p99Ms} ms over ${(d.sinceMs / 1000).toFixed(1)} s` : '-');
    lines.push(`  event-loop delay (since the last reset):`, `    supervisor: ${loop(s.eventLoop.supervisor)}`, `    worker:     ${loop(s.eventLoop.worker)}`);
  }
  return lines.join('\n') + '\n';
}

/** Exit 0 with the status; 1 when no daemon answers (with the reason). */
export async function nodeStatus(opts: { json: boolean; address?: string; resetEventLoop?: boolean }): Promise<number> {
  const address = opts.address ?? DEFAULT_CONTAINERD_ADDRESS;
  const paths = nodePaths(address);
  let s: NodeStatus;
  try {
    s = await askStatus(paths.control, undefined, { resetEventLoop: opts.resetEventLoop });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' || code === 'ECONNREFUSED' ? 'no node daemon runs' : (err as Error).message;
    process.stderr.write(`tsshim: node status: ${why} for containerd ${address} (control socket ${paths.control}); node mode is [shim] mode = "node" in the tsshim config, and its daemon starts with the first task\n`);
    return 1;
  }
  process.stdout.write(opts.json ? JSON.stringify(s, null, 2) + '\n' : renderStatus(s));
  return 0;
}

/** Replace the worker (upgrade); waits until the new one serves. */
export async function nodeReload(opts: { json: boolean; address?: string }): Promise<number> {
  const address = opts.address ?? DEFAULT_CONTAINERD_ADDRESS;
  const paths = nodePaths(address);
  let r: { oldWorkerPid: number | null; restarts: number };
  try {
    r = await askReload(paths.control);
  } catch (err) {
    process.stderr.write(`tsshim: node reload: ${(err as Error).message} (containerd ${address}, control socket ${paths.control})\n`);
    return 1;
  }
  // The supervisor starts the next worker at once; report it when it serves.
  const deadline = Date.now() + 30_000;
  let s: NodeStatus | undefined;
  while (Date.now() < deadline) {
    s = await askStatus(paths.control).catch(() => undefined);
    if (s?.workerPid && s.workerReady && s.workerPid !== r.oldWorkerPid) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  if (!s?.workerPid || !s.workerReady || s.workerPid === r.oldWorkerPid) {
    process.stderr.write(`tsshim: node reload: no new worker within 30 s (old worker ${r.oldWorkerPid}); see ${paths.log}\n`);
    return 1;
  }
  process.stdout.write(opts.json ? JSON.stringify({ oldWorkerPid: r.oldWorkerPid, workerPid: s.workerPid, restarts: s.restarts }) + '\n' : `worker ${r.oldWorkerPid} replaced by ${s.workerPid}\n`);
  return 0;
}
