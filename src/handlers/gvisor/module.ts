import { ContainerModule } from 'inversify';
import { HandlerFactory, type HandlerConfig } from '../../shim-api/handler.js';
import { invalidArgument } from '../../shim-api/errors.js';
import { ociHandlerFactory } from '../oci-cli/factory.js';
import { gvisorProfileWith, type GvisorOptions } from './profile.js';

/** `[options]` of a gvisor handler config -> runsc flags. */
export function gvisorOptions(config: HandlerConfig): GvisorOptions {
  const o = config.options;
  const platform = (o.platform ?? 'ptrace') as GvisorOptions['platform'];
  const network = (o.network ?? 'none') as GvisorOptions['network'];
  const extra = (o.runsc_config ?? {}) as Record<string, string | number | boolean>;
  try {
    const opts: GvisorOptions = { platform, network, debugLogDir: typeof o.debug_log_dir === 'string' ? o.debug_log_dir : undefined, extra };
    gvisorProfileWith(opts); // validate now, with a message that names the config
    return opts;
  } catch (err) {
    throw invalidArgument(`gvisor handler "${config.name}": ${(err as Error).message}`);
  }
}

/** gVisor through runsc's OCI CLI (ptrace/systrap/kvm platform, network none/sandbox/host). */
export const gvisorHandlerModule = new ContainerModule(({ bind }) => {
  bind(HandlerFactory).toConstantValue(ociHandlerFactory('gvisor', (config) => gvisorProfileWith(gvisorOptions(config))));
});
