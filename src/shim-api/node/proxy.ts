/**
 * One containerd connection as node mode's supervisor holds it (ADR 0018): containerd talks to the
 * supervisor, which outlives workers; each worker gets its own socketpair for the connection and
 * serves it with the ordinary ttrpc server. The supervisor forwards whole frames only, so a worker
 * that dies mid-frame never leaves half a message on containerd's stream, and it remembers the
 * requests in flight: when a worker dies, idempotent ones go to the next worker again, the others
 * are answered Unavailable (their effect, if any, is in the task's record).
 */
import net from 'node:net';
import { Code, FrameDecoder, MESSAGE_TYPE, encodeFrame, DEFAULT_MAX_MESSAGE_SIZE, HEADER_LENGTH, decodeRequest, encodeResponse, type Frame } from 'ttrpc-ts';
import { socketPair, closeFd } from '../../sys/libc.js';

/** Methods a new worker may serve again: asking twice changes nothing. */
const REPLAYABLE = new Set(['Wait', 'State', 'Pids', 'Stats', 'Connect', 'ResizePty', 'CloseIO', 'Shutdown']);
/** Requests of one connection waiting for a worker, at most (containerd sends a few at a time). */
export const MAX_PENDING = 1024;
/** Bytes of those requests, at most: a connection cannot park more than this in the supervisor. */
export const MAX_PENDING_BYTES = 16 << 20;

interface Pending {
  method: string;
  frame: Buffer;
}

export class ProxyConn {
  private readonly fromClient = new FrameDecoder(DEFAULT_MAX_MESSAGE_SIZE);
  private fromWorker = new FrameDecoder(Number.MAX_SAFE_INTEGER);
  private readonly pending = new Map<number, Pending>();
  private pendingBytes = 0;
  private worker?: net.Socket;
  private closed = false;
  private clientPaused = false;
  private workerPaused = false;

  constructor(
    readonly id: number,
    readonly namespace: string,
    private readonly client: net.Socket,
    private readonly onClose: (c: ProxyConn) => void,
    /** a request was answered (by the worker, or Unavailable after its death) */
    private readonly onSettle: (key: string) => void = () => undefined,
  ) {
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    client.on('error', () => undefined);
    client.on('close', () => this.close());
  }

  /** A socketpair for a (new) worker: ours is wired here; the other end goes to the worker. */
  attachWorker(): number {
    const [mine, theirs] = socketPair('stream');
    let s: net.Socket;
    try {
      s = new net.Socket({ fd: mine, readable: true, writable: true });
    } catch (err) {
      closeFd(mine);
      closeFd(theirs);
      throw err;
    }
    this.worker = s;
    this.workerPaused = false;
    if (this.clientPaused) {
      this.clientPaused = false;
      this.client.resume();
    }
    this.fromWorker = new FrameDecoder(Number.MAX_SAFE_INTEGER);
    s.on('data', (chunk: Buffer) => this.onWorkerData(chunk));
    s.on('error', () => undefined);
    // Its end closing is not yet the answer: the supervisor calls workerDied() once what the
    // dead worker left running is gone.
    s.on('close', () => {
      if (this.worker === s) this.worker = undefined;
    });
    // Replay what the last worker left unanswered and may be asked again.
    for (const p of this.pending.values()) s.write(p.frame);
    return theirs;
  }

  private onClientData(chunk: Buffer): void {
    for (const f of this.fromClient.push(chunk)) this.fromClientFrame(f);
  }

  private fromClientFrame(f: Frame): void {
    if (f.oversized !== undefined) {
      this.answer(f.streamId, Code.ResourceExhausted, `message length ${f.oversized} exceed maximum message size of ${DEFAULT_MAX_MESSAGE_SIZE}`);
      return;
    }
    const frame = encodeFrame(f.streamId, f.type, f.flags, f.payload);
    if (f.type === MESSAGE_TYPE.Request) {
      if (this.pending.size >= MAX_PENDING || this.pendingBytes + frame.length > MAX_PENDING_BYTES) {
        this.answer(f.streamId, Code.ResourceExhausted, `tsshim: more than ${MAX_PENDING} requests or ${MAX_PENDING_BYTES >> 20} MiB in flight on one connection`);
        return;
      }
      let method = '';
      try {
        method = decodeRequest(f.payload).method;
      } catch {
        /* the worker's server answers the malformed request */
      }
      this.pending.set(f.streamId, { method, frame });
      this.pendingBytes += frame.length;
    }
    const w = this.worker;
    if (w && !w.destroyed && !w.write(frame) && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
      w.once('drain', () => {
        this.clientPaused = false;
        this.client.resume();
      });
    }
  }

  private onWorkerData(chunk: Buffer): void {
    for (const f of this.fromWorker.push(chunk)) {
      if (f.type === MESSAGE_TYPE.Response) this.settle(f.streamId);
      const w = this.worker;
      if (!this.client.write(encodeFrame(f.streamId, f.type, f.flags, f.payload)) && w && !this.workerPaused) {
        this.workerPaused = true;
        w.pause();
        this.client.once('drain', () => {
          this.workerPaused = false;
          w.resume();
        });
      }
    }
  }

  /** The worker died and its commands are gone: what cannot be asked again is answered now; the rest waits for the next one. */
  workerDied(): void {
    this.worker?.destroy();
    this.worker = undefined;
    for (const [streamId, p] of [...this.pending]) {
      if (REPLAYABLE.has(p.method)) continue;
      this.settle(streamId);
      this.answer(streamId, Code.Unavailable, `tsshim node worker stopped while ${p.method || 'a request'} ran; what it did, if anything, is kept: check the task's state`);
    }
  }

  /** A request is answered: it no longer counts against the connection's bounds. */
  private settle(streamId: number): void {
    const p = this.pending.get(streamId);
    if (!p) return;
    this.pending.delete(streamId);
    this.pendingBytes -= p.frame.length;
    this.onSettle(`${this.id}:${streamId}`);
  }

  private answer(streamId: number, code: Code, message: string): void {
    if (this.closed) return;
    this.client.write(encodeFrame(streamId, MESSAGE_TYPE.Response, 0, encodeResponse({ status: { code, message }, payload: new Uint8Array(0) })));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Requests in flight that a worker's death would answer Unavailable. */
  get inFlightUnreplayable(): number {
    let n = 0;
    for (const p of this.pending.values()) if (!REPLAYABLE.has(p.method)) n++;
    return n;
  }

  /** The Create requests in flight now (raw request payloads): a worker's death leaves them to be cleaned up. */
  pendingCreates(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const p of this.pending.values()) {
      if (p.method !== 'Create') continue;
      try {
        out.push(decodeRequest(p.frame.subarray(HEADER_LENGTH)).payload);
      } catch {
        /* a malformed request created nothing */
      }
    }
    return out;
  }

  /** Keys ("<conn>:<stream>") of the requests in flight that a worker's death would answer Unavailable. */
  unreplayableKeys(): string[] {
    const keys: string[] = [];
    for (const [streamId, p] of this.pending) if (!REPLAYABLE.has(p.method)) keys.push(`${this.id}:${streamId}`);
    return keys;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
    this.worker?.destroy();
    this.worker = undefined;
    for (const streamId of this.pending.keys()) this.onSettle(`${this.id}:${streamId}`);
    this.pending.clear();
    this.pendingBytes = 0;
    this.onClose(this);
  }
}
