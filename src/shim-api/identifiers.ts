import { invalidArgument } from './errors.js';

// containerd's identifiers.Validate: alphanumeric runs joined by single '.', '_' or '-', at most 76 chars.
const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const MAX_LENGTH = 76;

/** Is `s` a containerd identifier (ids and namespaces alike)? The one id pattern of tsshim. */
export function isIdentifier(s: string): boolean {
  return typeof s === 'string' && s.length > 0 && s.length <= MAX_LENGTH && IDENTIFIER.test(s);
}

/** Throws InvalidArgument unless `id` is a containerd identifier (so never '/', '..' or NUL). */
export function validateId(id: string, what = 'id'): string {
  if (id.length === 0) throw invalidArgument(`${what} must not be empty`);
  if (id.length > MAX_LENGTH) throw invalidArgument(`${what} "${printable(id.slice(0, 20))}…" is longer than ${MAX_LENGTH} characters`);
  if (!IDENTIFIER.test(id)) {
    throw invalidArgument(
      `${what} "${printable(id)}" is not a valid identifier: use letters and digits joined by single '.', '_' or '-' (no '/', '..' or NUL)`,
    );
  }
  return id;
}

/** An exec id is optional ('' = the init process) but, when present, an identifier. */
export function validateExecId(execId: string): string {
  return execId === '' ? execId : validateId(execId, 'exec id');
}

function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
