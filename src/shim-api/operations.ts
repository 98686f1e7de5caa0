/**
 * The capability vocabulary: the operations a handler can declare it supports. Handler
 * definitions, profiles, docs, `tsshim doctor` and the conformance matrix all speak it.
 * Named after the OCI runtime CLI subcommands (runc's set, plus runsc's `wait`).
 */
export type Operation =
  | 'create'
  | 'start'
  | 'exec'
  | 'kill'
  | 'delete'
  | 'pause'
  | 'resume'
  | 'ps'
  | 'update'
  | 'checkpoint'
  | 'restore'
  | 'features'
  | 'events'
  | 'state'
  | 'wait';

export const ALL_OPERATIONS: readonly Operation[] = Object.freeze([
  'create',
  'start',
  'exec',
  'kill',
  'delete',
  'pause',
  'resume',
  'ps',
  'update',
  'checkpoint',
  'restore',
  'features',
  'events',
  'state',
  'wait',
] as const);

/** runc's command set: every operation but `wait` (runsc's). */
export const RUNC_OPERATIONS: readonly Operation[] = Object.freeze(ALL_OPERATIONS.filter((op) => op !== 'wait'));

/** runc's command set less `excluded`. */
export function allOperationsExcept(...excluded: Operation[]): Operation[] {
  return RUNC_OPERATIONS.filter((op) => !excluded.includes(op));
}

export function isOperation(v: unknown): v is Operation {
  return ALL_OPERATIONS.includes(v as Operation);
}
