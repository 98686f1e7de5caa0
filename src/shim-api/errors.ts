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

export class ShimError extends Error {
  override readonly name = 'ShimError';
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

/** Map any thrown value to a ttrpc status error. The only error-to-code map of the shim. */
export function toStatus(err: unknown): TtrpcError {
  if (err instanceof TtrpcError) return err;
  if (err instanceof ShimError) return new TtrpcError(codeOf[err.kind], err.message);
  if (err instanceof Error) return new TtrpcError(Code.Unknown, err.message);
  return new TtrpcError(Code.Unknown, String(err));
}
