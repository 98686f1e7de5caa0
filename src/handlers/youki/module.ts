import { ContainerModule } from 'inversify';
import { HandlerFactory } from '../../shim-api/handler.js';
import { ociHandlerFactory } from '../oci-cli/factory.js';
import { youkiProfile } from './profile.js';

/** youki: runc-compatible, with the differences its profile declares. */
export const youkiHandlerModule = new ContainerModule(({ bind }) => {
  bind(HandlerFactory).toConstantValue(ociHandlerFactory('youki', () => youkiProfile));
});
