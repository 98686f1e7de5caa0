// Memory and CPU time of a set of processes, from /proc (Linux only).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export interface Memory {
  /** Sum of VmRSS over the processes, KiB. */
  rssKiB: number;
  /** Sum of Pss (smaps_rollup) over the processes, KiB: shared pages split among their users. */
  pssKiB: number;
  processes: number;
}

export function memoryOf(pids: readonly number[]): Memory {
  let rssKiB = 0;
  let pssKiB = 0;
  let processes = 0;
  for (const pid of pids) {
    try {
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
      const pss = Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
      if (!Number.isFinite(rss) || !Number.isFinite(pss)) continue;
      rssKiB += rss;
      pssKiB += pss;
      processes++;
    } catch {
      /* the process is gone */
    }
  }
  return { rssKiB, pssKiB, processes };
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime+stime (the processes' own, not their reaped children's) per pid, in seconds. */
export function cpuSeconds(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields 14 and 15 of stat: after ")" the 3rd field is index 0, so utime/stime are 11/12.
      out.set(pid, (Number(f[11]) + Number(f[12])) / ticksPerSecond());
    } catch {
      /* gone */
    }
  }
  return out;
}

/** CPU seconds spent between two cpuSeconds() snapshots (a process new in `after` counts from 0). */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let s = 0;
  for (const [pid, t] of after) s += t - (before.get(pid) ?? 0);
  return s;
}
