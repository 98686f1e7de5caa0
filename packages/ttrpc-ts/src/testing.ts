/**
 * Test helpers (not exported from index.ts): temp socket paths and a raw
 * frame-level connection for poking a server with arbitrary bytes.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FrameDecoder, type Frame } from './channel.js';

export function tempDir(prefix = 'ttrpc-test-'): { dir: string; sock: (name: string) => string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, sock: (name) => path.join(dir, name), remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A raw unix-socket connection that collects the frames it receives. */
export class RawConn {
  readonly frames: Frame[] = [];
  readonly decoder = new FrameDecoder(Number.MAX_SAFE_INTEGER);
  closed = false;
  #waiters: Array<() => void> = [];
  readonly whenClosed: Promise<void>;

  static open(p: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path: p });
      s.once('error', reject);
      s.once('connect', () => { s.off('error', reject); resolve(new RawConn(s)); });
    });
  }

  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => { this.frames.push(...this.decoder.push(c)); this.#wake(); });
    socket.on('error', () => { /* reported through close */ });
    this.whenClosed = new Promise((resolve) => socket.once('close', () => { this.closed = true; this.#wake(); resolve(); }));
  }

  #wake(): void { const w = this.#waiters; this.#waiters = []; for (const f of w) f(); }

  write(buf: Uint8Array): void { this.socket.write(buf); }

  /** Wait until `n` frames have been received in total; rejects on timeout or close. */
  async waitFrames(n: number, timeoutMs = 2000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < n) {
      if (this.closed) throw new Error(`connection closed after ${this.frames.length}/${n} frames`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${n} frames (got ${this.frames.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.frames;
  }

  /** Resolves true if the connection closes within timeoutMs. */
  waitClosed(timeoutMs = 2000): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => { t = setTimeout(() => resolve(this.closed), timeoutMs); });
    return Promise.race([this.whenClosed.then(() => true), timeout]).finally(() => clearTimeout(t));
  }

  destroy(): void { this.socket.destroy(); }
}
