import type { HandlerConfig, HandlerFactory } from '../../shim-api/handler.js';
import { KataTaskHandler, type KataConfig } from './task-handler.js';

/**
 *   handler = "kata"
 *   [options]
 *   shim = "containerd-shim-kata-v2"                               # the delegate shim v2 binary
 *   config_path = "/opt/kata/share/defaults/kata-containers/configuration.toml"
 */
export function kataConfig(config: HandlerConfig): KataConfig {
  const o = config.options;
  return {
    name: config.name,
    binary: typeof o.shim === 'string' && o.shim ? o.shim : config.binary || 'containerd-shim-kata-v2',
    configPath: typeof o.config_path === 'string' && o.config_path ? o.config_path : undefined,
  };
}

export const kataHandlerFactory: HandlerFactory = {
  type: 'kata',
  create: (config, ctx) => new KataTaskHandler(kataConfig(config), ctx),
  cleanup: (config, bundle, id, ctx) => KataTaskHandler.cleanup(kataConfig(config), ctx, bundle, id),
};
