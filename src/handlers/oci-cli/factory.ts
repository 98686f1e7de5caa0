/**
 * Builds a HandlerFactory for a runc-compatible backend from a profile: the whole
 * of what a runc/gvisor/youki/oci handler folder needs besides its profile.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { CleanupResult, HandlerConfig, HandlerContext, HandlerFactory, TaskHandler } from '../../shim-api/handler.js';
import { OciCliDriver, readPidFile, runtimeFeatures } from './driver.js';
import { anyOf, TYPE_URL, type Any } from '../../shim-api/pb.js';
import type { RuntimeProfile } from './profile.js';
import type { SpecEditor } from './spec-dialect.js';
import { OciTaskHandler } from './task-handler.js';
import { invalidArgument } from '../../shim-api/errors.js';
import { readSpec } from '../../shim-api/spec.js';
import { removeCgroupDirs } from './cgroups/remove.js';
import { observedRunner } from './runner.js';

/** `[options] timeout_ms`: the bound on each backend command but `wait` (a hung backend ends as DeadlineExceeded); 0 = none. */
function timeoutOption(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalidArgument(`handler config [options] timeout_ms must be a whole number of milliseconds >= 0, got ${JSON.stringify(v)}`);
  return v;
}

/** After a forced delete: the files the profile says a killed backend command left for `id` (ADR 0018). */
async function removeStrayFiles(profile: RuntimeProfile, root: string, id: string, ctx: HandlerContext): Promise<void> {
  if (!profile.strayFiles) return;
  let names: string[];
  try {
    names = await fsp.readdir(root);
  } catch {
    return; // no state root: nothing left
  }
  for (const n of profile.strayFiles(id, names)) {
    await fsp.rm(path.join(root, n), { force: true }).then(
      () => ctx.log.info({ id, file: path.join(root, n) }, 'removed a file a killed backend command left'),
      (err: Error) => ctx.log.warn({ id, file: path.join(root, n), err: err.message }, 'cannot remove a file a killed backend command left'),
    );
  }
}

export function ociHandlerFactory(type: string, profileFor: (config: HandlerConfig) => RuntimeProfile, specEditor?: (config: HandlerConfig) => SpecEditor | undefined): HandlerFactory {
  const driverOverrides = (config: HandlerConfig) => ({
    ...(config.binary ? { binary: config.binary } : {}),
    ...(config.root ? { root: config.root } : {}),
    ...(Array.isArray(config.options.extra_args) ? { extraGlobalArgs: (config.options.extra_args as unknown[]).map(String) } : {}),
    ...(config.options.systemd_cgroup === true ? { systemdCgroup: true } : {}),
    ...(typeof config.options.criu_path === 'string' ? { criuPath: config.options.criu_path } : {}),
    ...(config.options.timeout_ms !== undefined ? { timeoutMs: timeoutOption(config.options.timeout_ms) } : {}),
  });
  return {
    type,
    create(config: HandlerConfig, ctx: HandlerContext): TaskHandler {
      const editSpec = specEditor?.(config);
      return new OciTaskHandler({
        name: config.name,
        profile: profileFor(config),
        driver: driverOverrides(config),
        namespace: ctx.namespace,
        publisher: ctx.publisher,
        log: ctx.log.child({ handler: config.name }),
        run: observedRunner(ctx.os.run, config.name),
        exits: ctx.os.exits,
        spawn: ctx.os.spawn,
        mountAll: ctx.os.mountAll,
        unmountAll: ctx.os.unmountAll,
        ...(ctx.custody ? { custody: ctx.custody } : {}),
        ...(editSpec ? { editSpec } : {}),
      });
    },
    async cleanup(config: HandlerConfig, bundle: string, id: string, ctx: HandlerContext): Promise<CleanupResult> {
      const driver = new OciCliDriver(
        { ...driverOverrides(config), profile: profileFor(config), namespace: ctx.namespace, bundle },
        ctx.os.run,
      );
      await driver.delete(id, { force: true }).catch((err: Error) => ctx.log.warn({ id, err: err.message }, 'runtime delete failed'));
      await removeStrayFiles(profileFor(config), driver.root, id, ctx);
      await ctx.os.unmountAll(path.join(bundle, 'rootfs'));
      await forgetUnfinishedCreate(driver.root, id, bundle, ctx);
      const pid = await readPidFile(path.join(bundle, 'init.pid')).catch(() => 0);
      // runc-v2 answers 137: the task is gone, killed as far as anyone can tell.
      return { pid, exitStatus: 137 };
    },
    /**
     * `-info`: the backend's own `features` document, as runc-v2 reports runc's. A backend that
     * cannot say (no `features` in its profile, or the command fails) reports none: containerd
     * then turns the features it gates off for this handler, which is the truthful outcome.
     */
    async features(config: HandlerConfig, ctx: HandlerContext): Promise<Any | undefined> {
      const profile = profileFor(config);
      try {
        const doc = await runtimeFeatures(profile, config.binary, ctx.os.run);
        return doc ? anyOf(TYPE_URL.OciFeatures, Buffer.from(JSON.stringify(doc))) : undefined;
      } catch (err) {
        ctx.log.warn({ handler: config.name, err: (err as Error).message }, 'runtime features unavailable');
        return undefined;
      }
    },
  };
}

/**
 * A runtime killed mid-create (its shim or node worker died, or a timeout) leaves what `delete
 * --force` cannot find: a state directory without state.json, and the container's cgroup. Both
 * are removed here, after `delete --force`: the directory only without a state file (runc removes
 * it itself; youki and crun do not), the cgroup only as an empty leaf (rmdir).
 */
async function forgetUnfinishedCreate(root: string, id: string, bundle: string, ctx: HandlerContext): Promise<void> {
  const dir = path.join(root, id);
  try {
    await fsp.access(path.join(dir, 'state.json'));
    return; // the runtime's own state: never ours to remove
  } catch {
    /* no state file */
  }
  try {
    await fsp.rm(dir, { recursive: true });
    ctx.log.info({ id, dir }, 'removed the state directory of a create the runtime did not finish');
  } catch {
    /* none */
  }
  const cgroupsPath = await readSpec(bundle).then((s) => s.linux?.cgroupsPath, () => undefined);
  const cg = await removeCgroupDirs(cgroupsPath).catch(() => ({ removed: [] as string[] }));
  if (cg.removed.length > 0) ctx.log.info({ id, cgroups: cg.removed.length }, 'removed the cgroup of a create the runtime did not finish');
}
