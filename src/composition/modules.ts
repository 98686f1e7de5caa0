/** Every handler module the shim ships. Adding a handler = one folder + one line here. */
import type { ContainerModule } from 'inversify';
import { runcHandlerModule } from '../handlers/runc/module.js';

export const handlerModules: readonly ContainerModule[] = [runcHandlerModule];
