/**
 * OOM detection (docs/adr/0004-oom-detection.md): the cgroup's oom_kill counter, and
 * OomWatcher, the only poll of it.
 */
import type { CgroupRef } from './locate.js';
import { readKV } from './files.js';

/** OOM kills so far in the cgroup: v1 memory.oom_control, v2 memory.events ("oom_kill N"); 0 if absent. */
export function oomKillCount(ref: CgroupRef): number {
  const m = ref.mode === 'v2' ? readKV(ref.dirs.unified, 'memory.events') : readKV(ref.dirs.memory, 'memory.oom_control');
  return Number(m?.get('oom_kill') ?? 0n);
}

/**
 * Polls the oom_kill counter (ADR 0004). The baseline is the count at construction; `check()`
 * reads the counter now and calls `onOom` once when it grew since the last reading (a counter
 * that went down, e.g. a recreated group, becomes the new baseline). The interval timer is
 * unref'd, so it never keeps the process alive; `check()` still works after `stop()`.
 * `onOom` runs inside the timer callback: it must not throw.
 */
export class OomWatcher {
  private last: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ref: CgroupRef,
    private readonly onOom: () => void,
    intervalMs = 1000,
  ) {
    this.last = oomKillCount(ref);
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  check(): boolean {
    const n = oomKillCount(this.ref);
    if (n <= this.last) {
      this.last = n;
      return false;
    }
    this.last = n;
    this.onOom();
    return true;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
