/**
 * Builds a HandlerFactory for a runc-compatible backend from a profile: the whole
 * of what a runc/gvisor/youki/oci handler folder needs besides its profile.
 */
import path from 'node:path';
import type { CleanupResult, HandlerConfig, HandlerContext, HandlerFactory, TaskHandler } from '../../shim-api/handler.js';
import { OciCliDriver, readPidFile, runtimeFeatures } from './driver.js';
import { anyOf, TYPE_URL, type Any } from '../../shim-api/pb.js';
import type { RuntimeProfile } from './profile.js';
import type { SpecEditor } from './spec-dialect.js';
import { OciTaskHandler } from './task-handler.js';
import { invalidArgument } from '../../shim-api/errors.js';

/** `[options] timeout_ms`: the bound on each backend command but `wait` (a hung backend ends as DeadlineExceeded); 0 = none. */
function timeoutOption(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalidArgument(`handler config [options] timeout_ms must be a whole number of milliseconds >= 0, got ${JSON.stringify(v)}`);
  return v;
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
        run: ctx.os.run,
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
      await ctx.os.unmountAll(path.join(bundle, 'rootfs'));
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
