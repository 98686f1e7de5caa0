/** DI tokens of the composition root (HandlerFactory's lives in shim-api/handler.ts). */
export const Log = Symbol.for('tsshim.Log');
export const Publisher = Symbol.for('tsshim.EventPublisher');
export const Os = Symbol.for('tsshim.OsServices');
export const Context = Symbol.for('tsshim.HandlerContext');
export const Resolver = Symbol.for('tsshim.HandlerResolver');
