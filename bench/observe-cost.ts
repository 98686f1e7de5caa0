// What observability costs a pod shim (ADR 0025): the launcher's `start` (Node boot, config,
// logger, listen, answer) timed to its answer, and the daemon's RSS once serving, for two
// tsshim checkouts (e.g. main before this change and now) and with [metrics]/[tracing] on.
// Interleaved rounds, medians. No containerd: `start` in a scratch bundle with a fake address.
//   node dist/bench/observe-cost.js [--rounds 15] [--base /path/to/other/checkout]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'ttrpc-ts';
import { SERVICE, task } from '../src/shim-api/pb.js';
import { REPO_ROOT } from '../test/helpers/proc.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : dflt;
};
const rounds = Number(opt('--rounds', '15'));
const base = opt('--base', '');

const dir = mkdtempSync('/run/tsshim-observe-cost-');
const plain = join(dir, 'plain.toml');
const observed = join(dir, 'observed.toml');
writeFileSync(plain, 'handler = "runc"\n');
// A tracing endpoint nobody listens on: spans are dropped, and cost nothing more than the queue.
writeFileSync(observed, `handler = "runc"\n[metrics]\npod_dir = "${dir}/metrics"\n[tracing]\nendpoint = "http://127.0.0.1:9/v1/traces"\n`);

interface Variant {
  name: string;
  repo: string;
  config: string;
}
const variants: Variant[] = [
  ...(base ? [{ name: 'base', repo: base, config: plain }] : []),
  { name: 'now, off', repo: REPO_ROOT, config: plain },
  { name: 'now, metrics+tracing on', repo: REPO_ROOT, config: observed },
];

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** CPU time the process has used (ns on CPU, /proc/PID/schedstat): less sensitive to machine load than wall time. */
function cpuMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

async function once(v: Variant, n: number): Promise<{ ms: number; rss: number; cpu: number }> {
  const id = `oc-${n}`;
  const bundle = join(dir, id);
  mkdirSync(join(bundle, 'rootfs'), { recursive: true });
  writeFileSync(join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', process: { args: ['true'], cwd: '/' }, root: { path: 'rootfs' } }));
  const started = process.hrtime.bigint();
  const r = spawnSync(join(v.repo, 'bin', 'containerd-shim-tsshim-v2'), ['-namespace', 'observe-cost', '-address', join(dir, 'fake.sock'), '-publish-binary', '/bin/false', '-id', id, 'start'], {
    cwd: bundle,
    input: Buffer.alloc(0),
    env: { ...process.env, TSSHIM_CONFIG: v.config },
    encoding: 'buffer',
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.status !== 0) throw new Error(`${v.name}: start exited ${r.status}: ${r.stderr.toString()}`);
  const address = r.stdout.toString();
  const client = await Client.connect(address.slice('unix://'.length));
  try {
    const conn = task.ConnectResponse.decode(await client.call(SERVICE.Task, 'Connect', task.ConnectRequest.encode({ id }).finish()));
    const cpu = cpuMs(conn.shimPid); // boot to serving, this Connect included
    await new Promise((res) => setTimeout(res, 300)); // after-start steps (the metrics endpoint) done
    const rss = rssKiB(conn.shimPid);
    await client.call(SERVICE.Task, 'Shutdown', task.ShutdownRequest.encode({ id, now: false }).finish());
    return { ms, rss, cpu };
  } finally {
    client.close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const results = new Map<string, { ms: number[]; rss: number[]; cpu: number[] }>(variants.map((v) => [v.name, { ms: [], rss: [], cpu: [] }]));
let n = 0;
try {
  for (let i = 0; i < rounds; i++) {
    for (const v of variants) {
      const x = await once(v, n++);
      results.get(v.name)!.ms.push(x.ms);
      results.get(v.name)!.rss.push(x.rss);
      results.get(v.name)!.cpu.push(x.cpu);
    }
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`pod shim start (launcher to answer) and RSS once serving; ${rounds} interleaved rounds; load ${load}`);
  for (const [name, r] of results) {
    console.log(
      `${name.padEnd(26)} start median ${median(r.ms).toFixed(1)} ms (min ${Math.min(...r.ms).toFixed(1)}, max ${Math.max(...r.ms).toFixed(1)})  daemon CPU to serving median ${median(r.cpu).toFixed(1)} ms (min ${Math.min(...r.cpu).toFixed(1)})  RSS median ${(median(r.rss) / 1024).toFixed(1)} MiB`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
