// npm run bench -- --scale [N]   (npm run bench:scale; N defaults to 250)
//   [--concurrency 10] [--output-seconds 10] [--settle-ms 3000] [--write]
//
// Issue 12.5: N containers in node mode on one private containerd 1.6 (tsshim, runc handler,
// TSSHIM_CONFIG [shim] mode = "node"; bench/columns.ts), every step a real `ctr`:
//
//   start    N × `ctr run -d --log-uri <FIFO>` (a `cat` reads each FIFO: the path of ctr and
//            CRI), `concurrency` at a time; each container waits for a go file
//   exec     `ctr task exec … sh -c 'echo exec-ok'` in each, output checked
//   output   all N write to stdout at full speed (`dd if=/dev/zero bs=64k`, 1 MiB per dd, until a
//            stop file) for `output-seconds`; then they sleep
//   stop     `ctr task kill -s KILL` each, until `ctr task ls` shows all STOPPED
//   remove   `ctr task rm` + `ctr containers rm` each; nothing may stay listed
//
// Reported: counts and failures (with messages) per phase, wall time per phase, the node
// daemon's memory (supervisor and worker RSS/PSS: idle, with N tasks, after the output, after
// removal; per task = (total − idle) / N), CPU time of each process per phase, and the longest
// event-loop delay (and p99) of worker and supervisor per phase, from `tsshim node status`'s
// eventLoop figures (the control API the CLI uses, read and reset at each phase's edges).
// No thresholds: it reports.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import os from 'node:os';
import { uniqueId } from '../test/helpers/containerd.js';
import { REPO_ROOT, sleep } from '../test/helpers/proc.js';
import { askStatus, nodePaths, type EventLoopDelay, type NodeStatus } from '../src/shim-api/bootstrap/node.js';
import { setupColumns, type Column } from './columns.js';
import { loadAverage, removeAll } from './measures.js';
import { cpuSeconds, memoryOf, type Memory } from './procstat.js';
import { fmt } from './stats.js';

interface Options {
  n: number;
  concurrency: number;
  outputSeconds: number;
  settleMs: number;
}

function parseOptions(argv: string[]): Options {
  const num = (name: string, def: number): number => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return def;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) return def; // `--scale` alone
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a number, not ${v}`);
    return n;
  };
  return {
    n: Math.max(1, num('scale', 250)),
    concurrency: Math.max(1, num('concurrency', 10)),
    outputSeconds: Math.max(1, num('output-seconds', 10)),
    settleMs: num('settle-ms', 3000),
  };
}

function log(msg: string): void {
  process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)} load ${loadAverage()}] ${msg}\n`);
}

/** f over items, at most `c` at a time (a pool: a slow one does not hold up a batch). */
async function pool<T>(items: readonly T[], c: number, f: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(c, items.length) }, async () => {
      while (next < items.length) await f(items[next++]!);
    }),
  );
}

interface Failure {
  id: string;
  message: string;
}

interface DaemonSnapshot {
  supervisor: Memory;
  worker: Memory;
}

interface Phase {
  name: string;
  wallMs: number;
  attempted: number;
  ok: number;
  failures: Failure[];
  eventLoop: { supervisor: EventLoopDelay | null; worker: EventLoopDelay | null };
  cpu: { supervisor: number; worker: number };
  load: string;
  restarts: number;
}

const firstLine = (s: string) => s.trim().split('\n').filter(Boolean).slice(-1)[0]?.slice(0, 300) ?? '';

class Daemon {
  private readonly control: string;
  status!: NodeStatus;
  constructor(private readonly col: Column) {
    this.control = nodePaths(col.cd.address).control;
  }
  /** The daemon's status once a worker serves (a worker that died is waited for, up to 60 s). */
  async read(resetEventLoop: boolean): Promise<NodeStatus> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      this.status = await askStatus(this.control, 60_000, { resetEventLoop });
      if (this.status.supervisorPid && this.status.workerPid && this.status.workerReady) return this.status;
      if (Date.now() > deadline) throw new Error(`node daemon without a serving worker for 60 s: ${JSON.stringify(this.status)}`);
      await sleep(200);
    }
  }
  memory(): DaemonSnapshot {
    return { supervisor: memoryOf([this.status.supervisorPid!]), worker: memoryOf([this.status.workerPid!]) };
  }
  cpu(): { supervisor: number; worker: number } {
    const c = cpuSeconds([this.status.supervisorPid!, this.status.workerPid!]);
    return { supervisor: c.get(this.status.supervisorPid!) ?? NaN, worker: c.get(this.status.workerPid!) ?? NaN };
  }
}

/** Runs one phase: the daemon's event-loop window and CPU are taken at its edges. */
async function phase(d: Daemon, name: string, attempted: number, body: (fail: (f: Failure) => void) => Promise<void>): Promise<Phase> {
  const load = loadAverage();
  const s0 = await d.read(true);
  const cpu0 = d.cpu();
  const failures: Failure[] = [];
  log(`${name}: ${attempted}`);
  const t0 = process.hrtime.bigint();
  await body((f) => failures.push(f));
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const s1 = await d.read(true);
  const cpu1 = s1.workerPid === s0.workerPid ? d.cpu() : { supervisor: NaN, worker: NaN };
  const eventLoop = s1.eventLoop ?? { supervisor: null, worker: null };
  log(`${name}: ${attempted - failures.length}/${attempted} ok in ${fmt(wallMs / 1000, 1)} s; event loop max worker ${eventLoop.worker?.maxMs} ms, supervisor ${eventLoop.supervisor?.maxMs} ms`);
  return {
    name,
    wallMs,
    attempted,
    ok: attempted - failures.length,
    failures,
    eventLoop,
    cpu: { supervisor: cpu1.supervisor - cpu0.supervisor, worker: cpu1.worker - cpu0.worker },
    load,
    restarts: s1.restarts - s0.restarts,
  };
}

/** Bytes read so far by each reader (rchar of /proc/<pid>/io). */
function bytesRead(readers: readonly ChildProcess[]): number {
  let sum = 0;
  for (const r of readers) {
    try {
      sum += Number(/^rchar:\s+(\d+)/m.exec(readFileSync(`/proc/${r.pid}/io`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* exited */
    }
  }
  return sum;
}

export interface ScaleReport {
  options: Options;
  phases: Phase[];
  memory: Array<{ state: string; tasks: number; m: DaemonSnapshot }>;
  output: { bytes: number; seconds: number };
  loadBefore: string;
  loadAfter: string;
  minutes: number;
  leftover: number;
  restarts: number;
}

async function run(o: Options): Promise<ScaleReport> {
  const started = Date.now();
  const loadBefore = loadAverage();
  log(`options ${JSON.stringify(o)}`);
  const setup = await setupColumns(['node']);
  const col = setup.columns[0]!;
  const cd = col.cd;
  const sig = mkdtempSync('/run/tsshim-scale-');
  const ids = Array.from({ length: o.n }, (_, i) => uniqueId(`s${i}`));
  const readers = new Map<string, ChildProcess>();
  const phases: Phase[] = [];
  const memory: ScaleReport['memory'] = [];
  let output = { bytes: 0, seconds: 0 };
  let leftover = 0;
  try {
    // The daemon boots with the first task.
    const warm = await cd.ctr(['run', '--rm', '--runtime', col.runtime, col.image, uniqueId('warm'), 'true'], { timeoutMs: 120_000 });
    if (warm.exitCode !== 0) throw new Error(`warm-up run --rm exited ${warm.exitCode}: ${warm.stderr}`);
    const d = new Daemon(col);
    const first = await d.read(true);
    log(`node daemon: supervisor ${first.supervisorPid}, worker ${first.workerPid}`);
    await sleep(o.settleMs);
    await d.read(false);
    memory.push({ state: 'idle daemon (no task, after one run --rm)', tasks: 0, m: d.memory() });

    const script =
      'while [ ! -e /sig/go ]; do sleep 1; done; ' +
      'while [ ! -e /sig/stop ]; do dd if=/dev/zero bs=65536 count=16 2>/dev/null; done; ' +
      'exec sleep 36000';
    const running = new Set<string>();
    phases.push(
      await phase(d, 'start', ids.length, async (fail) => {
        await pool(ids, o.concurrency, async (id) => {
          const fifo = join(sig, `${id}.fifo`);
          execFileSync('mkfifo', [fifo]);
          const devnull = openSync('/dev/null', 'w');
          try {
            readers.set(id, spawn('cat', [fifo], { stdio: ['ignore', devnull, 'ignore'] }));
          } finally {
            closeSync(devnull);
          }
          const args = ['run', '-d', '--runtime', col.runtime, '--log-uri', fifo, '--mount', `type=bind,src=${sig},dst=/sig,options=rbind:ro`, col.image, id, 'sh', '-c', script];
          const r = await cd.ctr(args, { timeoutMs: 300_000 }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
          if (r.exitCode === 0) running.add(id);
          else fail({ id, message: `ctr run exited ${r.exitCode}: ${firstLine(r.stderr)}` });
        });
      }),
    );
    await sleep(o.settleMs);
    await d.read(false);
    memory.push({ state: `${running.size} tasks running`, tasks: running.size, m: d.memory() });

    const live = ids.filter((id) => running.has(id));
    phases.push(
      await phase(d, 'exec', live.length, async (fail) => {
        await pool(live, o.concurrency, async (id) => {
          const r = await cd.ctr(['task', 'exec', '--exec-id', 'x', id, 'sh', '-c', 'echo exec-ok'], { timeoutMs: 300_000 }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
          if (r.exitCode !== 0 || r.stdout !== 'exec-ok\n') fail({ id, message: `ctr task exec exited ${r.exitCode}, stdout ${JSON.stringify(r.stdout.slice(0, 80))}: ${firstLine(r.stderr)}` });
        });
      }),
    );

    phases.push(
      await phase(d, `output (${o.outputSeconds} s)`, live.length, async () => {
        const b0 = bytesRead([...readers.values()]);
        const t0 = process.hrtime.bigint();
        writeFileSync(join(sig, 'go'), '');
        await sleep(o.outputSeconds * 1000);
        const b1 = bytesRead([...readers.values()]);
        output = { bytes: b1 - b0, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
        writeFileSync(join(sig, 'stop'), '');
      }),
    );
    await sleep(o.settleMs);
    await d.read(false);
    memory.push({ state: `${running.size} tasks running, after the output phase`, tasks: running.size, m: d.memory() });

    const exitedOf = async (): Promise<Set<string>> => {
      const ls = await cd.ctr(['task', 'ls'], { timeoutMs: 120_000 });
      const out = new Set<string>();
      for (const l of ls.stdout.split('\n').slice(1)) {
        const [id, , st] = l.trim().split(/\s+/);
        if (id && st === 'STOPPED') out.add(id);
      }
      return out;
    };
    phases.push(
      await phase(d, 'stop (SIGKILL, until STOPPED)', live.length, async (fail) => {
        const killFailed = new Set<string>();
        await pool(live, o.concurrency, async (id) => {
          const r = await cd.ctr(['task', 'kill', '-s', 'KILL', id], { timeoutMs: 120_000 }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
          if (r.exitCode !== 0) {
            killFailed.add(id);
            fail({ id, message: `ctr task kill exited ${r.exitCode}: ${firstLine(r.stderr)}` });
          }
        });
        const deadline = Date.now() + 300_000;
        let stopped = await exitedOf();
        while (live.some((id) => !killFailed.has(id) && !stopped.has(id)) && Date.now() < deadline) {
          await sleep(200);
          stopped = await exitedOf();
        }
        for (const id of live) if (!killFailed.has(id) && !stopped.has(id)) fail({ id, message: 'not STOPPED within 300 s of its kill' });
      }),
    );

    phases.push(
      await phase(d, 'remove (task rm, container rm)', ids.length, async (fail) => {
        await pool(ids, o.concurrency, async (id) => {
          if (running.has(id)) {
            const r = await cd.ctr(['task', 'rm', id], { timeoutMs: 120_000 }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
            if (r.exitCode !== 0) {
              fail({ id, message: `ctr task rm exited ${r.exitCode}: ${firstLine(r.stderr)}` });
              return;
            }
          }
          const c = await cd.ctr(['containers', 'rm', id], { timeoutMs: 120_000 }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
          // a container whose run failed may not exist: only a present one must go
          if (c.exitCode !== 0 && !/not found/.test(c.stderr)) fail({ id, message: `ctr containers rm exited ${c.exitCode}: ${firstLine(c.stderr)}` });
        });
      }),
    );
    const listed = new Set((await cd.ctr(['containers', 'ls', '-q'])).stdout.split('\n').filter(Boolean));
    leftover = ids.filter((id) => listed.has(id)).length;
    await sleep(o.settleMs);
    const end = await d.read(false);
    memory.push({ state: `after removing all (${end.tasks.length} tasks left in the daemon)`, tasks: 0, m: d.memory() });
    return {
      options: o,
      phases,
      memory,
      output,
      loadBefore,
      loadAfter: loadAverage(),
      minutes: (Date.now() - started) / 60000,
      leftover,
      restarts: end.restarts - first.restarts,
    };
  } finally {
    for (const r of readers.values()) if (r.exitCode === null && r.signalCode === null) r.kill('SIGKILL');
    await removeAll(col, ids, o.concurrency).catch((e: Error) => log(`clean-up: ${e.message}`));
    rmSync(sig, { recursive: true, force: true });
    await setup.teardown();
  }
}

const MiB = 1024;
const mib = (kib: number, digits = 1) => fmt(kib / MiB, digits);
const loop = (d: EventLoopDelay | null) => (d ? `${fmt(d.maxMs, 0)} (${fmt(d.p99Ms, 0)})` : 'n/a');
const own = (d: EventLoopDelay | null) => (d?.maxOwnMs === null || d?.maxOwnMs === undefined ? 'n/a' : fmt(d.maxOwnMs, 0));

function versionLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return `${cmd}: ?`;
  }
}

export function render(r: ScaleReport): string {
  const o = r.options;
  const date = new Date().toISOString().slice(0, 10);
  const commit = versionLine('git', ['-C', REPO_ROOT, 'log', '-1', '--format=%h (%cs)']);
  const idle = r.memory[0]!.m;
  const idleRss = idle.supervisor.rssKiB + idle.worker.rssKiB;
  const idlePss = idle.supervisor.pssKiB + idle.worker.pssKiB;
  const memRows = r.memory.map(({ state, tasks, m }) => {
    const rss = m.supervisor.rssKiB + m.worker.rssKiB;
    const pss = m.supervisor.pssKiB + m.worker.pssKiB;
    const per = (total: number, base: number) => (tasks > 0 ? fmt((total - base) / MiB / tasks, 3) : '–');
    return `| ${state} | ${mib(m.supervisor.rssKiB)} | ${mib(m.worker.rssKiB)} | ${mib(rss)} | ${mib(m.supervisor.pssKiB)} | ${mib(m.worker.pssKiB)} | ${mib(pss)} | ${per(rss, idleRss)} | ${per(pss, idlePss)} |`;
  });
  const phaseRows = r.phases.map(
    (p) =>
      `| ${p.name} | ${fmt(p.wallMs / 1000, 1)} | ${p.ok} / ${p.attempted} | ${loop(p.eventLoop.worker)} | ${own(p.eventLoop.worker)} | ${loop(p.eventLoop.supervisor)} | ${own(p.eventLoop.supervisor)} | ${fmt(p.cpu.worker, 2)} | ${fmt(p.cpu.supervisor, 2)} | ${p.restarts} | ${p.load} |`,
  );
  const failures = r.phases.flatMap((p) => p.failures.map((f) => `${p.name}: ${f.id}: ${f.message}`));
  const out = r.phases.find((p) => p.name.startsWith('output'));
  return (
    `## Scale: ${o.n} containers in node mode (${date}, ${commit})\n\n` +
    `\`npm run bench -- --scale ${o.n}\`. Host: ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, kernel ${os.release()}, ` +
    `${versionLine('containerd', ['--version']).split(' ').slice(0, 3).join(' ')}, ${versionLine('runc', ['--version'])}, node ${process.version}. ` +
    `One private containerd 1.6, tsshim in node mode (\`[shim] mode = "node"\`) with the runc handler; ${o.n} containers of the busybox test image, ` +
    `each \`ctr run -d --log-uri <FIFO>\` with a \`cat\` reading its FIFO (ctr's and CRI's stdio path), ${o.concurrency} \`ctr\` at a time in every phase. ` +
    `Each container waits for a go file, then writes to stdout at full speed (\`dd if=/dev/zero bs=64k\`, 1 MiB per dd) until a stop file, then sleeps. ` +
    `Event-loop delay: \`tsshim node status\`'s eventLoop figures (a ${r.phases[0]?.eventLoop.worker?.resolutionMs ?? 10} ms timer in each process; a stall of S ms shows as S − 10 … S), read and reset at each phase's edges: max (p99) ms; "not waiting for a CPU": the largest delay minus the time the process's main thread was runnable but waited for a CPU in that interval (its schedstat), i.e. the stall the process caused itself rather than the host's load. ` +
    `Memory: VmRSS and PSS (smaps_rollup) of the supervisor and the worker, ${o.settleMs} ms after each step; per task = (total − idle daemon) / tasks. ` +
    `Load average (1/5/15 min) before: ${r.loadBefore}; at each phase's start: see the table; after: ${r.loadAfter}. Took ${fmt(r.minutes, 1)} min.\n\n` +
    `| phase | wall s | ok / attempted | worker event-loop delay, ms: max (p99) | worker: max not waiting for a CPU, ms | supervisor event-loop delay, ms: max (p99) | supervisor: max not waiting for a CPU, ms | worker CPU s | supervisor CPU s | worker restarts | load at start |\n` +
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n` +
    phaseRows.join('\n') +
    '\n\n' +
    `| daemon memory | supervisor RSS MiB | worker RSS MiB | total RSS MiB | supervisor PSS MiB | worker PSS MiB | total PSS MiB | RSS per task MiB | PSS per task MiB |\n` +
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|\n` +
    memRows.join('\n') +
    '\n\n' +
    `Output phase: ${out?.ok ?? 0} writers, ${fmt(r.output.bytes / 1e6, 0)} MB read from the FIFOs in ${fmt(r.output.seconds, 1)} s (${fmt(r.output.bytes / 1e6 / Math.max(r.output.seconds, 1e-9), 0)} MB/s aggregate). ` +
    `Containers still listed after the remove phase: ${r.leftover}. Worker restarts during the run: ${r.restarts}.\n` +
    (failures.length ? `\nFailures (${failures.length}${failures.length > 20 ? ', first 20' : ''}):\n\n${failures.slice(0, 20).map((f) => `- ${f}`).join('\n')}\n` : '\nFailures: none.\n')
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

export async function main(argv = process.argv): Promise<void> {
  const o = parseOptions(argv);
  const report = await run(o);
  const md = render(report);
  console.log(md);
  writeFileSync(join(os.tmpdir(), `tsshim-scale-${Date.now()}.json`), JSON.stringify(report, null, 2));
  if (argv.includes('--write')) writeDoc(md);
}
