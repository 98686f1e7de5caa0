/**
 * ShimError: the one error type handlers, drivers and the task service throw.
 * `toStatus()` is the only place an error becomes a ttrpc status code.
 */
import { Code, TtrpcError } from 'ttrpc-ts';

export type ErrorKind =
  | 'InvalidArgument'
  | 'NotFound'
  | 'AlreadyExists'
  | 'FailedPrecondition'
  | 'PermissionDenied'
  | 'Unimplemented'
  | 'Unavailable'
  | 'DeadlineExceeded'
  | 'Canceled'
  | 'Internal'
  | 'Unknown';

const codeOf: Record<ErrorKind, Code> = {
  InvalidArgument: Code.InvalidArgument,
  NotFound: Code.NotFound,
  AlreadyExists: Code.AlreadyExists,
  FailedPrecondition: Code.FailedPrecondition,
  PermissionDenied: Code.PermissionDenied,
  Unimplemented: Code.Unimplemented,
  Unavailable: Code.Unavailable,
  DeadlineExceeded: Code.DeadlineExceeded,
  Canceled: Code.Canceled,
  Internal: Code.Internal,
  Unknown: Code.Unknown,
};

/**
 * Marks a ShimError whichever copy of this file made it: a handler package may have been loaded
 * with another copy of tsshim/handler than the shim's (a second install, a test importing
 * dist/src while the module imports the bundle), so the code is read from the brand, not instanceof.
 */
const BRAND = Symbol.for('tsshim.ShimError');

export class ShimError extends Error {
  override readonly name = 'ShimError';
  readonly [BRAND] = true;
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const invalidArgument = (msg: string) => new ShimError('InvalidArgument', msg);
export const notFound = (msg: string) => new ShimError('NotFound', msg);
export const alreadyExists = (msg: string) => new ShimError('AlreadyExists', msg);
export const failedPrecondition = (msg: string) => new ShimError('FailedPrecondition', msg);
export const permissionDenied = (msg: string) => new ShimError('PermissionDenied', msg);
export const unimplemented = (msg: string) => new ShimError('Unimplemented', msg);
export const unknownError = (msg: string, cause?: unknown) => new ShimError('Unknown', msg, { cause });

/** A ShimError from this or another copy of tsshim's errors.ts (a handler package's). */
export function isShimError(err: unknown): err is ShimError {
  if (err instanceof ShimError) return true;
  return err instanceof Error && (err as unknown as Record<symbol, unknown>)[BRAND] === true && Object.hasOwn(codeOf, (err as ShimError).kind);
}

/** Map any thrown value to a ttrpc status error. The only error-to-code map of the shim. */
export function toStatus(err: unknown): TtrpcError {
  if (err instanceof TtrpcError) return err;
  if (isShimError(err)) return new TtrpcError(codeOf[err.kind], err.message);
  if (err instanceof Error) return new TtrpcError(Code.Unknown, err.message);
  return new TtrpcError(Code.Unknown, String(err));
}
