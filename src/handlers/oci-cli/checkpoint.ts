/**
 * Checkpoint of an OCI task (`<runtime> checkpoint`, CRIU for runc-like backends), as
 * runc-v2 runs it: options from runc's CheckpointOptions, CRIU's work directory and
 * dump.log handling, and exit-by-kill for backends whose checkpoint cannot stop the task.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ShimError } from '../../shim-api/errors.js';
import { runcOptions, TYPE_URL, unpackAny, type task } from '../../shim-api/pb.js';
import type { OciCliDriver } from './driver.js';

export async function checkpointTask(driver: OciCliDriver, id: string, bundle: string, req: task.CheckpointTaskRequest, log: Logger): Promise<void> {
  const profile = driver.profile;
  const o = unpackAny(req.options, TYPE_URL.RuncCheckpointOptions, runcOptions.CheckpointOptions);
  const exit = o?.exit ?? false;
  const exitByKill = exit && profile.checkpointExit === 'kill';
  // As runc-v2 for CRIU backends: without a work path CRIU works in <bundle>/work/criu-work
  // (removed afterwards); when the dump fails its dump.log is kept as <bundle>/criu-dump.log
  // and the error names it (containerd removes the image dir, where the log landed before).
  const criu = profile.criuFlag !== undefined;
  const ownWork = criu && !o?.workPath;
  const workPath = o?.workPath || (criu ? path.join(bundle, 'work', 'criu-work') : undefined);
  try {
    await driver.checkpoint(id, {
      imagePath: o?.imagePath || req.path,
      workPath,
      leaveRunning: !exit || exitByKill,
      tcpEstablished: o?.openTcp || undefined,
      externalUnixSockets: o?.externalUnixSockets || undefined,
      shellJob: o?.terminal || undefined,
      fileLocks: o?.fileLocks || undefined,
      emptyNamespaces: o?.emptyNamespaces?.length ? o.emptyNamespaces : undefined,
      cgroupsMode: o?.cgroupsMode || undefined,
    });
  } catch (err) {
    if (!criu || !workPath || !(err instanceof ShimError)) throw err;
    const dumpLog = path.join(bundle, 'criu-dump.log');
    await fs.copyFile(path.join(workPath, 'dump.log'), dumpLog).catch((e: unknown) => log.error({ err: e, container: id }, 'failed to copy dump.log to criu-dump.log'));
    throw new ShimError(err.kind, `${err.message.split('\n')[0]} path= ${dumpLog}`, { cause: err });
  } finally {
    if (ownWork) await fs.rm(workPath!, { recursive: true, force: true }).catch(() => undefined);
  }
  if (exitByKill) await driver.kill(id, 9, true);
}
