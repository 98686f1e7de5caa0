/**
 * How long the node daemon's event loops stall (issue 12.5: the longest stall while many
 * containers write output). A timer ticks every RESOLUTION_MS; each tick records how late it
 * fired (the time since the last tick minus the interval). A stall of S ms shows as a delay
 * between S − RESOLUTION_MS and S. Since the last reset: the largest delay, p99 and mean of the
 * ticks, their count, and the window's length.
 *
 * A late tick has two causes: the main thread ran (JavaScript, GC, native calls: the process's
 * own doing) or it was runnable and waited for a CPU (the host's load). The main thread's
 * schedstat (/proc/<pid>/task/<pid>/schedstat: ns on a CPU, ns waiting for one) tells them
 * apart: `maxOwnMs` is the largest delay minus the CPU wait of its interval. The file is read
 * with one pread on an fd kept open (procfs, in memory: a few µs, never blocks on a disk);
 * without it (no schedstat in the kernel) maxOwnMs is null.
 *
 * Not perf_hooks.monitorEventLoopDelay itself: its reset() forgets the interval in progress (the
 * tick after a reset only starts a new interval), so a read-and-reset in the middle of a busy
 * loop iteration would drop exactly the delay it should report. Same measure, in JavaScript, on
 * a perf_hooks histogram; the timer is unref'd (it keeps no process alive).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { EventLoopDelay } from '../bootstrap/node.js';

export type { EventLoopDelay };

export const EVENT_LOOP_RESOLUTION_MS = 10;

const NS_PER_MS = 1e6;
const round = (ms: number) => Math.round(ms * 100) / 100;

/** The main thread's time waiting for a CPU (ns) from its schedstat, or undefined. */
class CpuWait {
  private fd: number | undefined;
  private readonly buf = Buffer.alloc(128);
  constructor() {
    try {
      this.fd = openSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'r');
      if (this.read() === undefined) this.close();
    } catch {
      this.fd = undefined;
    }
  }
  read(): number | undefined {
    if (this.fd === undefined) return undefined;
    try {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
      const wait = Number(this.buf.toString('latin1', 0, n).split(' ')[1]);
      return Number.isFinite(wait) ? wait : undefined;
    } catch {
      return undefined;
    }
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export class EventLoopWatch {
  private histogram: RecordableHistogram = createHistogram();
  private max = 0;
  private maxOwn = 0;
  private last = process.hrtime.bigint();
  private windowStart = this.last;
  private readonly timer: NodeJS.Timeout;
  private readonly cpuWait = new CpuWait();
  private lastWait: number | undefined = this.cpuWait.read();

  constructor(private readonly resolutionMs = EVENT_LOOP_RESOLUTION_MS) {
    this.timer = setInterval(() => this.tick(), resolutionMs);
    this.timer.unref();
  }

  private tick(): void {
    const now = process.hrtime.bigint();
    const wait = this.cpuWait.read();
    const delayNs = Number(now - this.last) - this.resolutionMs * NS_PER_MS;
    this.last = now;
    const ns = Math.max(1, Math.round(delayNs)); // the histogram records integers >= 1
    this.histogram.record(ns);
    if (ns > this.max) this.max = ns;
    if (wait !== undefined && this.lastWait !== undefined) {
      const own = delayNs - (wait - this.lastWait);
      if (own > this.maxOwn) this.maxOwn = own;
    }
    this.lastWait = wait;
  }

  /** The figures since the last reset; with reset, a new window starts now (the interval in progress is kept). */
  snapshot(reset = false): EventLoopDelay {
    const now = process.hrtime.bigint();
    const h = this.histogram;
    const out: EventLoopDelay = {
      maxMs: round(this.max / NS_PER_MS),
      // the histogram's buckets are approximate: its p99 may lie a little above the exact max
      p99Ms: h.count ? round(Math.min(h.percentile(99), this.max) / NS_PER_MS) : 0,
      meanMs: h.count ? round(h.mean / NS_PER_MS) : 0,
      maxOwnMs: this.lastWait === undefined ? null : round(this.maxOwn / NS_PER_MS),
      samples: h.count,
      sinceMs: Math.round(Number(now - this.windowStart) / NS_PER_MS),
      resolutionMs: this.resolutionMs,
    };
    if (reset) {
      this.histogram = createHistogram();
      this.max = 0;
      this.maxOwn = 0;
      this.windowStart = now;
    }
    return out;
  }

  stop(): void {
    clearInterval(this.timer);
    this.cpuWait.close();
  }
}
