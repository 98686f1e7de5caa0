/**
 * `tsshim node status [--json] [--address ADDR]`: the node daemon (ADR 0018) of the containerd at
 * ADDR (default /run/containerd/containerd.sock), asked over its control socket.
 */
import { askStatus, nodePaths, type NodeStatus } from '../shim-api/bootstrap/node.js';

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';

export function renderStatus(s: NodeStatus): string {
  const lines = [
    `node daemon of ${s.containerdAddress} (tsshim ${s.version})`,
    `  supervisor pid: ${s.supervisorPid ?? '- (supervisor and worker are one process)'}`,
    `  worker pid:     ${s.workerPid}`,
    `  uptime:         ${s.uptimeSeconds} s (since ${s.startedAt}), restarts: ${s.restarts}`,
    `  tasks:          ${s.tasks.length}`,
  ];
  for (const [ns, n] of Object.entries(s.namespaces).sort(([a], [b]) => a.localeCompare(b))) {
    const by = Object.entries(n.byHandler).map(([h, c]) => `${h} ${c}`).join(', ');
    lines.push(`    ${ns}: ${n.tasks}${by ? ` (${by})` : ''}`);
  }
  return lines.join('\n') + '\n';
}

/** Exit 0 with the status; 1 when no daemon answers (with the reason). */
export async function nodeStatus(opts: { json: boolean; address?: string }): Promise<number> {
  const address = opts.address ?? DEFAULT_CONTAINERD_ADDRESS;
  const paths = nodePaths(address);
  let s: NodeStatus;
  try {
    s = await askStatus(paths.control);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' || code === 'ECONNREFUSED' ? 'no node daemon runs' : (err as Error).message;
    process.stderr.write(`tsshim: node status: ${why} for containerd ${address} (control socket ${paths.control}); node mode is [shim] mode = "node" in the tsshim config, and its daemon starts with the first task\n`);
    return 1;
  }
  process.stdout.write(opts.json ? JSON.stringify(s, null, 2) + '\n' : renderStatus(s));
  return 0;
}
