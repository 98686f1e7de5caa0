// The bench's gVisor part: tsshim's gvisor handler beside gVisor's own shim, through CRI.
//
//   tsshim-gvisor  io.containerd.tsshim.v2, handler gvisor (pod mode), the pinned runsc, ptrace, network host
//   runsc-v1       gVisor's own shim, patched: oom_score_adj EPERM tolerated (no CAP_SYS_RESOURCE here):
//                  containerd-shim-runsc-v1 (io.containerd.runsc.v1) by absolute path (runtime_path),
//                  the same runsc, platform and network
//
// Why CRI, not `ctr run`: gVisor's own shim does not return from Create of a container without CRI's
// io.kubernetes.cri.container-type annotation (ADR 0017), so both columns are driven like kubelet
// drives them: one private containerd 2.x (the patched shim needs >= 1.7: its start answers in JSON)
// with CRI, host-network pods (no CNI), the busybox test image, CRI's sandbox ("pause") image.
// Per sample, interleaved (the columns in alternating order, so neither is always first):
//   RunPodSandbox, then CreateContainer + StartContainer of `sleep`, then ExecSync `true`, then
//   StopPodSandbox + RemovePodSandbox, each timed on its own (the CRI call's wall time, from this
//   process, with grpc-js over the unix socket).
// Per round: `pods` pods with one `sleep` container each run at once; the shim daemons' RSS/PSS
// (/proc: tsshim's per-pod Node daemon; runsc-v1's Go daemons, one per container with its default
// of no grouping, so two per pod; not the runsc sandboxes, the same program under both) after `settleMs`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { connectCri, criV1, type CriClient } from '../src/client/cri.js';
import { startContainerd, type PrivateContainerd } from '../test/helpers/containerd.js';
import { containerdUnavailable } from '../test/helpers/containerd-version.js';
import { appContainerConfig, criConfig, importCriImages, TSSHIM_RUNTIME_TYPE } from '../test/helpers/cri.js';
import {
  GVISOR_PEER_RUNSC,
  GVISOR_PLATFORM,
  GVISOR_SHIM_PATCHED,
  GVISOR_SHIM_PATCHED_LABEL,
  GVISOR_SHIM_RUNTIME,
  gvisorShimToml,
  patchedShimDetail,
  patchedShimUnavailable,
} from '../test/helpers/gvisor-peer.js';
import { findProcesses, sleep } from '../test/helpers/proc.js';
import { memoryOf, type Memory } from './procstat.js';
import { loadAverage } from './measures.js';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { REPO_ROOT } from '../test/helpers/proc.js';
import { cell, ratio, summarize, type Summary } from './stats.js';

const { NamespaceMode } = criV1;

export type GvisorKey = 'tsshim' | 'ref';
const KEYS: GvisorKey[] = ['tsshim', 'ref'];

export interface GvisorBenchOptions {
  rounds: number;
  samples: number;
  pods: number;
  settleMs: number;
}

interface GvColumn {
  key: GvisorKey;
  label: string;
  handler: string;
  /** The shim daemon's binary name (its argv[0] ends with it). */
  shimBinary: string;
}

const COLUMNS: GvColumn[] = [
  { key: 'tsshim', label: 'tsshim-gvisor', handler: 'tsshim-gvisor', shimBinary: 'containerd-shim-tsshim-v2' },
  { key: 'ref', label: 'runsc-v1 (gVisor\'s own shim, patched)', handler: 'runsc-v1', shimBinary: 'containerd-shim-runsc-v1' },
];

type Per<T> = Record<GvisorKey, T>;
const per = <T>(f: () => T): Per<T> => ({ tsshim: f(), ref: f() });

interface Results {
  runPod: Per<number[]>;
  createStart: Per<number[]>;
  exec: Per<number[]>;
  stopRemove: Per<number[]>;
  memory: Per<Memory[]>;
}

/** Why the gVisor part cannot run here, or undefined. */
export function gvisorBenchUnavailable(): string | undefined {
  return containerdUnavailable('2') ?? patchedShimUnavailable('2');
}

const elapsedMs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = process.hrtime.bigint();
  const v = await f();
  return [v, elapsedMs(t0)];
}

/** Shim daemons of this containerd (argv names its socket after -address; start/delete invocations excluded). */
function shimDaemons(cd: PrivateContainerd, binary: string): number[] {
  return findProcesses((argv) => {
    const a = argv.indexOf('-address');
    return argv.some((x) => x === binary || x.endsWith('/' + binary)) && a >= 0 && argv[a + 1] === cd.address && !argv.includes('start') && !argv.includes('delete');
  }).map((p) => p.pid);
}

class Pods {
  constructor(
    readonly cri: CriClient,
    readonly logRoot: string,
  ) {}

  config(name: string) {
    const uid = randomBytes(8).toString('hex');
    const logDirectory = join(this.logRoot, uid);
    mkdirSync(logDirectory, { recursive: true });
    const ns = { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD };
    return { ns, config: criV1.PodSandboxConfig.fromPartial({ metadata: { name, uid, namespace: 'tsshim-bench', attempt: 0 }, logDirectory, linux: { securityContext: { namespaceOptions: ns } } }) };
  }

  /** Pod + one `sleep` container; the three timings. */
  async start(col: GvColumn): Promise<{ podId: string; containerId: string; runPodMs: number; createStartMs: number }> {
    const { ns, config } = this.config(`bench-${col.handler}`);
    const [{ podSandboxId: podId }, runPodMs] = await timed(() => this.cri.runtime.runPodSandbox({ config, runtimeHandler: col.handler }, { timeoutMs: 120_000 }));
    try {
      const [containerId, createStartMs] = await timed(async () => {
        const app = { ...appContainerConfig({ logPath: 'app.log', namespaceOptions: ns }), command: ['sleep', '36000'] };
        const { containerId } = await this.cri.runtime.createContainer({ podSandboxId: podId, sandboxConfig: config, config: app }, { timeoutMs: 60_000 });
        await this.cri.runtime.startContainer({ containerId }, { timeoutMs: 60_000 });
        return containerId;
      });
      return { podId, containerId, runPodMs, createStartMs };
    } catch (e) {
      await this.remove(podId).catch(() => undefined);
      throw e;
    }
  }

  async remove(podId: string): Promise<number> {
    const [, ms] = await timed(async () => {
      await this.cri.runtime.stopPodSandbox({ podSandboxId: podId }, { timeoutMs: 60_000 });
      await this.cri.runtime.removePodSandbox({ podSandboxId: podId }, { timeoutMs: 60_000 });
    });
    return ms;
  }
}

export interface GvisorBenchResult {
  markdown: string;
}

/** Runs the gVisor part; `log` gets progress lines. */
export async function gvisorBench(o: GvisorBenchOptions, log: (m: string) => void): Promise<GvisorBenchResult> {
  const why = gvisorBenchUnavailable();
  if (why) return { markdown: `### gVisor: tsshim-gvisor beside gVisor's own shim\n\nNot run: ${why}.\n` };
  const started = Date.now();
  const loadBefore = loadAverage();
  const dir = mkdtempSync('/run/tsshim-bench-gvisor-');
  const tsshimToml = join(dir, 'tsshim-gvisor.toml');
  const refToml = join(dir, 'runsc-v1.toml');
  const modeToml = join(dir, 'pod-mode.toml');
  writeFileSync(tsshimToml, `handler = "gvisor"\nname = "bench-gvisor"\nbinary = ${JSON.stringify(GVISOR_PEER_RUNSC)}\n\n[options]\nplatform = "${GVISOR_PLATFORM}"\nnetwork = "host"\n`);
  writeFileSync(refToml, gvisorShimToml('host'));
  writeFileSync(modeToml, '[shim]\nmode = "pod"\n');
  const saved = process.env.TSSHIM_CONFIG;
  let cd: PrivateContainerd | undefined;
  let cri: CriClient | undefined;
  const r: Results = { runPod: per(() => []), createStart: per(() => []), exec: per(() => []), stopRemove: per(() => []), memory: per(() => []) };
  try {
    process.env.TSSHIM_CONFIG = modeToml; // containerd passes it on to the shims it starts
    cd = await startContainerd({
      name: 'bench-gvisor',
      containerd: '2',
      extraConfig: criConfig(
        {
          'tsshim-gvisor': { runtimeType: TSSHIM_RUNTIME_TYPE, configPath: tsshimToml },
          'runsc-v1': { runtimeType: GVISOR_SHIM_RUNTIME, configPath: refToml, runtimePath: GVISOR_SHIM_PATCHED },
        },
        { cniDir: join(dir, 'cni') },
      ),
    });
    if (saved === undefined) delete process.env.TSSHIM_CONFIG;
    else process.env.TSSHIM_CONFIG = saved;
    await importCriImages(cd);
    cri = await connectCri(cd.address);
    const pods = new Pods(cri, join(dir, 'logs'));
    // Warm-up: one pod per column (first start of each shim binary, page cache).
    for (const col of COLUMNS) await pods.remove((await pods.start(col)).podId);
    for (let round = 0; round < o.rounds; round++) {
      log(`gvisor round ${round + 1}/${o.rounds}: ${o.samples} pod starts, execs and removals per column`);
      for (let s = 0; s < o.samples; s++) {
        const order = (round * o.samples + s) % 2 === 0 ? COLUMNS : [...COLUMNS].reverse();
        for (const col of order) {
          const p = await pods.start(col);
          r.runPod[col.key].push(p.runPodMs);
          r.createStart[col.key].push(p.createStartMs);
          try {
            const [ex, ms] = await timed(() => cri!.runtime.execSync({ containerId: p.containerId, cmd: ['true'], timeout: 30n }, { timeoutMs: 60_000 }));
            if (ex.exitCode !== 0) throw new Error(`${col.label}: ExecSync true exited ${ex.exitCode}`);
            r.exec[col.key].push(ms);
          } finally {
            r.stopRemove[col.key].push(await pods.remove(p.podId));
          }
        }
      }
      for (const col of round % 2 === 0 ? COLUMNS : [...COLUMNS].reverse()) {
        log(`gvisor round ${round + 1}/${o.rounds}: ${col.label}: ${o.pods} pods for memory`);
        const ids: string[] = [];
        try {
          for (let i = 0; i < o.pods; i++) ids.push((await pods.start(col)).podId);
          await sleep(o.settleMs);
          const pids = shimDaemons(cd, col.shimBinary);
          if (pids.length === 0) throw new Error(`${col.label}: no ${col.shimBinary} daemon found for ${cd.address}`);
          r.memory[col.key].push(memoryOf(pids));
        } finally {
          for (const id of ids) await pods.remove(id).catch((e: Error) => log(`${col.label}: removing pod ${id}: ${e.message}`));
        }
      }
    }
    const left = (await cri.runtime.listPodSandbox({})).items.length;
    if (left > 0) log(`gvisor: ${left} pods still listed after the bench (teardown removes them)`);
    return { markdown: render(o, r, cd, (Date.now() - started) / 60000, `${loadBefore} before, ${loadAverage()} after`) };
  } finally {
    if (process.env.TSSHIM_CONFIG === modeToml) {
      if (saved === undefined) delete process.env.TSSHIM_CONFIG;
      else process.env.TSSHIM_CONFIG = saved;
    }
    cri?.close();
    await cd?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function commit(): string {
  try {
    return execFileSync('git', ['-C', REPO_ROOT, 'log', '-1', '--format=%h (%cs)'], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

function render(o: GvisorBenchOptions, r: Results, cd: PrivateContainerd, minutes: number, load: string): string {
  const rows: Array<[string, Per<Summary>, number]> = [];
  const add = (name: string, f: (k: GvisorKey) => number[], digits = 1) => rows.push([name, { tsshim: summarize(f('tsshim')), ref: summarize(f('ref')) }, digits]);
  add('RunPodSandbox (host network), ms', (k) => r.runPod[k]);
  add('CreateContainer + StartContainer (`sleep`), ms', (k) => r.createStart[k]);
  add('ExecSync `true`, ms', (k) => r.exec[k]);
  add('StopPodSandbox + RemovePodSandbox, ms', (k) => r.stopRemove[k]);
  const MiB = 1024;
  add(`shim RSS, ${o.pods} pods, MiB`, (k) => r.memory[k].map((m) => m.rssKiB / MiB));
  add(`shim PSS, ${o.pods} pods, MiB`, (k) => r.memory[k].map((m) => m.pssKiB / MiB));
  add(`shim RSS per pod, ${o.pods} pods, MiB`, (k) => r.memory[k].map((m) => m.rssKiB / MiB / o.pods), 2);
  add(`shim PSS per pod, ${o.pods} pods, MiB`, (k) => r.memory[k].map((m) => m.pssKiB / MiB / o.pods), 2);
  add(`shim processes, ${o.pods} pods`, (k) => r.memory[k].map((m) => m.processes), 0);
  return (
    `### gVisor: tsshim-gvisor beside gVisor's own shim (runsc-v1), through CRI: ${o.rounds} interleaved rounds\n\n` +
    `runsc-v1 is ${GVISOR_SHIM_PATCHED_LABEL}: ${GVISOR_SHIM_PATCHED} (${patchedShimDetail()}). ` +
    `Both on one private containerd 2.x (${cd.binaries.containerd}) with CRI, the same runsc, platform ${GVISOR_PLATFORM}, network host ` +
    `(host-network pods, no CNI); tsshim in pod mode (one Node daemon per pod); runsc-v1 with its defaults (shim grouping off: one Go daemon per container, ` +
    `the pod's sandbox included, so two per pod here; its \`grouping = true\` is read only from a config.toml in /run/containerd/runsc, /etc/containerd/runsc or the bundle, pkg/shim/v1/runsc/options.go). ` +
    `Driven through CRI, not \`ctr run\`: gVisor's own shim does not return from Create of a plain ctr container (ADR 0017). ` +
    `Per sample, columns in alternating order: RunPodSandbox; CreateContainer + StartContainer of \`sleep\`; ExecSync \`true\`; ` +
    `StopPodSandbox + RemovePodSandbox, each the wall time of its CRI calls from the bench process; ${o.samples} samples per column per round, ` +
    `cell = median (p10–p90) over all rounds. Memory: ${o.pods} pods with one container each, the shim daemons only ` +
    `(not the runsc sandboxes and gofers, the same program under both), after ${o.settleMs} ms; median (min–max) over the rounds. ` +
    `Host: ${os.cpus().length} CPUs, kernel ${os.release()}, node ${process.version}, tsshim at ${commit()}; load average (1/5/15 min) ${load}. ` +
    `Took ${minutes.toFixed(1)} min.\n\n` +
    `| measure | tsshim-gvisor | runsc-v1 (gVisor's own shim, patched) | tsshim-gvisor / runsc-v1 |\n|---|---:|---:|---:|\n` +
    rows.map(([name, s, d]) => `| ${name} | ${KEYS.map((k) => cell(s[k], d)).join(' | ')} | ${ratio(s.tsshim, s.ref)} |`).join('\n') +
    '\n'
  );
}
