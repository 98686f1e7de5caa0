/**
 * The runtime invocations that make a container's processes: create the init (rootfs
 * mounts, stdio, `create` or a restore to do at Start), start it, restore it, exec.
 * Each leaves the process's pid set; none touches the state machine or exit tracking
 * (the task handler does, around them).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { unimplemented } from '../../shim-api/errors.js';
import type { task } from '../../shim-api/pb.js';
import type { Proc } from './process.js';
import { ProcessIO, type FdKeeper, type StdioContext } from './stdio.js';
import { withConsole, type Container, type OciHandlerDeps } from './container.js';
import { removeCgroupDirs } from './cgroups/remove.js';
import { readPidFile } from './driver.js';

export type LaunchDeps = Pick<OciHandlerDeps, 'profile' | 'mountAll' | 'unmountAll' | 'log'> & {
  stdio(c: Container): StdioContext;
  /** node mode: what hands a process's stdio fds to the custody (adopt.ts) */
  keeper?(c: Container, p: Proc): FdKeeper | undefined;
};

/** Mount the rootfs, open the init's stdio, run `create`; on failure undo all of it and rethrow. */
export async function createInit(c: Container, req: task.CreateTaskRequest, deps: LaunchDeps): Promise<void> {
  const { driver, init } = c;
  const rootfs = path.join(req.bundle, 'rootfs');
  try {
    if (req.rootfs.length > 0) {
      await fs.mkdir(rootfs, { recursive: true, mode: 0o711 });
      await deps.mountAll(req.rootfs, rootfs);
      c.mounted = true;
    }
    const io = (init.io = await ProcessIO.open(init.stdio, deps.stdio(c), deps.keeper?.(c, init)));
    const createOpts = { pidFile: path.join(req.bundle, 'init.pid'), noPivot: c.noPivot, noNewKeyring: c.noNewKeyring };
    if (req.checkpoint) {
      // Nothing runs until Start, which restores; the runtime must be able to.
      if (!deps.profile.supports.has('restore')) throw unimplemented(`${deps.profile.name} does not support restore`);
      c.restoreFrom = { imagePath: req.checkpoint, noPivot: c.noPivot };
    } else if (c.stdioAtStart) {
      init.pid = await driver.create(req.id, createOpts); // stdio goes to `start`
    } else {
      init.pid = await withConsole(io, (consoleSocket) => driver.create(req.id, { ...createOpts, consoleSocket, stdio: io.childFds }));
    }
  } catch (err) {
    await init.io?.close(0);
    await driver.delete(req.id, { force: true }).catch(() => undefined);
    // A runtime killed mid-create leaves its cgroup: delete --force finds no state to remove it by.
    const cg = await removeCgroupDirs(c.cgroupsPath).catch((e: Error) => ({ removed: [], kept: [{ dir: c.cgroupsPath, code: e.message }] }));
    if (cg.removed.length > 0) deps.log.info({ id: req.id, cgroups: cg.removed.length }, 'removed the cgroup of a failed create');
    if (cg.kept.length > 0) deps.log.warn({ id: req.id, kept: cg.kept }, 'cannot remove the cgroup of a failed create');
    await unmountRootfs(c, deps);
    throw err;
  }
}

/** `start` of a created init; backends that take a sub-container's stdio at start get it here. */
export async function startInit(c: Container, p: Proc): Promise<void> {
  await c.driver.start(c.id, c.stdioAtStart ? { stdio: p.io!.childFds } : {});
  if (c.stdioAtStart) p.io!.closeChildEnds();
}

/** Start of a task created from a checkpoint: `<runtime> restore --detach`. */
export async function restoreInit(c: Container, p: Proc): Promise<void> {
  const io = p.io!;
  const { imagePath, noPivot } = c.restoreFrom!;
  const pidFile = path.join(c.bundle, 'init.pid');
  p.pid = await withConsole(io, (consoleSocket) => c.driver.restore(c.id, { imagePath, pidFile, consoleSocket, noPivot, detach: true, stdio: io.childFds }));
  c.restoreFrom = undefined;
}

/** `exec --detach` of an added exec: its stdio, its process.json, its pid. */
export async function startExec(c: Container, p: Proc, deps: LaunchDeps): Promise<void> {
  const io = (p.io = await ProcessIO.open(p.stdio, deps.stdio(c), deps.keeper?.(c, p)));
  const processJsonPath = path.join(c.bundle, `.exec-${p.execId}.json`);
  const pidFile = path.join(c.bundle, `${p.execId}.pid`);
  // Signals to this exec go through the runtime by its own pid for it (profile.execSignal).
  const internalPidFile = c.driver.profile.execSignal === 'runtime' ? path.join(c.bundle, `${p.execId}.internal.pid`) : undefined;
  await fs.writeFile(processJsonPath, p.spec ?? new Uint8Array(), { mode: 0o600 });
  try {
    p.pid = await withConsole(io, (consoleSocket) => c.driver.exec(c.id, { processJsonPath, pidFile, internalPidFile, consoleSocket, stdio: io.childFds }));
    // Written before the pid file (runsc exec -d): a missing one leaves kill(2) on the pid.
    if (internalPidFile) p.internalPid = await readPidFile(internalPidFile).catch(() => undefined);
  } catch (err) {
    await io.close(0);
    throw err;
  } finally {
    await fs.rm(processJsonPath, { force: true });
  }
}

/**
 * A failed `start` of a sandboxed runtime's container (runsc reports exec errors such as a
 * missing binary at start, not at create): its container can only go to running, so it never
 * will, and `<runtime> wait` is never run for it. As gVisor's own shim does, the init counts as
 * exited with 128 (its internalErrorCode), so the client may Delete it (containerd refuses to
 * delete a created task with a pid); Delete then forces the runtime's delete, which takes the
 * sandbox, its state and its cgroup down.
 */
export function startFailed(c: Container, exited: (e: { status: number; exitedAt: Date }) => void): void {
  c.startFailed = true;
  exited({ status: 128, exitedAt: new Date() }); // held: published on release
}

export async function unmountRootfs(c: Container, deps: { unmountAll: OciHandlerDeps['unmountAll']; log: Logger }): Promise<void> {
  if (!c.mounted) return;
  const rootfs = path.join(c.bundle, 'rootfs');
  try {
    await deps.unmountAll(rootfs);
  } catch (err) {
    deps.log.warn({ rootfs, err: (err as Error).message }, 'unmount failed');
  }
}
