import { Code, codeName } from './codes.js';
import type { AnyEnvelope } from './wire.js';

/**
 * An RPC failure with a status code. Thrown by handlers to choose the code sent
 * to the peer; rejected by Client.call for every failure (remote or local).
 */
export class TtrpcError extends Error {
  readonly code: Code;
  /** google.protobuf.Any details of the status, when the peer sent any. */
  readonly details: readonly AnyEnvelope[];

  constructor(code: Code, message: string, details: readonly AnyEnvelope[] = []) {
    super(message);
    this.name = 'TtrpcError';
    this.code = code;
    this.details = details;
  }

  /** "NotFound: process already finished" style summary. */
  override toString(): string {
    return `${this.name} ${codeName(this.code)}: ${this.message}`;
  }
}
