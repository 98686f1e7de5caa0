// Load against a shim's ttrpc socket: a flood by a client that never reads its answers
// (backpressure, issue 11.3) and a frame fuzzer (issue 11.8). Used by
// test/integration/ttrpc-backpressure.test.ts and bench/soak.ts, on tsshim and runc-v2 alike.
import * as net from 'node:net';
import { Client, Code, TtrpcError, encodeFrame, encodeRequest, FrameDecoder } from 'ttrpc-ts';
import { SERVICE, task } from '../../src/shim-api/pb.js';

export interface Sampler {
  peakKiB: number;
  stop(): number;
}

/** Samples `read()` every `everyMs` and keeps the peak; stop() returns it. */
export function samplePeak(read: () => number, everyMs = 100): Sampler {
  const s: Sampler = {
    peakKiB: read(),
    stop: () => { clearInterval(timer); s.peakKiB = Math.max(s.peakKiB, read()); return s.peakKiB; },
  };
  const timer = setInterval(() => { s.peakKiB = Math.max(s.peakKiB, read()); }, everyMs);
  return s;
}

function connect(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path });
    s.once('error', reject);
    s.once('connect', () => { s.off('error', reject); resolve(s); });
  });
}

export interface FloodResult {
  /** Bytes the kernel accepted from the flooding client (the shim read at most this much). */
  bytesAccepted: number;
  framesWritten: number;
  /** Probe calls on another connection (State of a missing task) and how many were answered. */
  probes: number;
  probesAnswered: number;
  probeMaxMs: number;
  /** Probe failures other than the expected NotFound. */
  probeErrors: string[];
}

/**
 * For `durationMs`, write `frameBytes` requests to `socket` and never read the answers: half to an
 * unknown method whose name is the bulk of the frame, half State with an id as long (both are
 * answered with an error that must not echo it). Meanwhile another connection calls State every
 * 250 ms (each with a 20 s timeout).
 */
export async function flood(socket: string, opts: { durationMs: number; frameBytes: number }): Promise<FloodResult> {
  const big = 'x'.repeat(opts.frameBytes - 64);
  const frames = [
    encodeRequest({ service: SERVICE.Task, method: big, payload: new Uint8Array(0) }),
    encodeRequest({ service: SERVICE.Task, method: 'State', payload: task.StateRequest.encode({ id: big, execId: '' }).finish() }),
  ];
  const res: FloodResult = { bytesAccepted: 0, framesWritten: 0, probes: 0, probesAnswered: 0, probeMaxMs: 0, probeErrors: [] };
  const s = await connect(socket);
  s.pause(); // never read
  s.on('error', () => { /* the shim may close it; counted by what was written */ });
  const probe = await Client.connect(socket, { connectTimeoutMs: 20_000 });
  const end = Date.now() + opts.durationMs;
  const probing = (async () => {
    const req = task.StateRequest.encode({ id: 'flood-probe-missing', execId: '' }).finish();
    while (Date.now() < end) {
      res.probes++;
      const t0 = Date.now();
      try {
        await probe.call(SERVICE.Task, 'State', req, { timeoutMs: 20_000 });
        res.probesAnswered++;
      } catch (err) {
        if (err instanceof TtrpcError && err.code === Code.NotFound) res.probesAnswered++;
        else res.probeErrors.push(String(err));
      }
      res.probeMaxMs = Math.max(res.probeMaxMs, Date.now() - t0);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  let id = 1;
  while (Date.now() < end && !s.destroyed) {
    const body = frames[(id >> 1) & 1]!;
    const ok = s.write(encodeFrame(id, 1, 0, body));
    id += 2;
    res.framesWritten++;
    if (!ok) {
      // Wait for our own buffer to drain into the kernel, or for the time to end.
      await new Promise<void>((r) => {
        const t = setTimeout(done, Math.max(0, end - Date.now()));
        s.once('drain', done);
        function done() { clearTimeout(t); s.off('drain', done); r(); }
      });
    }
  }
  res.bytesAccepted = s.bytesWritten - s.writableLength;
  await probing;
  s.destroy();
  probe.close();
  return res;
}

// ------------------------------------------------------------------ fuzz

/** xorshift32: reproducible from a seed. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x100000000; };
}

/** Task methods whose random input can do no harm (no Create, Exec, Checkpoint, Update, Shutdown). */
const SAFE_METHODS = ['State', 'Pids', 'Stats', 'Wait', 'Kill', 'Delete', 'Connect', 'ResizePty', 'CloseIO', 'Pause', 'Resume'];

export interface FuzzResult {
  frames: number;
  responses: number;
  connections: number;
  /** Connections the shim closed on us. */
  closedByShim: number;
  /**
   * Connections the shim stopped reading although we read every answer (no 'drain' within
   * stallMs): dropped and replaced. With what the stalled connection had been sent last.
   */
  stalled: number;
  stalls: string[];
  bytes: number;
}

/** One fuzzed frame (header and payload); `state.id` is the connection's next stream id. */
function fuzzFrame(rand: () => number, state: { id: number }): { kind: string; buf: Buffer; reply: boolean; closeAfter?: boolean } {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const bytes = (n: number) => { const b = Buffer.allocUnsafe(n); for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0; return b; };
  const str = (n: number) => bytes(n).toString('latin1');
  const nextId = () => { const id = state.id; state.id += 2; return id; };
  const r = rand();
  if (r < 0.3) {
    return { kind: 'random-payload', buf: encodeFrame(nextId(), 1, 0, encodeRequest({ service: SERVICE.Task, method: pick(SAFE_METHODS), payload: bytes((rand() * 200) | 0) })), reply: true };
  }
  if (r < 0.5) {
    const payload = task.StateRequest.encode({ id: str((rand() * 80) | 0), execId: rand() < 0.5 ? '' : str((rand() * 10) | 0) }).finish();
    const metadata = rand() < 0.3 ? [{ key: str(5), value: str(5) }] : undefined;
    const timeoutNano = rand() < 0.2 ? Math.floor((rand() - 0.3) * 2e9) : 0;
    return { kind: 'state-like', buf: encodeFrame(nextId(), 1, 0, encodeRequest({ service: SERVICE.Task, method: pick(SAFE_METHODS), payload, metadata, timeoutNano })), reply: true };
  }
  if (r < 0.6) {
    return { kind: 'unknown-method', buf: encodeFrame(nextId(), 1, 0, encodeRequest({ service: rand() < 0.5 ? SERVICE.Task : str(20), method: str((rand() * 40) | 0), payload: bytes(8) })), reply: true };
  }
  if (r < 0.75) return { kind: 'garbage-envelope', buf: encodeFrame(nextId(), 1, 0, bytes((rand() * 120) | 0)), reply: true };
  if (r < 0.85) {
    // other frame types (ignored) and streaming flags
    const type = pick([0, 2, 3, 4, 255]);
    const flags = type === 1 ? 1 : pick([0, 1, 2, 0xff]);
    return { kind: `type-${type}`, buf: encodeFrame(nextId(), type, flags, bytes((rand() * 60) | 0)), reply: false };
  }
  if (r < 0.9) return { kind: 'flags', buf: encodeFrame(nextId(), 1, pick([1, 2, 4]), encodeRequest({ service: SERVICE.Task, method: 'State', payload: bytes(4) })), reply: true };
  if (r < 0.99) {
    // stream id misuse: even, or already used
    const bad = rand() < 0.5 ? state.id + 1 : Math.max(1, state.id - 2 * (1 + ((rand() * 5) | 0)));
    return { kind: 'bad-stream-id', buf: encodeFrame(bad, 1, 0, encodeRequest({ service: SERVICE.Task, method: 'State', payload: new Uint8Array(0) })), reply: true };
  }
  if (r < 0.9995) {
    // a frame cut short: the rest of the connection's stream is misaligned, so close it after
    const full = encodeFrame(nextId(), 1, 0, encodeRequest({ service: SERVICE.Task, method: 'State', payload: bytes(30) }));
    return { kind: 'cut-frame', buf: full.subarray(0, 1 + ((rand() * (full.length - 1)) | 0)), reply: false, closeAfter: true };
  }
  // a header announcing more than the 4 MiB limit (answered ResourceExhausted), then close
  const hdr = Buffer.alloc(10);
  hdr.writeUInt32BE((4 << 20) + 1 + ((rand() * 1000) | 0), 0);
  hdr.writeUInt32BE(nextId(), 4);
  hdr[8] = 1;
  return { kind: 'oversized', buf: hdr, reply: true, closeAfter: true };
}

/**
 * Send `total` fuzzed frames to `socket` over `parallel` connections (each reading every answer;
 * a connection the fuzzer closes or the shim closes is replaced). Reproducible from `seed`.
 */
export async function fuzz(socket: string, opts: { total: number; seed: number; parallel?: number; batch?: number; stallMs?: number }): Promise<FuzzResult> {
  const parallel = opts.parallel ?? 4;
  const batch = opts.batch ?? 500;
  const stallMs = opts.stallMs ?? 10_000;
  const res: FuzzResult = { frames: 0, responses: 0, connections: 0, closedByShim: 0, stalled: 0, stalls: [], bytes: 0 };
  let remaining = opts.total;
  const worker = async (w: number) => {
    const rand = rng(opts.seed + w * 7919);
    while (remaining > 0) {
      const s = await connect(socket);
      res.connections++;
      const dec = new FrameDecoder(8 << 20);
      let closedByUs = false;
      s.on('data', (c: Buffer) => { res.responses += dec.push(c).length; });
      s.on('error', () => { /* counted through close */ });
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      const state = { id: 1 };
      let n = 0;
      while (remaining > 0 && !s.destroyed) {
        const parts: Buffer[] = [];
        const kinds: string[] = [];
        let close = false;
        for (let i = 0; i < batch && remaining > 0; i++) {
          const f = fuzzFrame(rand, state);
          parts.push(f.buf);
          kinds.push(f.kind);
          remaining--;
          res.frames++;
          n++;
          if (f.closeAfter || state.id > 0x7fffff00) { close = true; break; }
        }
        const buf = Buffer.concat(parts);
        res.bytes += buf.length;
        const ok = s.write(buf);
        if (close) { closedByUs = true; s.end(); break; }
        if (!ok) {
          let timer: NodeJS.Timeout | undefined;
          const drained = await Promise.race([
            new Promise((r) => s.once('drain', () => r(true))),
            closed.then(() => true),
            new Promise((r) => { timer = setTimeout(() => r(false), stallMs); }),
          ]);
          clearTimeout(timer);
          if (!drained) {
            res.stalled++;
            if (res.stalls.length < 5) res.stalls.push(`after ${n} frames; last kinds ${[...new Set(kinds.slice(-20))].join(',')}`);
            closedByUs = true;
            break;
          }
        }
      }
      if (!closedByUs && !s.destroyed) { closedByUs = true; s.end(); }
      // A moment for the shim to answer and close its side (runc-v2's Go ttrpc keeps a
      // half-closed connection open), then drop it.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 50))]);
      if (!closedByUs) res.closedByShim++;
      s.destroy();
      void n;
    }
  };
  await Promise.all(Array.from({ length: parallel }, (_, w) => worker(w)));
  return res;
}
