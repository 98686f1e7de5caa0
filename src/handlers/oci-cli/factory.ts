/**
 * Builds a HandlerFactory for a runc-compatible backend from a profile: the whole
 * of what a runc/gvisor/youki/oci handler folder needs besides its profile.
 */
import path from 'node:path';
import type { CleanupResult, HandlerConfig, HandlerContext, HandlerFactory, TaskHandler } from '../../shim-api/handler.js';
import { OciCliDriver, readPidFile } from './driver.js';
import type { RuntimeProfile } from './profile.js';
import { OciTaskHandler } from './task-handler.js';

export function ociHandlerFactory(type: string, profileFor: (config: HandlerConfig) => RuntimeProfile): HandlerFactory {
  const driverOverrides = (config: HandlerConfig) => ({
    ...(config.binary ? { binary: config.binary } : {}),
    ...(config.root ? { root: config.root } : {}),
    ...(Array.isArray(config.options.extra_args) ? { extraGlobalArgs: (config.options.extra_args as unknown[]).map(String) } : {}),
    ...(config.options.systemd_cgroup === true ? { systemdCgroup: true } : {}),
    ...(typeof config.options.criu_path === 'string' ? { criuPath: config.options.criu_path } : {}),
  });
  return {
    type,
    create(config: HandlerConfig, ctx: HandlerContext): TaskHandler {
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
  };
}
