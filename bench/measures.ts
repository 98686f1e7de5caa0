// The bench's measures, each taking the columns and one round's index; every timed part is a real
// `ctr` against a real containerd. Clean-up of what a measure started is outside its timing.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { uniqueId } from '../test/helpers/containerd.js';
import { removeContainers } from '../test/helpers/teardown.js';
import { sleep } from '../test/helpers/proc.js';
import type { Column, ColumnKey } from './columns.js';
import { cpuDelta, cpuSeconds, memoryOf, type Memory } from './procstat.js';

export type PerColumn<T> = Record<ColumnKey, T>;

const PERMUTATIONS = [
  [0, 1, 2],
  [1, 2, 0],
  [2, 0, 1],
  [0, 2, 1],
  [2, 1, 0],
  [1, 0, 2],
] as const;

/** The columns in the k-th of the 6 orders, so that no column is always first or last. */
export const order = (cols: readonly Column[], k: number): Column[] => PERMUTATIONS[k % PERMUTATIONS.length]!.map((i) => cols[i]!);

const elapsedMs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function ctrOk(col: Column, args: string[], what: string, timeoutMs = 120_000): Promise<string> {
  const r = await col.cd.ctr(args, { timeoutMs });
  if (r.exitCode !== 0) throw new Error(`${col.label}: ${what} exited ${r.exitCode}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** f over items, at most `size` at a time. */
async function inBatches<T>(items: readonly T[], size: number, f: (x: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(f));
}

function runDetachedArgs(col: Column, id: string, extra: string[], cmd: string[]): string[] {
  return ['run', '-d', '--runtime', col.runtime, ...extra, col.image, id, ...cmd];
}

/**
 * Removes these containers of a column (task delete -f kills and waits), a few at a time; then
 * whatever is still listed goes through the shared teardown. Throws when any is left.
 */
export async function removeAll(col: Column, ids: readonly string[], batch = 8): Promise<void> {
  await inBatches(ids, batch, async (id) => {
    await col.cd.ctr(['tasks', 'delete', '-f', id], { timeoutMs: 60_000 }).catch(() => undefined);
    await col.cd.ctr(['containers', 'rm', id], { timeoutMs: 60_000 }).catch(() => undefined);
  });
  const problems = await removeContainers((a, o) => col.cd.ctr(a, o), ids);
  const left = new Set((await col.cd.ctr(['containers', 'ls', '-q'])).stdout.split('\n').filter(Boolean));
  const still = ids.filter((id) => left.has(id));
  if (still.length > 0) throw new Error(`${col.label}: ${still.length} containers left after clean-up: ${problems.join('; ')}`);
}

/** Warm-up: one `ctr run --rm` per column (boots the node daemon), and a check that a file:// sink receives the output. */
export async function warmUp(cols: readonly Column[], scratch: string): Promise<void> {
  for (const col of cols) {
    await ctrOk(col, ['run', '--rm', '--runtime', col.runtime, col.image, uniqueId('warm'), 'true'], 'warm-up run --rm');
    const id = uniqueId('sink');
    const file = join(scratch, `${id}.out`);
    await ctrOk(col, ['run', '--rm', '--runtime', col.runtime, '--log-uri', `file://${file}`, col.image, id, 'dd', 'if=/dev/zero', 'bs=65536', 'count=16'], 'file sink check');
    const got = statSync(file).size;
    // dd's summary goes to stderr, into the same file.
    if (got < 16 * 65536) throw new Error(`${col.label}: the file:// sink got ${got} bytes, want at least ${16 * 65536}`);
    rmSync(file, { force: true });
  }
}

/** (a) `ctr run --rm … true`, `samples` per column, interleaved. */
export async function startLatency(cols: readonly Column[], round: number, samples: number, out: PerColumn<number[]>): Promise<void> {
  for (let s = 0; s < samples; s++) {
    for (const col of order(cols, round * samples + s)) {
      const t0 = process.hrtime.bigint();
      await ctrOk(col, ['run', '--rm', '--runtime', col.runtime, col.image, uniqueId('start'), 'true'], 'run --rm');
      out[col.key].push(elapsedMs(t0));
    }
  }
}

/**
 * (b) `ctr task exec … true` in a running container (one per column, started before and removed
 * after this measure), `samples` per column, interleaved.
 */
export async function execLatency(cols: readonly Column[], round: number, samples: number, out: PerColumn<number[]>): Promise<void> {
  const targets = new Map<ColumnKey, string>();
  try {
    for (const col of cols) {
      const id = uniqueId('exec');
      targets.set(col.key, id);
      await ctrOk(col, runDetachedArgs(col, id, [], ['sleep', '36000']), 'run -d (exec target)');
    }
    for (let s = 0; s < samples; s++) {
      for (const col of order(cols, round * samples + s + 1)) {
        const t0 = process.hrtime.bigint();
        await ctrOk(col, ['tasks', 'exec', '--exec-id', uniqueId('e'), targets.get(col.key)!, 'true'], 'task exec');
        out[col.key].push(elapsedMs(t0));
      }
    }
  } finally {
    for (const col of cols) if (targets.has(col.key)) await removeAll(col, [targets.get(col.key)!]);
  }
}

export interface ScaleResult {
  parallelMs: number;
  at: Array<{ containers: number; memory: Memory }>;
}

/**
 * (c) wall time of `parallel` concurrent `ctr run -d`; (d) the shim's memory with those running,
 * then with `max` running (the rest started `batch` at a time). Clean-up is not timed.
 */
export async function scale(col: Column, parallel: number, max: number, batch: number, settleMs: number): Promise<ScaleResult> {
  const ids: string[] = [];
  try {
    const first = Array.from({ length: parallel }, () => uniqueId('par'));
    ids.push(...first);
    const t0 = process.hrtime.bigint();
    await Promise.all(first.map((id) => ctrOk(col, runDetachedArgs(col, id, [], ['sleep', '36000']), 'parallel run -d')));
    const parallelMs = elapsedMs(t0);
    const at: ScaleResult['at'] = [];
    await sleep(settleMs);
    at.push({ containers: ids.length, memory: memoryOf(col.shimPids()) });
    const rest = Array.from({ length: Math.max(0, max - parallel) }, () => uniqueId('mem'));
    if (rest.length > 0) {
      await inBatches(rest, batch, async (id) => {
        ids.push(id);
        await ctrOk(col, runDetachedArgs(col, id, [], ['sleep', '36000']), 'run -d');
      });
      await sleep(settleMs);
      at.push({ containers: ids.length, memory: memoryOf(col.shimPids()) });
    }
    return { parallelMs, at };
  } finally {
    await removeAll(col, ids);
  }
}

export type StdioSink = 'file' | 'fifo';

export interface StdioResult {
  bytes: number;
  seconds: number;
  /** utime+stime of the column's shim processes over the timed part. */
  shimCpuSeconds: number;
}

/**
 * (e) `writers` containers write `mib` MiB each to stdout as fast as dd can, all at once, through
 * `ctr run -d --log-uri` (containerd's API with a sink):
 *   file  `file:///dev/null`: the shim writes the file itself, so its copy is the only copy;
 *   fifo  a FIFO (`--log-uri <path>`) read by a `cat >/dev/null` per container: the path of ctr and CRI
 *         (shim → FIFO → reader), the reader's CPU not counted.
 * The containers start first and wait for a go file (a read-only bind mount); timed from creating
 * it to the last /tasks/exit event.
 */
export async function stdioThroughput(col: Column, writers: number, mib: number, batch: number, sink: StdioSink): Promise<StdioResult> {
  const sig = mkdtempSync('/run/tsshim-bench-go-');
  const ids = Array.from({ length: writers }, () => uniqueId('out'));
  const readers: ChildProcess[] = [];
  const count = mib * 16; // 64 KiB blocks
  const events = col.cd.ctrSpawn(['events']);
  const exited = new Map<string, number>();
  let buf = '';
  events.stdout!.on('data', (b: Buffer) => {
    buf += b.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.includes('/tasks/exit')) continue;
      const m = /"container_id":"([^"]+)".*?"exit_status":(\d+)/.exec(line) ?? /"container_id":"([^"]+)"/.exec(line);
      if (m && ids.includes(m[1]!) && !exited.has(m[1]!)) exited.set(m[1]!, Number(m[2] ?? 0));
    }
  });
  try {
    await sleep(300); // ctr events subscribed
    const script = `while [ ! -e /sig/go ]; do sleep 0.02; done; exec dd if=/dev/zero bs=65536 count=${count} 2>/dev/null`;
    await inBatches(ids, batch, async (id) => {
      let uri = 'file:///dev/null';
      if (sink === 'fifo') {
        const fifo = join(sig, `${id}.fifo`);
        execFileSync('mkfifo', [fifo]);
        const null_ = openSync('/dev/null', 'w');
        try {
          readers.push(spawn('cat', [fifo], { stdio: ['ignore', null_, 'ignore'] }));
        } finally {
          closeSync(null_);
        }
        uri = fifo; // a plain path is a FIFO to both shims (runc-v2 1.6 knows no fifo:// scheme)
      }
      await ctrOk(col, runDetachedArgs(col, id, ['--log-uri', uri, '--mount', `type=bind,src=${sig},dst=/sig,options=rbind:ro`], ['sh', '-c', script]), 'run -d (writer)');
    });
    await sleep(1000);
    const pids = col.shimPids();
    const cpu0 = cpuSeconds(pids);
    const t0 = process.hrtime.bigint();
    writeFileSync(join(sig, 'go'), '');
    const deadline = Date.now() + 600_000;
    while (exited.size < ids.length && Date.now() < deadline) await sleep(5);
    const seconds = elapsedMs(t0) / 1000;
    const cpu1 = cpuSeconds([...new Set([...pids, ...col.shimPids()])]);
    if (exited.size < ids.length) throw new Error(`${col.label}: ${ids.length - exited.size} writers did not exit within 600 s`);
    const failed = [...exited.entries()].filter(([, st]) => st !== 0);
    if (failed.length > 0) throw new Error(`${col.label}: writers exited non-zero: ${failed.map(([id, st]) => `${id}=${st}`).join(', ')}`);
    return { bytes: writers * count * 65536, seconds, shimCpuSeconds: cpuDelta(cpu0, cpu1) };
  } finally {
    events.kill('SIGKILL');
    await removeAll(col, ids);
    for (const r of readers) if (r.exitCode === null && r.signalCode === null) r.kill('SIGKILL');
    rmSync(sig, { recursive: true, force: true });
  }
}

/** The number of containers a column's containerd still lists (0 after every measure). */
export async function listed(col: Column): Promise<number> {
  return (await col.cd.ctr(['containers', 'ls', '-q'])).stdout.split('\n').filter(Boolean).length;
}

export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
}
