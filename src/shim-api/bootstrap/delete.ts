/**
 * The `delete` subcommand: containerd runs it whenever its connection for a task
 * closes (also after every normal teardown in 1.6), at start-up for bundles it
 * cannot reconnect, and after a failed create. Idempotent, per task, and its
 * stdout is exactly one DeleteResponse.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { HandlerResolver } from '../handler.js';
import { task, timestampFromDate } from '../pb.js';
import type { ShimFlags } from './flags.js';
import { readDeletedMarker } from './deleted-marker.js';
import { SOCKET_DIR, fromAddress, isServing, socketIdentity, withSocketLock } from './address.js';

export function encodeDeleteResponse(r: { pid: number; exitStatus: number }): Uint8Array {
  return task.DeleteResponse.encode({ pid: r.pid, exitStatus: r.exitStatus, exitedAt: timestampFromDate(new Date()) }).finish();
}

/** The task was deleted through the daemon: answer with its DeleteResponse, touch nothing. */
export function fastDelete(flags: ShimFlags): Uint8Array | undefined {
  return readDeletedMarker(flags.bundle || process.cwd());
}

export async function runDelete(flags: ShimFlags, resolver: HandlerResolver): Promise<Uint8Array> {
  const bundle = flags.bundle || process.cwd();
  const response = encodeDeleteResponse(await resolver.cleanup(bundle, flags.id));
  await removeStaleSocket(bundle);
  return response;
}

/**
 * After the shim died (kill -9, OOM) its socket file stays behind: remove it when nothing listens
 * on it any more. A live shim (another task of the pod) answers the probe and keeps its socket;
 * the probe and the unlink run under the socket lock, so no start can bind that path in between
 * (ADR 0013). runc-v2 1.6 leaves the file until a later start of the same group (docs/adr/0005).
 */
export async function removeStaleSocket(bundle: string, opts: { lockFile?: string; socketDir?: string } = {}): Promise<boolean> {
  let sock: string;
  try {
    sock = fromAddress((await fsp.readFile(path.join(bundle, 'address'), 'utf8')).trim());
  } catch {
    return false; // no address file: start never got that far
  }
  if (path.dirname(sock) !== (opts.socketDir ?? SOCKET_DIR)) return false;
  return withSocketLock(async () => {
    if (!(await socketIdentity(sock)) || (await isServing(sock))) return false;
    await fsp.rm(sock, { force: true });
    return true;
  }, opts);
}
