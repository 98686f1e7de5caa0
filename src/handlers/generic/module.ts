import { ContainerModule } from 'inversify';
import { HandlerFactory, type HandlerConfig } from '../../shim-api/handler.js';
import { invalidArgument } from '../../shim-api/errors.js';
import { ociHandlerFactory } from '../oci-cli/factory.js';
import { ALL_OPERATIONS, RUNC_OPERATIONS, type Operation } from '../oci-cli/profile.js';
import { genericProfile } from './profile.js';

/**
 * Any runc-compatible binary by configuration:
 *   handler = "oci"; name = "crun"; binary = "/usr/bin/crun"
 *   [options] global_args = ["--cgroup-manager=cgroupfs"]; unsupported = ["checkpoint", "restore"]
 */
export function profileFromConfig(config: HandlerConfig) {
  if (!config.binary) throw invalidArgument(`oci handler "${config.name}": "binary" is required`);
  const unsupported = (config.options.unsupported ?? []) as unknown[];
  for (const op of unsupported) {
    if (!ALL_OPERATIONS.includes(op as Operation)) throw invalidArgument(`oci handler "${config.name}": unknown operation ${JSON.stringify(op)} in "unsupported"`);
  }
  return genericProfile({
    name: config.name,
    binary: config.binary,
    globalArgs: ((config.options.global_args ?? []) as unknown[]).map(String),
    supports: RUNC_OPERATIONS.filter((op) => !unsupported.includes(op)),
    root: config.root,
  });
}

export const genericHandlerModule = new ContainerModule(({ bind }) => {
  bind(HandlerFactory).toConstantValue(ociHandlerFactory('oci', profileFromConfig));
});
