import type { HandlerConfig, HandlerFactory } from '../../shim-api/handler.js';
import { KataTaskHandler, type KataConfig } from './task-handler.js';

/**
 *   handler = "kata"
 *   [options]
 *   shim = "containerd-shim-kata-v2"                               # the delegate shim v2 binary
 *   config_path = "/opt/kata/share/defaults/kata-containers/configuration.toml"
 *   [options.timeouts_ms]     # our calls to the delegate, ms by method (DELEGATE_TIMEOUTS_MS; Wait: none)
 *   default = 30000
 *   Create = 180000
 */
function timeouts(v: unknown): Record<string, number> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) if (typeof n === 'number' && n > 0) out[k] = n;
  return out;
}

export function kataConfig(config: HandlerConfig): KataConfig {
  const o = config.options;
  return {
    name: config.name,
    binary: typeof o.shim === 'string' && o.shim ? o.shim : config.binary || 'containerd-shim-kata-v2',
    configPath: typeof o.config_path === 'string' && o.config_path ? o.config_path : undefined,
    timeoutsMs: timeouts(o.timeouts_ms),
  };
}

export const kataHandlerFactory: HandlerFactory = {
  type: 'kata',
  create: (config, ctx) => new KataTaskHandler(kataConfig(config), ctx),
  cleanup: (config, bundle, id, ctx) => KataTaskHandler.cleanup(kataConfig(config), ctx, bundle, id),
  features: (config, ctx) => KataTaskHandler.features(kataConfig(config), ctx),
};
