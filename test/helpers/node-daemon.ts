/** Node mode's daemon as tests see it (ADR 0018): `tsshim node status --json`, and waiting for a new worker. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { NodeStatus } from '../../src/shim-api/bootstrap/node.js';
import type { PrivateContainerd } from './containerd-process.js';
import { REPO_ROOT, waitFor } from './proc.js';

const TSSHIM_CLI = join(REPO_ROOT, 'bin', 'tsshim');

/** The node daemon serving this containerd; throws with the CLI's message when none runs. */
export function nodeStatus(cd: PrivateContainerd): NodeStatus {
  const r = spawnSync(TSSHIM_CLI, ['node', 'status', '--json', '--address', cd.address], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`tsshim node status exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as NodeStatus;
}

/** Waits (bounded) until a worker other than `old` is ready, and returns the status saying so. */
export async function waitNewWorker(cd: PrivateContainerd, old: number, timeoutMs = 60_000): Promise<NodeStatus> {
  let s: NodeStatus | undefined;
  const ok = await waitFor(() => {
    try {
      s = nodeStatus(cd);
    } catch {
      return false;
    }
    return s.workerReady && s.workerPid !== null && s.workerPid !== old;
  }, timeoutMs, 100);
  assert.ok(ok, `a new worker serves (status ${JSON.stringify(s)})`);
  return s!;
}
