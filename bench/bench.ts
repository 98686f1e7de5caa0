// npm run bench [-- --runs 20 --containers 10 --write]: tsshim vs io.containerd.runc.v2
// side by side on one private containerd, interleaved; medians and ratios, no thresholds.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import os from 'node:os';
import { startContainerd, importTestImage, uniqueId, REPO_ROOT, type PrivateContainerd } from '../test/helpers/containerd.js';
import { findProcesses } from '../test/helpers/proc.js';
import { RUNTIME_TYPE as TSSHIM } from '../src/shim-api/runtime-type.js';

const RUNC = 'io.containerd.runc.v2';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]!;
};
const median = (xs: number[]) => quantile(xs, 0.5);
const fmt = (n: number, d = 1) => n.toFixed(d);

async function runLatency(cd: PrivateContainerd, image: string, runs: number) {
  const t: Record<string, number[]> = { [RUNC]: [], [TSSHIM]: [] };
  for (let i = 0; i < runs; i++) {
    for (const rt of i % 2 === 0 ? [RUNC, TSSHIM] : [TSSHIM, RUNC]) {
      const id = uniqueId('bench');
      const t0 = process.hrtime.bigint();
      const r = await cd.ctr(['run', '--rm', '--runtime', rt, image, id, 'true']);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.exitCode !== 0) throw new Error(`${rt} run failed: ${r.stderr}`);
      t[rt]!.push(ms);
    }
  }
  return t;
}

function memOf(pids: number[]) {
  let rss = 0;
  let pss = 0;
  for (const pid of pids) {
    try {
      rss += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
      pss += Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))![1]);
    } catch {
      /* gone */
    }
  }
  return { rssKb: rss, pssKb: pss };
}

async function shimMemory(cd: PrivateContainerd, image: string, n: number) {
  const out: Record<string, { rssKb: number; pssKb: number; shims: number }> = {};
  for (const rt of [RUNC, TSSHIM]) {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = uniqueId('mem');
      const r = await cd.ctr(['run', '-d', '--runtime', rt, image, id, 'sleep', '300']);
      if (r.exitCode !== 0) throw new Error(r.stderr);
      ids.push(id);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const marker = rt === RUNC ? 'containerd-shim-runc-v2' : 'containerd-shim-tsshim-v2';
    const pids = findProcesses((argv) => argv.some((a) => a.includes(marker)) && argv.includes(cd.address) && !argv.includes('start') && !argv.includes('delete')).map((p) => p.pid);
    const m = memOf(pids);
    out[rt] = { rssKb: m.rssKb / n, pssKb: m.pssKb / n, shims: pids.length };
    for (const id of ids) {
      await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    }
    for (const id of ids) {
      for (let k = 0; k < 50; k++) {
        const r = await cd.ctr(['task', 'rm', id]);
        if (r.exitCode === 0) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      await cd.ctr(['c', 'rm', id]);
    }
  }
  return out;
}

function timeCommand(cmd: string, args: string[], runs: number): number {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync(cmd, args, { stdio: 'ignore' });
    xs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(xs);
}

async function main() {
  const runs = arg('runs', 20);
  const containers = arg('containers', 10);
  const cd = await startContainerd({ name: 'bench' });
  let md = '';
  try {
    const image = await importTestImage(cd);
    await cd.ctr(['run', '--rm', '--runtime', TSSHIM, image, uniqueId('warm'), 'true']);
    await cd.ctr(['run', '--rm', '--runtime', RUNC, image, uniqueId('warm'), 'true']);
    const lat = await runLatency(cd, image, runs);
    const mem = await shimMemory(cd, image, containers);
    const shim = join(REPO_ROOT, 'bin', 'containerd-shim-tsshim-v2');
    const startup = {
      runc: timeCommand('/usr/bin/containerd-shim-runc-v2', ['-v'], 20),
      tsshim: timeCommand(shim, ['-v'], 20),
      node: timeCommand(process.execPath, ['-e', '0'], 20),
    };
    const r = (a: number, b: number) => `${fmt(a / b, 2)}×`;
    const rows = [
      ['`ctr run --rm … true`, median ms', fmt(median(lat[RUNC]!)), fmt(median(lat[TSSHIM]!)), r(median(lat[TSSHIM]!), median(lat[RUNC]!))],
      ['`ctr run --rm … true`, p90 ms', fmt(quantile(lat[RUNC]!, 0.9)), fmt(quantile(lat[TSSHIM]!, 0.9)), r(quantile(lat[TSSHIM]!, 0.9), quantile(lat[RUNC]!, 0.9))],
      [`shim RSS per running container (${containers} containers), MiB`, fmt(mem[RUNC]!.rssKb / 1024), fmt(mem[TSSHIM]!.rssKb / 1024), r(mem[TSSHIM]!.rssKb, mem[RUNC]!.rssKb)],
      [`shim PSS per running container (${containers} containers), MiB`, fmt(mem[RUNC]!.pssKb / 1024), fmt(mem[TSSHIM]!.pssKb / 1024), r(mem[TSSHIM]!.pssKb, mem[RUNC]!.pssKb)],
      ['shim binary `-v`, median ms (node -e 0: ' + fmt(startup.node) + ' ms)', fmt(startup.runc), fmt(startup.tsshim), r(startup.tsshim, startup.runc)],
    ];
    const date = new Date().toISOString().slice(0, 10);
    md = `## ${date}: ${runs} interleaved runs, ${containers} containers\n\n` +
      `Host: ${os.cpus().length} CPUs, kernel ${os.release()}, ${execFileSync('containerd', ['--version']).toString().trim().split(' ').slice(0, 3).join(' ')}, ${execFileSync('runc', ['--version']).toString().split('\n')[0]}, node ${process.version}. Shared, noisy machine: medians.\n\n` +
      `| measure | ${RUNC} | ${TSSHIM} | tsshim / runc-v2 |\n|---|---:|---:|---:|\n` +
      rows.map((x) => `| ${x.join(' | ')} |`).join('\n') + '\n';
    console.log(md);
  } finally {
    await cd.stop();
  }
  if (process.argv.includes('--write')) {
    const file = join(REPO_ROOT, 'docs', 'benchmarks.md');
    const head = '# Benchmarks\n\n`npm run bench -- --write` appends a dated section. Numbers are medians on a shared 2-core VM.\n\n';
    const prev = existsSync(file) ? readFileSync(file, 'utf8').replace(head, '') : '';
    writeFileSync(file, head + md + '\n' + prev);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
