/**
 * The ttrpc request being served, for code deep below the task service (e.g. a handler that
 * forwards the call to another shim): its abort signal (deadline passed, caller's connection
 * closed) and deadline. Set by TaskService around each handler call (AsyncLocalStorage), so
 * handler signatures need not carry it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestScope {
  /** Aborted when the caller's deadline passes or its connection closes. */
  readonly signal: AbortSignal;
  /** Absolute deadline (ms since epoch), when the caller sent a timeout. */
  readonly deadline?: number;
  /** The request's span when traced (ADR 0025): backend commands run under it are its children. */
  readonly span?: import('../observe/tracing.js').Span;
}

const als = new AsyncLocalStorage<RequestScope>();

export function runInRequest<T>(scope: RequestScope, fn: () => T): T {
  return als.run(scope, fn);
}

export function currentRequest(): RequestScope | undefined {
  return als.getStore();
}

/**
 * Call options for a forwarded call: the smaller of `timeoutMs` and what is left of the current
 * request's deadline, and its signal. `timeoutMs` undefined: no timeout of our own.
 */
export function forwardOptions(timeoutMs: number | undefined): { timeoutMs?: number; signal?: AbortSignal } {
  const scope = currentRequest();
  let t = timeoutMs;
  if (scope?.deadline !== undefined) {
    const left = Math.max(1, scope.deadline - Date.now());
    t = t === undefined ? left : Math.min(t, left);
  }
  return { timeoutMs: t, signal: scope?.signal };
}
