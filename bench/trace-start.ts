// node dist/bench/trace-start.js [--runs 3]: where one `ctr run --rm … true` spends its time in
// node mode. A private containerd 1.6 with [shim] mode = "node" (debug on, so the daemon logs every
// RPC with its duration), warmed up, then `strace -f -tt -e trace=execve,connect,exit_group` of
// containerd and the node daemon during each traced `ctr run --rm` (then one of runc-v2 for contrast). Prints one timeline per run:
// ms since ctr started, process, what happened (strace), and the daemon's RPCs (start = logged
// time − its ms). strace slows every traced execve: the absolute figures are above an untraced run.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startContainerd, importTestImage, uniqueId } from '../test/helpers/containerd.js';
import { REPO_ROOT, isAlive, sleep, waitFor } from '../test/helpers/proc.js';
import { summarize } from './stats.js';
import { RUNC_V2, TSSHIM } from '../test/helpers/tasks.js';
import { nodePaths } from '../src/shim-api/bootstrap/node.js';
import { nodeStatus } from './columns.js';

const SHIM = join(REPO_ROOT, 'bin', 'containerd-shim-tsshim-v2');

interface Event {
  ms: number;
  pid: number;
  what: string;
}

function timeOfDayMs(hms: string): number {
  const [h, m, s] = hms.split(':');
  return (Number(h) * 3600 + Number(m) * 60 + Number(s)) * 1000;
}

const localMidnight = (d: Date) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();

function describeExec(line: string): string {
  const m = /execve\("([^"]+)", \[(.*?)\](?:\.\.\.)?, /.exec(line);
  if (!m) return line;
  const argv = [...m[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((x) => x[1]!);
  const prog = m[1]!.split('/').pop()!;
  const interesting = argv.filter((a) => ['start', 'delete', 'create', 'kill', 'state', 'daemon', 'exec', 'true', 'features'].includes(a));
  if (/containerd-shim/.test(m[1]!) || argv.some((a) => /containerd-shim/.test(a))) return `execve ${prog} ${argv.includes('start') ? 'start' : argv.includes('delete') ? 'delete' : argv.slice(-1)[0]}`;
  if (prog === 'runc') return `execve runc ${argv.find((a) => ['create', 'start', 'delete', 'kill', 'state', 'init', 'exec', 'features'].includes(a)) ?? argv.slice(1, 3).join(' ')}`;
  if (prog === 'awk' || prog === 'grep' || prog === 'cat') return `execve ${prog} ${argv.length > 1 ? argv.slice(-1)[0]!.split('/').slice(-1)[0] : '(stdin)'}`;
  return `execve ${prog} ${interesting.join(' ') || argv.slice(1, 3).join(' ')}`.trim();
}

function parseStrace(text: string, t0TimeOfDay: number, pidNames: Map<number, string>): Event[] {
  const out: Event[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(\d\d:\d\d:\d\d\.\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const ms = timeOfDayMs(m[2]!) - t0TimeOfDay;
    const rest = m[3]!;
    let what: string | undefined;
    const cloned = /^(?:clone3?|vfork|fork)\(.*\) = (\d+)$/.exec(rest) ?? /^<\.\.\. (?:clone3?|vfork|fork) resumed>.*\) = (\d+)$/.exec(rest);
    if (cloned) {
      // The parent's `clone resumed` line may come after the child's own execve: never overwrite.
      if (!pidNames.has(Number(cloned[1]))) pidNames.set(Number(cloned[1]), `fork of ${pidNames.get(pid) ?? pid}`);
      continue;
    }
    if (rest.startsWith('execve(') && !/= -1 /.test(rest)) {
      what = describeExec(rest);
      pidNames.set(pid, what.replace(/^execve /, ''));
    } else if (rest.startsWith('exit_group(')) what = `exit ${/exit_group\((\d+)/.exec(rest)?.[1] ?? '?'}: ${pidNames.get(pid) ?? '?'}`;
    else if (rest.startsWith('connect(') && /sun_path=/.test(rest)) {
      const p = /sun_path="([^"]+)"/.exec(rest)?.[1] ?? '';
      what = `connect ${p.includes('/run/containerd/s/') ? 'shim socket' : p.split('/').slice(-2).join('/')}${/= -1/.test(rest) ? ' (failed)' : ''}`;
    }
    if (what) out.push({ ms, pid, what });
  }
  return out;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[process.argv.indexOf('--runs') + 1] || 3) || 3;
  const dir = mkdtempSync('/run/tsshim-trace-');
  const config = join(dir, 'node.toml');
  // JSON log lines (ADR 0025: logrus keys, RFC 3339 time), read back below for the RPC timings.
  writeFileSync(config, 'handler = "runc"\ndebug = true\n\n[shim]\nmode = "node"\n\n[log]\nformat = "json"\n');
  // containerd passes its environment to the shims: the node-mode config, and TSSHIM_DEBUG=1 for
  // the daemon's per-RPC debug lines.
  const saved = { TSSHIM_CONFIG: process.env.TSSHIM_CONFIG, TSSHIM_DEBUG: process.env.TSSHIM_DEBUG };
  process.env.TSSHIM_CONFIG = config;
  process.env.TSSHIM_DEBUG = '1';
  const cd = await startContainerd({ name: 'trace-node' }).finally(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  let daemon: number | undefined;
  let supervisor: number | undefined;
  try {
    const image = await importTestImage(cd);
    for (let i = 0; i < 2; i++) await cd.ctr(['run', '--rm', '--runtime', TSSHIM, image, uniqueId('warm'), 'true']);
    const status = nodeStatus(cd);
    if (!status) throw new Error('no node daemon after the warm-up');
    // Supervisor and worker (one process while they are one): the worker runs runc and logs RPCs.
    daemon = status.workerPid ?? status.pid;
    supervisor = status.supervisorPid && status.supervisorPid !== daemon ? status.supervisorPid : undefined;
    const attach = [String(cd.pid), String(daemon), ...(supervisor ? [String(supervisor)] : [])];
    const logFile = nodePaths(cd.address).log;
    // The last traced run is runc-v2's on the same containerd, for contrast (strace -f on containerd
    // follows its shim's start, daemon and runc children).
    await cd.ctr(['run', '--rm', '--runtime', RUNC_V2, image, uniqueId('warm'), 'true']);
    for (let run = 0; run <= runs; run++) {
      const runtime = run < runs ? TSSHIM : RUNC_V2;
      const traceFile = join(dir, `trace-${run}.txt`);
      const strace = spawn('strace', ['-f', '-tt', '-e', 'trace=execve,connect,exit_group,clone,clone3,fork,vfork', '-s', '256', '-o', traceFile, '-p', String(cd.pid), ...(runtime === TSSHIM ? attach.slice(1).flatMap((p) => ['-p', p]) : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
      let said = '';
      strace.stderr!.on('data', (b: Buffer) => (said += b.toString()));
      await waitFor(() => (said.match(/attached/g) ?? []).length >= (runtime === TSSHIM ? attach.length : 1), 10_000);
      await sleep(300);
      const logBefore = readFileSync(logFile, 'utf8').length;
      const start = new Date();
      const h0 = process.hrtime.bigint();
      const r = await cd.ctr(['run', '--rm', '--runtime', runtime, image, uniqueId('trace'), 'true']);
      const total = Number(process.hrtime.bigint() - h0) / 1e6;
      if (r.exitCode !== 0) throw new Error(`ctr run --rm: ${r.stderr}`);
      await sleep(300);
      strace.kill('SIGINT');
      await new Promise((res) => strace.once('exit', res));
      const t0 = start.getTime() - localMidnight(start);
      const pidNames = new Map<number, string>([[cd.pid, 'containerd'], [daemon, 'worker'], ...(supervisor ? [[supervisor, 'supervisor'] as [number, string]] : [])]);
      const events = parseStrace(readFileSync(traceFile, 'utf8'), t0, pidNames);
      for (const line of readFileSync(logFile, 'utf8').slice(logBefore).split('\n')) {
        try {
          const j = logRecord(line);
          if (j.msg === 'request' && j.method && typeof j.ms === 'number') {
            events.push({ ms: j.time - j.ms - start.getTime(), pid: daemon!, what: `RPC ${j.method} begins (takes ${j.ms.toFixed(1)} ms)` });
            events.push({ ms: j.time - start.getTime(), pid: daemon!, what: `RPC ${j.method} answered` });
          } else if (j.msg === 'event forwarded') events.push({ ms: j.time - start.getTime(), pid: daemon!, what: `event ${j.topic} forwarded` });
          else if (j.msg === 'process exited') events.push({ ms: j.time - start.getTime(), pid: daemon!, what: 'log: process exited (reaped)' });
        } catch {
          /* not JSON */
        }
      }
      events.sort((a, b) => a.ms - b.ms);
      console.log(`\n### traced run ${run + 1}, ${runtime === TSSHIM ? 'tsshim node mode' : 'runc-v2 (contrast)'}: ctr run --rm … true took ${total.toFixed(1)} ms (under strace)\n`);
      console.log('| ms | pid | event |\n|---:|---:|---|');
      console.log(`| 0.0 | ctr | ctr run --rm starts |`);
      for (const e of events) {
        if (e.ms < -5 || e.ms > total + 50) continue;
        if (runtime !== TSSHIM && /^exit 0: fork of (containerd$|fork of containerd$)/.test(e.what)) continue;
        console.log(`| ${e.ms.toFixed(1)} | ${e.pid === cd.pid ? 'containerd' : e.pid === daemon && runtime === TSSHIM ? 'worker' : e.pid === supervisor && runtime === TSSHIM ? 'supervisor' : e.pid} | ${e.what} |`);
      }
      console.log(`| ${total.toFixed(1)} | ctr | ctr run --rm exits |`);
    }
    // Untraced: the same steps' durations without strace (daemon's debug log; launcher timed directly).
    const n = 20;
    const plain: number[] = [];
    const plainRunc: number[] = [];
    const rpc = new Map<string, number[]>();
    const logBefore = readFileSync(logFile, 'utf8').length;
    for (let i = 0; i < n; i++) {
      for (const [rt, xs] of (i % 2 ? [[TSSHIM, plain], [RUNC_V2, plainRunc]] : [[RUNC_V2, plainRunc], [TSSHIM, plain]]) as Array<[string, number[]]>) {
        const h = process.hrtime.bigint();
        await cd.ctr(['run', '--rm', '--runtime', rt, image, uniqueId('plain'), 'true']);
        xs.push(Number(process.hrtime.bigint() - h) / 1e6);
      }
    }
    for (const line of readFileSync(logFile, 'utf8').slice(logBefore).split('\n')) {
      try {
        const j = logRecord(line);
        if (j.msg === 'request' && j.method && typeof j.ms === 'number') rpc.set(j.method, [...(rpc.get(j.method) ?? []), j.ms]);
      } catch {
        /* not JSON */
      }
    }
    const bundle = join(dir, 'bundle');
    mkdirSync(bundle);
    const env = { ...process.env, TSSHIM_CONFIG: config };
    const launch = (args: string[]) => {
      const h = process.hrtime.bigint();
      const r = spawnSync(SHIM, args, { cwd: bundle, input: '', env, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
      return Number(process.hrtime.bigint() - h) / 1e6;
    };
    const startMs: number[] = [];
    const deleteMs: number[] = [];
    writeFileSync(join(bundle, 'tsshim-deleted.pb'), '');
    for (let i = 0; i < n; i++) {
      startMs.push(launch(['-namespace', cd.namespace, '-address', cd.address, '-publish-binary', cd.binaries.containerd, '-id', `direct-${i}`, 'start']));
      deleteMs.push(launch(['-namespace', cd.namespace, '-address', cd.address, '-id', `direct-${i}`, '-bundle', bundle, 'delete']));
    }
    const line = (name: string, xs: number[]) => {
      const s = summarize(xs);
      console.log(`| ${name} | ${s.n} | ${s.median.toFixed(1)} | ${s.p10.toFixed(1)}–${s.p90.toFixed(1)} |`);
    };
    console.log(`\n### untraced, same containerd (daemon debug log on), ${n} runs\n`);
    console.log('| step | n | median ms | p10–p90 ms |\n|---|---:|---:|---:|');
    line('`ctr run --rm … true`, whole, runc-v2 (interleaved, same containerd)', plainRunc);
    line('`ctr run --rm … true`, whole, tsshim node mode', plain);
    line('launcher `start` fast path (sh; daemon already serves the namespace), run directly', startMs);
    for (const m of ['Create', 'Start', 'Wait', 'State', 'Delete', 'Shutdown']) if (rpc.has(m)) line(`RPC ${m} in the daemon`, rpc.get(m)!);
    line('launcher `delete` fast path (sh + cat of the DeleteResponse), run directly', deleteMs);
  } finally {
    await cd.stop();
    for (const pid of [supervisor, daemon]) {
      if (pid && isAlive(pid)) {
        process.kill(pid, 'SIGTERM');
        await waitFor(() => !isAlive(pid), 10_000);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

/** One JSON log line of the daemon, its time (RFC 3339, nanoseconds) as ms since the epoch; throws if not JSON. */
function logRecord(line: string): { time: number; msg: string; method?: string; ms?: number; topic?: string } {
  const j = JSON.parse(line) as { time: string | number; msg: string; method?: string; ms?: number; topic?: string };
  const time = typeof j.time === 'number' ? j.time : Date.parse(String(j.time).replace(/(\.\d{3})\d+/, '$1'));
  return { ...j, time };
}
