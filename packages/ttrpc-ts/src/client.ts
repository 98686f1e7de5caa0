import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { Code } from './codes.js';
import { TtrpcError } from './errors.js';
import { decodeResponse, encodeRequest, metadataToPairs, type Metadata } from './wire.js';
import { DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, HEADER_LENGTH, MESSAGE_TYPE, sealFrame, type Frame } from './channel.js';

export interface CallOptions {
  /** Sent as timeout_nano; the call also rejects locally with DeadlineExceeded when it elapses. */
  timeoutMs?: number;
  /** Keys are lower-cased; a Map may carry several values per key. */
  metadata?: Metadata | Record<string, string>;
  /** Aborting rejects the call with Canceled (the server is not told; its answer is dropped). */
  signal?: AbortSignal;
}

export interface ClientOptions {
  /** Largest payload sent or accepted, in bytes (default 4 MiB). */
  maxMessageSize?: number;
}

const MAX_TIMER_MS = 0x7fffffff;
const MAX_STREAM_ID = 0xffffffff;

interface Pending {
  resolve: (payload: Uint8Array) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

function closedError(): TtrpcError {
  return new TtrpcError(Code.Unavailable, 'ttrpc: connection closed');
}

/**
 * ttrpc client over one connection: concurrent unary calls on odd stream ids
 * (1, 3, 5, ...), answers matched by stream id. Event: 'close' (once, with the
 * socket error if one caused it).
 */
export class Client extends EventEmitter {
  readonly #socket: net.Socket;
  readonly #decoder: FrameDecoder;
  readonly #maxMessageSize: number;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  #error: Error | undefined = undefined;
  /** Resolves once the connection is closed (never rejects). */
  readonly whenClosed: Promise<void>;

  /** Connect to a unix socket path. Connection failures reject with the Node error (ENOENT, ECONNREFUSED...). */
  static connect(path: string, opts: ClientOptions & { connectTimeoutMs?: number } = {}): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path });
      let timer: NodeJS.Timeout | undefined;
      const onError = (err: Error) => { clearTimeout(timer); socket.destroy(); reject(err); };
      socket.once('error', onError);
      if (opts.connectTimeoutMs !== undefined) {
        timer = setTimeout(() => {
          socket.off('error', onError);
          socket.destroy();
          reject(new TtrpcError(Code.DeadlineExceeded, `ttrpc: connect to ${path} timed out after ${opts.connectTimeoutMs} ms`));
        }, opts.connectTimeoutMs);
      }
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new Client(socket, opts));
      });
    });
  }

  constructor(socket: net.Socket, opts: ClientOptions = {}) {
    super();
    this.#socket = socket;
    this.#maxMessageSize = opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.#decoder = new FrameDecoder(this.#maxMessageSize);
    let markClosed!: () => void;
    this.whenClosed = new Promise((resolve) => { markClosed = resolve; });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => { this.#error ??= err; });
    socket.on('close', () => {
      this.#closed = true;
      this.#rejectAll();
      markClosed();
      this.emit('close', this.#error);
    });
    if (socket.destroyed) { this.#closed = true; markClosed(); }
  }

  get closed(): boolean { return this.#closed || this.#socket.destroyed; }

  /** Number of calls awaiting an answer. */
  get pendingCalls(): number { return this.#pending.size; }

  /** Close the connection; pending calls reject with Unavailable. */
  close(): void {
    this.#closed = true;
    this.#socket.destroy();
    this.#rejectAll();
  }

  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(closedError());
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(new TtrpcError(Code.Canceled, `ttrpc: ${service}/${method} canceled`));
    const timeoutMs = opts.timeoutMs;
    if (timeoutMs !== undefined && !(timeoutMs > 0)) {
      return Promise.reject(new TtrpcError(Code.DeadlineExceeded, `ttrpc: ${service}/${method}: deadline exceeded (timeout ${timeoutMs} ms)`));
    }
    let buf: Buffer;
    try {
      buf = encodeRequest({
        service,
        method,
        payload,
        timeoutNano: timeoutMs === undefined ? 0 : Math.round(timeoutMs * 1e6),
        metadata: opts.metadata ? metadataToPairs(opts.metadata) : undefined,
      }, HEADER_LENGTH);
    } catch (err) {
      return Promise.reject(new TtrpcError(Code.InvalidArgument, `ttrpc: cannot encode request: ${(err as Error).message}`));
    }
    const size = buf.length - HEADER_LENGTH;
    if (size > this.#maxMessageSize) {
      return Promise.reject(new TtrpcError(Code.ResourceExhausted,
        `ttrpc: ${service}/${method}: message length ${size} exceeds maximum message size of ${this.#maxMessageSize}`));
    }
    if (this.#nextId > MAX_STREAM_ID) return Promise.reject(new TtrpcError(Code.Unavailable, 'ttrpc: stream ids exhausted on this connection'));
    const id = this.#nextId;
    this.#nextId += 2;
    return new Promise<Uint8Array>((resolve, reject) => {
      const p: Pending = { resolve, reject, timer: undefined, signal, onAbort: undefined };
      if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
        p.timer = setTimeout(() => this.#settle(id, new TtrpcError(Code.DeadlineExceeded,
          `ttrpc: ${service}/${method}: deadline exceeded (timeout ${timeoutMs} ms)`)), timeoutMs);
      }
      if (signal) {
        p.onAbort = () => this.#settle(id, new TtrpcError(Code.Canceled, `ttrpc: ${service}/${method} canceled`));
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.#pending.set(id, p);
      this.#socket.write(sealFrame(buf, id, MESSAGE_TYPE.Request, 0));
    });
  }

  /** Remove a pending call and settle it with an error or a payload. */
  #settle(id: number, result: Error | Uint8Array): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
    if (result instanceof Error) p.reject(result); else p.resolve(result);
  }

  #rejectAll(): void {
    if (this.#pending.size === 0) return;
    const err = closedError();
    for (const id of [...this.#pending.keys()]) this.#settle(id, err);
  }

  #onData(chunk: Buffer): void {
    try {
      const frames = this.#decoder.push(chunk);
      for (let i = 0; i < frames.length; i++) this.#onFrame(frames[i]);
    } catch (err) {
      this.#error ??= err as Error;
      this.close();
    }
  }

  #onFrame(f: Frame): void {
    if (f.oversized !== undefined) {
      this.#settle(f.streamId, new TtrpcError(Code.ResourceExhausted,
        `ttrpc: response length ${f.oversized} exceeds maximum message size of ${this.#maxMessageSize}`));
      return;
    }
    if (f.type !== MESSAGE_TYPE.Response || !this.#pending.has(f.streamId)) return;
    let res;
    try {
      res = decodeResponse(f.payload);
    } catch (err) {
      this.#settle(f.streamId, new TtrpcError(Code.Internal, `ttrpc: cannot decode response: ${(err as Error).message}`));
      return;
    }
    const st = res.status;
    if (st !== undefined && st.code !== Code.OK) {
      this.#settle(f.streamId, new TtrpcError(st.code, st.message, st.details));
    } else {
      this.#settle(f.streamId, res.payload);
    }
  }
}
