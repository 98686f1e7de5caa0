/**
 * The `delete` subcommand: containerd runs it whenever its connection for a task
 * closes (also after every normal teardown in 1.6), at start-up for bundles it
 * cannot reconnect, and after a failed create. Idempotent, per task, and its
 * stdout is exactly one DeleteResponse.
 */
import type { HandlerResolver } from '../handler.js';
import { task, timestampFromDate } from '../proto/index.js';
import type { ShimFlags } from './flags.js';

export async function runDelete(flags: ShimFlags, resolver: HandlerResolver): Promise<Uint8Array> {
  const bundle = flags.bundle || process.cwd();
  const r = await resolver.cleanup(bundle, flags.id);
  return task.DeleteResponse.encode({ pid: r.pid, exitStatus: r.exitStatus, exitedAt: timestampFromDate(new Date()) }).finish();
}
