/** Every handler module the shim ships. Adding a handler = one folder + one line here. */
import type { ContainerModule } from 'inversify';
import { runcHandlerModule } from '../handlers/runc/module.js';
import { gvisorHandlerModule } from '../handlers/gvisor/module.js';
import { youkiHandlerModule } from '../handlers/youki/module.js';
import { genericHandlerModule } from '../handlers/generic/module.js';
import { kataHandlerModule } from '../handlers/kata/module.js';

export const handlerModules: readonly ContainerModule[] = [runcHandlerModule, gvisorHandlerModule, youkiHandlerModule, kataHandlerModule, genericHandlerModule];
