/** DI tokens of the composition root. */
export const Log = Symbol.for('tsshim.Log');
export const Publisher = Symbol.for('tsshim.EventPublisher');
export const Os = Symbol.for('tsshim.OsServices');
export const Context = Symbol.for('tsshim.HandlerContext');
export const Resolver = Symbol.for('tsshim.HandlerResolver');
export const Definitions = Symbol.for('tsshim.HandlerDefinitions');
