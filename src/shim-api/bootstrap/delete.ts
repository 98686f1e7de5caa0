/**
 * The `delete` subcommand: containerd runs it whenever its connection for a task
 * closes (also after every normal teardown in 1.6), at start-up for bundles it
 * cannot reconnect, and after a failed create. Idempotent, per task, and its
 * stdout is exactly one DeleteResponse.
 */
import type { HandlerResolver } from '../handler.js';
import { task, timestampFromDate } from '../proto/index.js';
import type { ShimFlags } from './flags.js';
import { readDeletedMarker } from './deleted-marker.js';

export function encodeDeleteResponse(r: { pid: number; exitStatus: number }): Uint8Array {
  return task.DeleteResponse.encode({ pid: r.pid, exitStatus: r.exitStatus, exitedAt: timestampFromDate(new Date()) }).finish();
}

/** The task was deleted through the daemon: answer with its DeleteResponse, touch nothing. */
export function fastDelete(flags: ShimFlags): Uint8Array | undefined {
  return readDeletedMarker(flags.bundle || process.cwd());
}

export async function runDelete(flags: ShimFlags, resolver: HandlerResolver): Promise<Uint8Array> {
  const bundle = flags.bundle || process.cwd();
  return encodeDeleteResponse(await resolver.cleanup(bundle, flags.id));
}
