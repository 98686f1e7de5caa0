import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { Code } from './codes.js';
import { TtrpcError } from './errors.js';
import { decodeRequest, encodeResponse, pairsToMetadata, type Metadata, type ResponseEnvelope } from './wire.js';
import { DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, HEADER_LENGTH, MESSAGE_TYPE, sealFrame, type Frame } from './channel.js';

export interface RequestContext {
  readonly service: string;
  readonly method: string;
  /** Request metadata, keys lower-cased; empty when the request carried none. */
  readonly metadata: Metadata;
  /** Absolute deadline in ms since the epoch (Date.now() clock), when the caller sent a timeout. */
  readonly deadline?: number;
  /** Aborted at the deadline, and when the connection closes. */
  readonly signal: AbortSignal;
  readonly socket: net.Socket;
}

export type UnaryHandler = (payload: Uint8Array, ctx: RequestContext) => Promise<Uint8Array | undefined>;

export interface ServerOptions {
  /** Largest payload accepted or sent, in bytes (default 4 MiB). */
  maxMessageSize?: number;
  /** Called once per accepted connection before any frame is read; throw/reject to refuse (connection closed). */
  authorize?: (socket: net.Socket) => void | Promise<void>;
  /** Diagnostics for errors that do not reach a caller (where: 'listen', 'authorize', 'socket', 'connection'). */
  onError?: (err: unknown, where: string) => void;
  /**
   * Requests of one connection being handled at once (default 4096). At the limit the server
   * stops reading that connection until one is answered. Long calls (Wait) count, so keep it
   * well above the number of processes a client may wait for.
   */
  maxInFlight?: number;
  /** Request payload bytes held by one connection's in-flight calls before reading pauses (default 64 MiB). */
  maxInFlightBytes?: number;
}

/** Defaults of the per-connection limits (see ServerOptions). */
export const SERVER_LIMITS = { maxInFlight: 4096, maxInFlightBytes: 64 << 20 } as const;

/** Longest piece of request data (service or method name) echoed in an error message. */
export const MAX_ECHO = 128;

/** `s` JSON-quoted, cut to MAX_ECHO characters with the original length noted. */
export function echo(s: string): string {
  if (s.length <= MAX_ECHO) return JSON.stringify(s);
  return `${JSON.stringify(s.slice(0, MAX_ECHO))}... (${s.length} characters)`;
}

/** Largest delay setTimeout accepts; longer deadlines are reported but not timed. */
const MAX_TIMER_MS = 0x7fffffff;
const EMPTY_RESPONSE: ResponseEnvelope = { payload: new Uint8Array(0) };

function isDisconnectError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}

/** One in-flight request; doubles as the handler's RequestContext. */
class Call implements RequestContext {
  readonly metadata: Metadata;
  deadline?: number;
  /** Request payload size, counted against the connection's maxInFlightBytes. */
  bytes = 0;
  done = false;
  timer: NodeJS.Timeout | undefined = undefined;
  #ctl: AbortController | undefined = undefined;
  #abortReason: unknown = undefined;

  constructor(
    readonly conn: Conn,
    readonly streamId: number,
    readonly service: string,
    readonly method: string,
    metadata: Metadata,
  ) {
    this.metadata = metadata;
  }

  get socket(): net.Socket { return this.conn.socket; }

  /** Created on first use: most handlers never look at it. */
  get signal(): AbortSignal {
    if (this.#ctl === undefined) {
      this.#ctl = new AbortController();
      if (this.#abortReason !== undefined) this.#ctl.abort(this.#abortReason);
    }
    return this.#ctl.signal;
  }

  abort(reason: unknown): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#ctl?.abort(reason);
  }
}

function expire(call: Call): void { call.conn.expire(call); }

interface ConnLimits { maxMessageSize: number; maxInFlight: number; maxInFlightBytes: number }

/**
 * Server side of one connection. Flow control: reading pauses while the peer does not read our
 * answers (write() returned false, until 'drain'), while maxInFlight calls are being handled, or
 * while their request payloads hold more than maxInFlightBytes; it resumes when all clear. With
 * reading paused, the kernel's socket buffer fills and the peer's writes block: memory per
 * connection stays bounded by the limits plus one partial frame (maxMessageSize).
 */
class Conn {
  readonly decoder: FrameDecoder;
  readonly calls = new Set<Call>();
  readonly maxMessageSize: number;
  lastStreamId = 0;
  draining = false;
  inFlightBytes = 0;
  writeBlocked = false;
  paused = false;

  constructor(
    readonly socket: net.Socket,
    readonly services: Map<string, Map<string, UnaryHandler>>,
    readonly limits: ConnLimits,
    readonly report: (err: unknown, where: string) => void,
    onClose: (conn: Conn) => void,
  ) {
    this.maxMessageSize = limits.maxMessageSize;
    this.decoder = new FrameDecoder(limits.maxMessageSize);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => { this.writeBlocked = false; this.flow(); });
    socket.on('error', (err) => { if (!isDisconnectError(err)) report(err, 'socket'); });
    socket.on('close', () => {
      const reason = new TtrpcError(Code.Canceled, 'ttrpc: connection closed');
      for (const call of this.calls) {
        call.done = true;
        if (call.timer) clearTimeout(call.timer);
        call.abort(reason);
      }
      this.calls.clear();
      this.backlog = [];
      onClose(this);
    });
  }

  /** Pause or resume reading according to the flow-control conditions. */
  flow(): void {
    const stop = this.writeBlocked || this.calls.size >= this.limits.maxInFlight || this.inFlightBytes > this.limits.maxInFlightBytes;
    if (stop === this.paused || this.socket.destroyed) return;
    this.paused = stop;
    if (stop) { this.socket.pause(); return; }
    if (this.backlog.length > 0) this.pump();
    if (!this.paused) this.socket.resume();
  }

  /** Frames decoded but not yet dispatched because reading paused mid-chunk (at most one chunk's worth). */
  backlog: Frame[] = [];
  #pumping = false;

  onData(chunk: Buffer): void {
    try {
      const frames = this.decoder.push(chunk);
      if (frames.length === 0) return;
      if (this.backlog.length === 0) this.backlog = frames; else this.backlog.push(...frames);
      this.pump();
    } catch (err) {
      this.report(err, 'connection');
      this.socket.destroy();
    }
  }

  /** Dispatch queued frames in order until the backlog is empty or flow control pauses. */
  pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      let i = 0;
      const q = this.backlog;
      while (i < q.length && !this.paused && !this.socket.destroyed) this.onFrame(q[i++]!);
      this.backlog = i === q.length ? [] : q.slice(i);
    } finally {
      this.#pumping = false;
    }
  }

  onFrame(f: Frame): void {
    const id = f.streamId;
    if (f.oversized !== undefined) {
      this.sendStatus(id, Code.ResourceExhausted, `message length ${f.oversized} exceed maximum message size of ${this.maxMessageSize}`);
      return;
    }
    if (f.type !== MESSAGE_TYPE.Request) return; // ignored for forward compatibility
    if (id % 2 !== 1) {
      this.sendStatus(id, Code.InvalidArgument, 'StreamID must be odd for client initiated streams');
      return;
    }
    if (id <= this.lastStreamId) {
      this.sendStatus(id, Code.InvalidArgument, 'StreamID cannot be re-used and must increment');
      return;
    }
    this.lastStreamId = id;
    let req;
    try {
      req = decodeRequest(f.payload);
    } catch (err) {
      this.sendStatus(id, Code.InvalidArgument, `unmarshal request error: ${(err as Error).message}`);
      return;
    }
    if (f.flags !== 0) {
      this.sendStatus(id, Code.Unimplemented, 'streaming not supported');
      return;
    }
    const methods = this.services.get(req.service);
    const handler = methods?.get(req.method);
    if (handler === undefined) {
      this.sendStatus(id, Code.Unimplemented, methods === undefined
        ? `ttrpc: unknown service ${echo(req.service)} (method ${echo(req.method)})`
        : `ttrpc: unknown method ${echo(req.method)} of service ${echo(req.service)}`);
      return;
    }
    const md: Metadata = req.metadata.length ? pairsToMetadata(req.metadata) : new Map();
    const call = new Call(this, id, req.service, req.method, md);
    if (req.timeoutNano !== 0) {
      const ms = req.timeoutNano / 1e6;
      call.deadline = Date.now() + ms;
      if (ms <= 0) {
        this.sendStatus(id, Code.DeadlineExceeded, 'context deadline exceeded');
        return;
      }
      if (ms <= MAX_TIMER_MS) {
        call.timer = setTimeout(expire, Math.ceil(ms), call);
        call.timer.unref();
      }
    }
    call.bytes = f.payload.length;
    this.calls.add(call);
    this.inFlightBytes += call.bytes;
    this.flow();
    let result: Promise<Uint8Array | undefined>;
    try {
      result = handler(req.payload, call);
    } catch (err) {
      this.fail(call, err);
      return;
    }
    Promise.resolve(result).then((res) => this.reply(call, res), (err) => this.fail(call, err));
  }

  /** Marks the call answered; false when it already was (deadline, connection closed). */
  finish(call: Call): boolean {
    if (call.done) return false;
    call.done = true;
    if (call.timer) clearTimeout(call.timer);
    this.calls.delete(call);
    this.inFlightBytes -= call.bytes;
    this.flow();
    return true;
  }

  reply(call: Call, res: Uint8Array | undefined): void {
    if (res !== undefined && !(res instanceof Uint8Array)) {
      this.fail(call, new TtrpcError(Code.Internal, `ttrpc: handler for ${call.service}/${call.method} returned a non-Uint8Array`));
      return;
    }
    if (!this.finish(call)) return;
    this.send(call.streamId, res === undefined || res.length === 0 ? EMPTY_RESPONSE : { payload: res });
    this.afterCall();
  }

  fail(call: Call, err: unknown): void {
    if (!this.finish(call)) return;
    if (err instanceof TtrpcError) {
      this.send(call.streamId, { status: { code: err.code, message: err.message, details: err.details.length ? [...err.details] : undefined }, payload: EMPTY_RESPONSE.payload });
    } else {
      this.sendStatus(call.streamId, Code.Unknown, err instanceof Error ? err.message : String(err));
    }
    this.afterCall();
  }

  expire(call: Call): void {
    if (!this.finish(call)) return;
    call.abort(new TtrpcError(Code.DeadlineExceeded, 'context deadline exceeded'));
    this.sendStatus(call.streamId, Code.DeadlineExceeded, 'context deadline exceeded');
    this.afterCall();
  }

  afterCall(): void {
    if (this.draining && this.calls.size === 0) this.end();
  }

  sendStatus(streamId: number, code: Code, message: string): void {
    this.send(streamId, { status: { code, message }, payload: EMPTY_RESPONSE.payload });
  }

  send(streamId: number, res: ResponseEnvelope): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    let buf = encodeResponse(res, HEADER_LENGTH);
    if (buf.length - HEADER_LENGTH > this.maxMessageSize) {
      buf = encodeResponse({
        status: { code: Code.ResourceExhausted, message: `ttrpc: response of ${buf.length - HEADER_LENGTH} bytes exceeds maximum message size of ${this.maxMessageSize}` },
        payload: EMPTY_RESPONSE.payload,
      }, HEADER_LENGTH);
    }
    if (!this.socket.write(sealFrame(buf, streamId, MESSAGE_TYPE.Response, 0)) && !this.writeBlocked) {
      // The peer is not reading our answers: stop reading its requests until it catches up.
      this.writeBlocked = true;
      this.flow();
    }
  }

  /** Graceful close: flush what was written, then close. */
  end(): void {
    if (this.socket.destroyed) return;
    this.socket.end(() => this.socket.destroy());
  }
}

/**
 * ttrpc server (unary calls only). Events: 'connection' (socket) once a
 * connection is authorized and served, 'disconnect' (socket) when it closes.
 */
export class Server extends EventEmitter {
  readonly #services = new Map<string, Map<string, UnaryHandler>>();
  readonly #listeners = new Set<net.Server>();
  readonly #conns = new Set<Conn>();
  readonly #authorizing = new Set<net.Socket>();
  readonly #limits: ConnLimits;
  readonly #authorize: ServerOptions['authorize'];
  readonly #onError: ServerOptions['onError'];
  #closing = false;
  #emptyWaiters: Array<() => void> = [];

  constructor(opts: ServerOptions = {}) {
    super();
    this.#limits = {
      maxMessageSize: opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      maxInFlight: Math.max(1, opts.maxInFlight ?? SERVER_LIMITS.maxInFlight),
      maxInFlightBytes: opts.maxInFlightBytes ?? SERVER_LIMITS.maxInFlightBytes,
    };
    this.#authorize = opts.authorize;
    this.#onError = opts.onError;
  }

  /** Register a service's methods; a service name may be registered once. */
  register(service: string, methods: Record<string, UnaryHandler>): void {
    if (this.#services.has(service)) throw new Error(`ttrpc: duplicate service ${service} registered`);
    this.#services.set(service, new Map(Object.entries(methods)));
  }

  get connectionCount(): number { return this.#conns.size; }

  /**
   * Listen on a unix socket path, or on an inherited listening socket fd (a server may listen on
   * several). Resolves to a function that stops this one listener (connections stay).
   */
  listen(target: string | { fd: number }): Promise<() => Promise<void>> {
    if (this.#closing) return Promise.reject(new Error('ttrpc: server closed'));
    return new Promise((resolve, reject) => {
      const srv = net.createServer((socket) => this.handle(socket));
      const onListenError = (err: Error) => reject(err);
      srv.once('error', onListenError);
      srv.listen(typeof target === 'string' ? { path: target } : { fd: target.fd }, () => {
        srv.off('error', onListenError);
        srv.on('error', (err) => this.#report(err, 'listen'));
        if (this.#closing) { srv.close(); reject(new Error('ttrpc: server closed')); return; }
        this.#listeners.add(srv);
        resolve(() => {
          if (!this.#listeners.delete(srv)) return Promise.resolve();
          return new Promise<void>((done) => srv.close(() => done()));
        });
      });
    });
  }

  /** Serve an already-accepted connection (runs `authorize` first when configured). */
  handle(socket: net.Socket): void {
    if (this.#closing) { socket.destroy(); return; }
    const authorize = this.#authorize;
    if (authorize === undefined) { this.#accept(socket); return; }
    this.#authorizing.add(socket);
    const onError = (err: Error) => { if (!isDisconnectError(err)) this.#report(err, 'socket'); };
    socket.on('error', onError);
    new Promise<void>((resolve) => resolve(authorize(socket))).then(() => {
      this.#authorizing.delete(socket);
      socket.off('error', onError);
      if (this.#closing || socket.destroyed) { socket.destroy(); return; }
      this.#accept(socket);
    }, (err: unknown) => {
      this.#authorizing.delete(socket);
      this.#report(err, 'authorize');
      socket.destroy();
    });
  }

  #accept(socket: net.Socket): void {
    const conn = new Conn(socket, this.#services, this.#limits, (e, w) => this.#report(e, w), (c) => {
      this.#conns.delete(c);
      this.emit('disconnect', socket);
      if (this.#conns.size === 0) {
        const waiters = this.#emptyWaiters;
        this.#emptyWaiters = [];
        for (const w of waiters) w();
      }
    });
    this.#conns.add(conn);
    this.emit('connection', socket);
  }

  #report(err: unknown, where: string): void {
    try { this.#onError?.(err, where); } catch { /* a failing reporter must not break serving */ }
  }

  #closeListeners(): Promise<void> {
    const all = [...this.#listeners].map((srv) => new Promise<void>((resolve) => srv.close(() => resolve())));
    this.#listeners.clear();
    return Promise.all(all).then(() => undefined);
  }

  #whenEmpty(): Promise<void> {
    if (this.#conns.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#emptyWaiters.push(resolve));
  }

  /** Stop listening and destroy every connection (in-flight calls are dropped, their signals aborted). */
  async close(): Promise<void> {
    this.#closing = true;
    for (const s of this.#authorizing) s.destroy();
    this.#authorizing.clear();
    const listeners = this.#closeListeners();
    for (const c of this.#conns) c.socket.destroy();
    await Promise.all([listeners, this.#whenEmpty()]);
  }

  /**
   * Stop listening; close idle connections now and busy ones as soon as their
   * in-flight calls are answered (they keep being served meanwhile); after
   * graceMs, close whatever is left.
   */
  async shutdown(graceMs = 10_000): Promise<void> {
    this.#closing = true;
    for (const s of this.#authorizing) s.destroy();
    this.#authorizing.clear();
    const listeners = this.#closeListeners();
    for (const c of this.#conns) {
      c.draining = true;
      if (c.calls.size === 0) c.end();
    }
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); });
    await Promise.race([this.#whenEmpty(), grace]);
    clearTimeout(timer);
    await this.close();
    await listeners;
  }
}
