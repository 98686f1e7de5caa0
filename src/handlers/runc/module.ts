import { ContainerModule } from 'inversify';
import { HandlerFactory } from '../../shim-api/handler.js';
import { ociHandlerFactory } from '../oci-cli/factory.js';
import { runcProfile } from './profile.js';

/** runc: the reference backend, and tsshim's default handler. */
export const runcHandlerModule = new ContainerModule(({ bind }) => {
  bind(HandlerFactory).toConstantValue(ociHandlerFactory('runc', () => runcProfile));
});
