/**
 * How long the node daemon's event loops stall (issue 12.5: the longest stall while many
 * containers write output). A timer ticks every RESOLUTION_MS; each tick records how late it
 * fired (the time since the last tick minus the interval). A stall of S ms shows as a delay
 * between S − RESOLUTION_MS and S. Since the last reset: the largest delay, p99 and mean of the
 * ticks, their count, and the window's length.
 *
 * Not perf_hooks.monitorEventLoopDelay itself: its reset() forgets the interval in progress (the
 * tick after a reset only starts a new interval), so a read-and-reset in the middle of a busy
 * loop iteration would drop exactly the delay it should report. Same measure, in JavaScript, on
 * a perf_hooks histogram; the timer is unref'd (it keeps no process alive).
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { EventLoopDelay } from '../bootstrap/node.js';

export type { EventLoopDelay };

export const EVENT_LOOP_RESOLUTION_MS = 10;

const NS_PER_MS = 1e6;
const round = (ms: number) => Math.round(ms * 100) / 100;

export class EventLoopWatch {
  private histogram: RecordableHistogram = createHistogram();
  private max = 0;
  private last = process.hrtime.bigint();
  private windowStart = this.last;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly resolutionMs = EVENT_LOOP_RESOLUTION_MS) {
    this.timer = setInterval(() => this.tick(), resolutionMs);
    this.timer.unref();
  }

  private tick(): void {
    const now = process.hrtime.bigint();
    const delayNs = Number(now - this.last) - this.resolutionMs * NS_PER_MS;
    this.last = now;
    const ns = Math.max(1, Math.round(delayNs)); // the histogram records integers >= 1
    this.histogram.record(ns);
    if (ns > this.max) this.max = ns;
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
      samples: h.count,
      sinceMs: Math.round(Number(now - this.windowStart) / NS_PER_MS),
      resolutionMs: this.resolutionMs,
    };
    if (reset) {
      this.histogram = createHistogram();
      this.max = 0;
      this.windowStart = now;
    }
    return out;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
