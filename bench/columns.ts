// The three columns of the bench and the two private containerd 1.6 instances behind them:
//
//   runc-v2      io.containerd.runc.v2 on containerd A
//   tsshim pod   io.containerd.tsshim.v2 on containerd A, TSSHIM_CONFIG says [shim] mode = "pod"
//   tsshim node  io.containerd.tsshim.v2 on containerd B, TSSHIM_CONFIG says [shim] mode = "node"
//
// containerd passes its environment to the shims it starts, so each containerd is started with
// its own TSSHIM_CONFIG (as test/integration/node-mode.test.ts does). Both use the runc handler.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startContainerd, importTestImage, type PrivateContainerd } from '../test/helpers/containerd.js';
import { REPO_ROOT, findProcesses, isAlive, waitFor } from '../test/helpers/proc.js';
import { RUNC_V2, TSSHIM } from '../test/helpers/tasks.js';
import type { NodeStatus } from '../src/shim-api/bootstrap/node.js';

export type ColumnKey = 'runc' | 'pod' | 'node';

export interface Column {
  key: ColumnKey;
  label: string;
  runtime: string;
  cd: PrivateContainerd;
  image: string;
  /** Every process of this column's shim for its containerd (daemons only: not start/delete invocations). */
  shimPids(): number[];
}

const TSSHIM_CLI = join(REPO_ROOT, 'bin', 'tsshim');

export function nodeStatus(cd: PrivateContainerd): NodeStatus | undefined {
  const r = spawnSync(TSSHIM_CLI, ['node', 'status', '--json', '--address', cd.address], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) return undefined;
  try {
    return JSON.parse(r.stdout) as NodeStatus;
  } catch {
    return undefined;
  }
}

/** Shim daemons of one binary whose argv names this containerd (`-address <sock>`), start/delete invocations excluded. */
function daemonsOf(cd: PrivateContainerd, binary: string): number[] {
  return findProcesses((argv) => {
    const a = argv.indexOf('-address');
    return (
      argv.some((x) => x === binary || x.endsWith('/' + binary)) &&
      a >= 0 &&
      argv[a + 1] === cd.address &&
      !argv.includes('start') &&
      !argv.includes('delete')
    );
  }).map((p) => p.pid);
}

export interface Setup {
  columns: Column[];
  /** How the columns map onto containerd instances, for the output. */
  description: string;
  teardown(): Promise<void>;
}

/** keys: the columns to set up (only 'node': containerd A is not started). */
export async function setupColumns(keys: readonly ColumnKey[] = ['runc', 'pod', 'node']): Promise<Setup> {
  const dir = mkdtempSync('/run/tsshim-bench-');
  const podConfig = join(dir, 'pod.toml');
  const nodeConfig = join(dir, 'node.toml');
  writeFileSync(podConfig, 'handler = "runc"\n\n[shim]\nmode = "pod"\n');
  writeFileSync(nodeConfig, 'handler = "runc"\n\n[shim]\nmode = "node"\n');
  const saved = process.env.TSSHIM_CONFIG;
  const restore = () => {
    if (saved === undefined) delete process.env.TSSHIM_CONFIG;
    else process.env.TSSHIM_CONFIG = saved;
  };
  const started: PrivateContainerd[] = [];
  let nodeCd: PrivateContainerd | undefined;
  const teardown = async () => {
    const status = nodeCd ? nodeStatus(nodeCd) : undefined;
    for (const cd of started) await cd.stop();
    // The node daemon outlives its tasks and its containerd by design: end it like an operator
    // (SIGTERM to its supervisor, which ends its worker), then anything of it still alive.
    for (const pid of [status?.supervisorPid, status?.workerPid, status?.pid]) {
      if (pid && isAlive(pid)) {
        process.kill(pid, 'SIGTERM');
        if (!(await waitFor(() => !isAlive(pid), 10_000))) process.kill(pid, 'SIGKILL');
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const wantA = keys.includes('runc') || keys.includes('pod');
    let a: PrivateContainerd | undefined;
    if (wantA) {
      process.env.TSSHIM_CONFIG = podConfig;
      a = await startContainerd({ name: 'bench-pod' });
      started.push(a);
    }
    process.env.TSSHIM_CONFIG = nodeConfig;
    const b = await startContainerd({ name: 'bench-node' });
    started.push(b);
    nodeCd = b;
    restore();
    const [imageA, imageB] = await Promise.all([a ? importTestImage(a) : Promise.resolve(''), importTestImage(b)]);
    const columns: Column[] = [];
    if (a) {
      columns.push(
        { key: 'runc', label: 'runc-v2', runtime: RUNC_V2, cd: a, image: imageA, shimPids: () => daemonsOf(a, 'containerd-shim-runc-v2') },
        { key: 'pod', label: 'tsshim pod', runtime: TSSHIM, cd: a, image: imageA, shimPids: () => daemonsOf(a, 'containerd-shim-tsshim-v2') },
      );
    }
    columns.push(
      {
        key: 'node',
        label: 'tsshim node',
        runtime: TSSHIM,
        cd: b,
        image: imageB,
        shimPids: () => {
          const s = nodeStatus(b);
          const pids = new Set(daemonsOf(b, 'containerd-shim-tsshim-v2'));
          for (const p of [s?.supervisorPid, s?.workerPid, s?.pid]) if (p) pids.add(p);
          return [...pids];
        },
      },
    );
    return {
      columns: columns.filter((c) => keys.includes(c.key)),
      description:
        'two private containerd 1.6 instances: A (TSSHIM_CONFIG [shim] mode = "pod") runs the runc-v2 and tsshim-pod columns, ' +
        'B (TSSHIM_CONFIG [shim] mode = "node") the tsshim-node column; tsshim uses the runc handler in both',
      teardown,
    };
  } catch (e) {
    restore();
    await teardown();
    throw e;
  }
}
