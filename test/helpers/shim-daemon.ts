// A shim daemon started directly with containerd's bootstrap contract (`<shim> ... start`),
// without containerd: tsshim (through its launcher, bin/) or containerd-shim-runc-v2, for
// measurements that poke the ttrpc socket itself (backpressure, fuzz). No task is created;
// stop() sends Shutdown, so the daemon exits as it would after its last task.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'ttrpc-ts';
import { SERVICE, task } from '../../src/shim-api/pb.js';
import { REPO_ROOT, findProcesses, isAlive, waitFor } from './proc.js';

export type ShimKind = 'tsshim' | 'runc-v2';

export interface ShimDaemon {
  readonly kind: ShimKind;
  readonly id: string;
  /** The ttrpc socket path. */
  readonly socket: string;
  readonly pid: number;
  /** Resident set size now, in KiB (0 once the process is gone). */
  rssKiB(): number;
  alive(): boolean;
  /** Shutdown over ttrpc, wait for exit (SIGKILL after 10 s), remove the scratch dir. */
  stop(): Promise<void>;
}

export const SHIM_BINARIES: Record<ShimKind, string> = {
  tsshim: join(REPO_ROOT, 'bin', 'containerd-shim-tsshim-v2'),
  'runc-v2': 'containerd-shim-runc-v2',
};

const NS = 'tsshim-daemon';

export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export async function startShimDaemon(kind: ShimKind, id: string): Promise<ShimDaemon> {
  const dir = mkdtempSync('/run/tsshim-daemon-');
  // containerd's address only names the socket (a hash of it); nothing has to listen there.
  // TTRPC_ADDRESS points nowhere: the daemon has no task, so publishes nothing.
  const address = join(dir, 'containerd.sock');
  // runc-v2's start reads the bundle's config.json (for its grouping annotation).
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations: {} }));
  // Both daemons log into the bundle's `log` FIFO, which containerd reads; here a cat drains it
  // (runc-v2's daemon exits if it cannot open it; a full FIFO would stall or grow the shim).
  execFileSync('mkfifo', ['-m', '600', join(dir, 'log')]);
  const logReader = spawn('cat', [join(dir, 'log')], { stdio: ['ignore', 'ignore', 'ignore'] });
  const r = spawnSync(SHIM_BINARIES[kind], ['-namespace', NS, '-address', address, '-publish-binary', '/bin/false', '-id', id, 'start'], {
    cwd: dir,
    input: '',
    env: { ...process.env, TTRPC_ADDRESS: join(dir, 'events.sock') },
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    logReader.kill();
    throw new Error(`${kind} start failed (status ${r.status}): ${r.stderr}${r.stdout}`);
  }
  const out = r.stdout.trim();
  const socket = out.replace(/^unix:\/\//, '');
  const pids = findProcesses((argv) => {
    const i = argv.indexOf('-id');
    const a = argv.indexOf('-address');
    return i >= 0 && argv[i + 1] === id && a >= 0 && argv[a + 1] === address && !argv.includes('start');
  }).map((p) => p.pid);
  if (pids.length !== 1) { logReader.kill(); rmSync(dir, { recursive: true, force: true }); throw new Error(`${kind}: expected one daemon for ${id}, found ${pids.length}`); }
  const pid = pids[0]!;
  return {
    kind,
    id,
    socket,
    pid,
    rssKiB: () => rssKiB(pid),
    alive: () => isAlive(pid),
    async stop() {
      if (isAlive(pid)) {
        const c = await Client.connect(socket, { connectTimeoutMs: 5000 }).catch(() => undefined);
        if (c) {
          await c.call(SERVICE.Task, 'Shutdown', task.ShutdownRequest.encode(task.ShutdownRequest.fromPartial({ id })).finish(), { timeoutMs: 10_000 }).catch(() => undefined);
          c.close();
        }
        if (!(await waitFor(() => !isAlive(pid), 10_000))) {
          try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
          await waitFor(() => !isAlive(pid), 5000);
        }
      }
      logReader.kill();
      rmSync(socket, { force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
