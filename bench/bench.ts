// npm run bench [-- --rounds 4 --samples 8 --parallel 20 --max 100 --batch 5 --writers 20 --mib 64 --write]
//                [-- --gvisor-rounds 4 --gvisor-samples 4 --gvisor-pods 5] [-- --only runc|gvisor]
// npm run bench -- --scale [N]: N (250) containers in node mode instead (bench/scale.ts; npm run bench:scale)
//
// containerd's io.containerd.runc.v2, tsshim in pod mode and tsshim in node mode side by side in
// ONE run of interleaved rounds (each round measures every column, in rotating order), on two
// private containerd 1.6 instances (bench/columns.ts). Medians with their spread and ratios vs
// runc-v2; no thresholds: this reports, it never fails on a number.
//
//   (a) start: `ctr run --rm … true`, `samples` per column per round, interleaved
//   (b) exec: `ctr task exec … true` in a running container, likewise
//   (c) `parallel` concurrent `ctr run -d`: wall time
//   (d) total shim RSS/PSS with `parallel` and with `max` containers running (every shim process
//       of that containerd: runc-v2's per-task daemons, tsshim's per-task daemons in pod mode, the
//       node daemon in node mode); also per container
//   (e) `writers` containers writing `mib` MiB each to stdout at full speed: aggregate MB/s and
//       the shim CPU time it cost (utime+stime from /proc/<pid>/stat)
//
// Then the gVisor part (bench/gvisor.ts): tsshim-gvisor beside gVisor's own shim (runsc-v1, patched:
// oom_score_adj EPERM tolerated), interleaved, through CRI on a private containerd 2.x (gVisor's own
// shim cannot be driven by plain `ctr run`, ADR 0017): pod start, container start, exec, pod
// removal, shim memory. --gvisor-rounds 0 leaves it out; --only gvisor runs it alone.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import os from 'node:os';
import { REPO_ROOT } from '../test/helpers/proc.js';
import { setupColumns, type Column, type ColumnKey } from './columns.js';
import {
  execLatency, listed, loadAverage, order, scale, startLatency, stdioThroughput, warmUp,
  type PerColumn, type ScaleResult, type StdioResult, type StdioSink,
} from './measures.js';
import { cell, fmt, ratio, summarize, type Summary } from './stats.js';
import { gvisorBench } from './gvisor.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const n = Number(process.argv[i + 1]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a number, not ${process.argv[i + 1]}`);
  return n;
}

const KEYS: ColumnKey[] = ['runc', 'pod', 'node'];
const SINKS: StdioSink[] = ['fifo', 'file'];
const perColumn = <T>(f: () => T): PerColumn<T> => ({ runc: f(), pod: f(), node: f() });

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)} load ${loadAverage()}] ${msg}\n`);
}

function versionLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return `${cmd}: ?`;
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--scale')) {
    await (await import('./scale.js')).main(); // issue 12.5: N containers in node mode (bench/scale.ts)
    return;
  }
  const o = {
    rounds: Math.max(1, arg('rounds', 4)),
    samples: Math.max(1, arg('samples', 8)),
    parallel: arg('parallel', 20),
    max: arg('max', 100),
    batch: Math.max(1, arg('batch', 5)),
    writers: arg('writers', 20),
    mib: arg('mib', 64),
    settleMs: arg('settle-ms', 2000),
  };
  const only = (() => {
    const i = process.argv.indexOf('--only');
    const v = i < 0 ? undefined : process.argv[i + 1];
    if (v !== undefined && v !== 'runc' && v !== 'gvisor') throw new Error(`--only runc|gvisor, not ${v}`);
    return v;
  })();
  const gv = { rounds: arg('gvisor-rounds', o.rounds), samples: Math.max(1, arg('gvisor-samples', 4)), pods: Math.max(1, arg('gvisor-pods', 5)), settleMs: o.settleMs };
  if (only === 'gvisor') {
    log(`gvisor only: ${JSON.stringify(gv)}`);
    const md = `## ${new Date().toISOString().slice(0, 10)}: tsshim-gvisor beside gVisor's own shim\n\n` + (await gvisorBench({ ...gv, rounds: Math.max(1, gv.rounds) }, log)).markdown;
    console.log(md);
    if (process.argv.includes('--write')) writeDoc(md);
    return;
  }
  const started = Date.now();
  const loadBefore = loadAverage();
  log(`options ${JSON.stringify(o)}`);
  const setup = await setupColumns();
  const cols = setup.columns;
  const start = perColumn<number[]>(() => []);
  const exec = perColumn<number[]>(() => []);
  const scales = perColumn<ScaleResult[]>(() => []);
  const stdio: Record<StdioSink, PerColumn<StdioResult[]>> = { file: perColumn(() => []), fifo: perColumn(() => []) };
  const loads: string[] = [];
  let md = '';
  const scratch = mkdtempSync('/run/tsshim-bench-out-');
  try {
    log(setup.description);
    await warmUp(cols, scratch);
    for (let round = 0; round < o.rounds; round++) {
      loads.push(loadAverage());
      log(`round ${round + 1}/${o.rounds}: start latency`);
      await startLatency(cols, round, o.samples, start);
      log(`round ${round + 1}/${o.rounds}: exec latency`);
      await execLatency(cols, round, o.samples, exec);
      for (const col of order(cols, round)) {
        log(`round ${round + 1}/${o.rounds}: ${col.label}: ${o.parallel} parallel starts, memory at ${o.parallel} and ${o.max}`);
        scales[col.key].push(await scale(col, o.parallel, o.max, o.batch, o.settleMs));
      }
      if (o.writers > 0) {
        for (const sink of SINKS) {
          for (const col of order(cols, round + (sink === 'file' ? 3 : 4))) {
            log(`round ${round + 1}/${o.rounds}: ${col.label}: stdio to a ${sink} sink, ${o.writers} writers × ${o.mib} MiB`);
            stdio[sink][col.key].push(await stdioThroughput(col, o.writers, o.mib, o.batch, sink));
          }
        }
      }
    }
    for (const col of cols) {
      const n = await listed(col);
      if (n > 0) log(`${col.label}: ${n} containers still listed after the bench (teardown removes them)`);
    }
    md = render(cols, o, setup.description, { start, exec, scales, stdio }, { loadBefore, loads, loadAfter: loadAverage(), minutes: (Date.now() - started) / 60000 });
    console.log(md);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await setup.teardown();
  }
  if (only !== 'runc' && gv.rounds > 0) {
    const g = (await gvisorBench(gv, log)).markdown;
    console.log(g);
    md += '\n' + g;
  }
  if (process.argv.includes('--write')) writeDoc(md);
}

interface Results {
  start: PerColumn<number[]>;
  exec: PerColumn<number[]>;
  scales: PerColumn<ScaleResult[]>;
  stdio: Record<StdioSink, PerColumn<StdioResult[]>>;
}

function render(cols: Column[], o: Record<string, number>, description: string, r: Results, load: { loadBefore: string; loads: string[]; loadAfter: string; minutes: number }): string {
  const label = (k: ColumnKey) => cols.find((c) => c.key === k)!.label;
  const rows: Array<[string, PerColumn<Summary>, number]> = [];
  const add = (name: string, f: (k: ColumnKey) => number[], digits = 1) => rows.push([name, { runc: summarize(f('runc')), pod: summarize(f('pod')), node: summarize(f('node')) }, digits]);
  const mem = (k: ColumnKey, i: number, g: (m: ScaleResult['at'][number]) => number) => r.scales[k].map((s) => s.at[i]).filter((x) => x !== undefined).map(g);
  const MiB = 1024;
  add('`ctr run --rm … true`, ms', (k) => r.start[k]);
  add('`ctr task exec … true`, ms', (k) => r.exec[k]);
  add(`${o.parallel} parallel \`ctr run -d\`, wall ms`, (k) => r.scales[k].map((s) => s.parallelMs), 0);
  for (const [i, n] of [[0, o.parallel], [1, o.max]] as const) {
    if (n === undefined || (i === 1 && o.max <= o.parallel)) continue;
    add(`total shim RSS, ${n} containers, MiB`, (k) => mem(k, i, (m) => m.memory.rssKiB / MiB));
    add(`total shim PSS, ${n} containers, MiB`, (k) => mem(k, i, (m) => m.memory.pssKiB / MiB));
    add(`shim RSS per container, ${n} containers, MiB`, (k) => mem(k, i, (m) => m.memory.rssKiB / MiB / m.containers), 2);
    add(`shim PSS per container, ${n} containers, MiB`, (k) => mem(k, i, (m) => m.memory.pssKiB / MiB / m.containers), 2);
    add(`shim processes, ${n} containers`, (k) => mem(k, i, (m) => m.memory.processes), 0);
  }
  for (const sink of o.writers > 0 ? SINKS : []) {
    const st = r.stdio[sink];
    add(`stdio to ${sink === 'fifo' ? 'FIFOs' : 'a file'}, ${o.writers} writers × ${o.mib} MiB, aggregate MB/s`, (k) => st[k].map((s) => s.bytes / 1e6 / s.seconds), 0);
    add(`stdio to ${sink === 'fifo' ? 'FIFOs' : 'a file'}: shim CPU s (utime+stime)`, (k) => st[k].map((s) => s.shimCpuSeconds), 2);
    add(`stdio to ${sink === 'fifo' ? 'FIFOs' : 'a file'}: shim CPU ms per GB`, (k) => st[k].map((s) => (s.shimCpuSeconds * 1000) / (s.bytes / 1e9)), 0);
  }
  const date = new Date().toISOString().slice(0, 10);
  const host =
    `Host: ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, kernel ${os.release()}, ` +
    `${versionLine('containerd', ['--version']).split(' ').slice(0, 3).join(' ')}, ${versionLine('runc', ['--version'])}, node ${process.version}, ` +
    `tsshim at ${versionLine('git', ['-C', REPO_ROOT, 'log', '-1', '--format=%h (%cs)'])}.`;
  return (
    `## ${date}: runc-v2, tsshim pod mode, tsshim node mode: ${o.rounds} interleaved rounds\n\n` +
    `${host} Setup: ${description}. Each round measures every column, in rotating order; ` +
    `latencies: ${o.samples} samples per column per round, cell = median (p10–p90) over all rounds; ` +
    `per-round figures (parallel starts, memory, stdio): median (min–max) over the rounds. ` +
    `Memory counts every shim process of that containerd (runc-v2: one daemon per task; pod mode: one Node daemon per task; ` +
    `node mode: the node daemon's supervisor and worker, from \`tsshim node status\` and the process list), after ${o.settleMs} ms of settling; the ${o.max}-container step starts ${o.batch} at a time. ` +
    `stdio: containers started first (\`ctr run -d --log-uri\`), waiting for a go file, then \`dd if=/dev/zero bs=64k\` to stdout; ` +
    `FIFOs: a FIFO per container (\`--log-uri <path>\`) read by a \`cat >/dev/null\` (the shim → FIFO → reader path of ctr and CRI; cat's CPU not counted); ` +
    `a file: \`file:///dev/null\`, which the shim writes itself (its copy is the only copy); timed from the go file to the last ` +
    `/tasks/exit event; shim CPU = utime+stime of the shim processes from /proc/<pid>/stat before/after. Load average (1/5/15 min) before: ${load.loadBefore}; at each round's start: ${load.loads.join('; ')}; after: ${load.loadAfter}. ` +
    `Took ${fmt(load.minutes, 1)} min.\n\n` +
    `| measure | ${label('runc')} | ${label('pod')} | ${label('node')} | pod / runc-v2 | node / runc-v2 |\n|---|---:|---:|---:|---:|---:|\n` +
    rows.map(([name, s, d]) => `| ${name} | ${KEYS.map((k) => cell(s[k], d)).join(' | ')} | ${ratio(s.pod, s.runc)} | ${ratio(s.node, s.runc)} |`).join('\n') +
    '\n'
  );
}

const HEAD = '# Benchmarks\n\n`npm run bench -- --write` prepends a dated section (the newest first). Shared 2-core VM: medians with their spread.\n\n';

function writeDoc(md: string): void {
  const file = join(REPO_ROOT, 'docs', 'benchmarks.md');
  let prev = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const firstSection = prev.indexOf('\n## ');
  prev = firstSection >= 0 ? prev.slice(firstSection + 1) : '';
  writeFileSync(file, HEAD + md + '\n' + prev);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
