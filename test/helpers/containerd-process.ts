// The containerd daemon of a private instance: start, ctr, restart, stop (with the shared teardown).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerdBinaries } from './containerd-binaries.js';
import { stripCtrDeprecationNotices } from './containerd-version.js';
import { REPO_ROOT, isAlive, runCommand, waitFor, type RunResult } from './proc.js';
import { deleteOrphanContainers, killProcessesNaming, removeAllContainers, unmountUnder } from './teardown.js';

const STANDARD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface CtrOptions {
  /**
   * Written to ctr's stdin, then closed. Note: ctr 1.6 `run` (without -t) never passes that EOF
   * on (it does not call CloseIO and the runc shim keeps a writer on the stdin FIFO), so the
   * container command must stop reading by itself (e.g. `read line`), not wait for EOF.
   */
  input?: string | Buffer;
  timeoutMs?: number;
  namespace?: string;
}

export interface PrivateContainerd {
  readonly dir: string;
  readonly root: string;
  readonly state: string;
  readonly address: string;
  readonly ttrpcAddress: string;
  readonly namespace: string;
  readonly logFile: string;
  readonly configFile: string;
  /** The containerd and ctr binaries this instance runs. */
  readonly binaries: ContainerdBinaries;
  /** pid of the current containerd process (changes on restart()). */
  readonly pid: number;
  /**
   * Runs `ctr --address <addr> -n <ns> ...args`. Never rejects on a non-zero exit; rejects only
   * when ctr cannot be spawned or exceeds timeoutMs (default 120 s; it is then SIGKILLed).
   * containerd 2.x deprecation notices are removed from stderr (stripCtrDeprecationNotices).
   */
  ctr(args: string[], opts?: CtrOptions): Promise<RunResult>;
  /** The full argv of that ctr command (binary first), for wrapping (e.g. in `script`). */
  ctrArgv(args: string[], opts?: { namespace?: string }): string[];
  /** Spawns a long-running ctr (e.g. `ctr events`); stdio pipes; killed by stop(). */
  ctrSpawn(args: string[], opts?: { namespace?: string }): ChildProcess;
  /** Last `lines` lines of containerd's log. */
  logTail(lines?: number): string;
  /**
   * SIGTERM containerd (`kill: true`: SIGKILL, a crash), wait for exit, start again on the same
   * root/state/sockets; running shims survive. `whileDown` runs while containerd is stopped
   * (e.g. kill a container's process).
   */
  restart(opts?: { whileDown?: () => Promise<void>; kill?: boolean }): Promise<void>;
  /** Tears everything down (see stop() below); idempotent. */
  stop(): Promise<void>;
}

const live = new Set<Instance>();
let safetyNetInstalled = false;

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  // If the test process dies without stop(), do not leave a daemon behind.
  process.on('exit', () => {
    for (const inst of live) inst.killNow();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const inst of live) inst.killNow();
      process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const)[sig]);
    });
  }
}

export class Instance implements PrivateContainerd {
  readonly root: string;
  readonly state: string;
  readonly address: string;
  readonly ttrpcAddress: string;
  readonly logFile: string;
  readonly configFile: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private spawned = new Set<ChildProcess>();
  private stopped = false;

  constructor(
    readonly dir: string,
    readonly namespace: string,
    readonly binaries: ContainerdBinaries,
    /** Directories put before everything else on containerd's PATH (e.g. an installed tsshim's bin). */
    private readonly pathFirst: readonly string[] = [],
    /**
     * An instance whose config lives elsewhere (the installer test's scratch host root): its config
     * file and sockets, containerd's PATH, and whether stop() keeps `dir` (default: removes it).
     */
    private readonly layout: { configFile?: string; address?: string; ttrpcAddress?: string; root?: string; state?: string; path?: string; keepDir?: boolean } = {},
  ) {
    this.root = layout.root ?? join(dir, 'root');
    this.state = layout.state ?? join(dir, 'state');
    this.address = layout.address ?? join(dir, 'c.sock');
    this.ttrpcAddress = layout.ttrpcAddress ?? this.address + '.ttrpc';
    this.logFile = join(dir, 'containerd.log');
    this.configFile = layout.configFile ?? join(dir, 'config.toml');
    installSafetyNet();
    live.add(this);
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  /** containerd's PATH: pathFirst, <repo>/bin (tsshim), the binaries' dir (its runc-v2 shim), then ours and the standard dirs. */
  private pathEnv(): string {
    if (this.layout.path !== undefined) return this.layout.path;
    const dirs = [...this.pathFirst, join(REPO_ROOT, 'bin'), ...(this.binaries.dir ? [this.binaries.dir] : []), ...(process.env.PATH ?? '').split(':').filter(Boolean)];
    for (const d of STANDARD_PATH.split(':')) if (!dirs.includes(d)) dirs.push(d);
    return [...new Set(dirs)].join(':');
  }

  async launch(): Promise<void> {
    const logFd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.binaries.containerd, ['--config', this.configFile], {
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, PATH: this.pathEnv() },
        cwd: this.dir,
      });
    } finally {
      closeSync(logFd);
    }
    this.child = child;
    let exitedEarly = false;
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        exitedEarly = true;
        resolve();
      });
      child.once('error', () => {
        exitedEarly = true;
        resolve();
      });
    });
    child.unref(); // a forgotten stop() must not keep the test process alive; see safety net
    const ok = await waitFor(
      async () => {
        if (exitedEarly) return true;
        try {
          return (await this.ctr(['version'], { timeoutMs: 3000 })).exitCode === 0;
        } catch {
          return false;
        }
      },
      30_000,
      100,
    );
    if (exitedEarly || !ok) {
      this.killNow();
      throw new Error(
        `private containerd in ${this.dir} ${exitedEarly ? 'exited during start-up' : 'did not answer `ctr version` within 30 s'}\n--- log tail ---\n${this.logTail(40)}`,
      );
    }
  }

  logTail(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines - 1).join('\n');
    } catch {
      return '(no log)';
    }
  }

  ctrArgv(args: string[], opts: { namespace?: string } = {}): string[] {
    return [this.binaries.ctr, '--address', this.address, '-n', opts.namespace ?? this.namespace, ...args];
  }

  async ctr(args: string[], opts: CtrOptions = {}): Promise<RunResult> {
    const [cmd, ...rest] = this.ctrArgv(args, opts);
    const r = await runCommand(cmd!, rest, { input: opts.input, timeoutMs: opts.timeoutMs ?? 120_000 });
    return { ...r, stderr: stripCtrDeprecationNotices(r.stderr) }; // containerd 2.x: see containerd-version.ts
  }

  ctrSpawn(args: string[], opts: { namespace?: string } = {}): ChildProcess {
    const [cmd, ...rest] = this.ctrArgv(args, opts);
    const child = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.spawned.add(child);
    child.once('exit', () => this.spawned.delete(child));
    return child;
  }

  /** SIGTERM (or `signal`), wait up to graceMs, then SIGKILL. */
  private async terminate(graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || !isAlive(child.pid ?? -1)) return;
    child.ref();
    try {
      child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        this.exited!.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
      ]);
      clearTimeout(timer);
      if (!done) {
        child.kill('SIGKILL');
        await this.exited;
      }
    } finally {
      child.unref();
    }
  }

  async restart(opts: { whileDown?: () => Promise<void>; kill?: boolean } = {}): Promise<void> {
    if (this.stopped) throw new Error('restart() after stop()');
    await this.terminate(20_000, opts.kill ? 'SIGKILL' : 'SIGTERM');
    await opts.whileDown?.();
    await this.launch();
  }

  killNow(): void {
    try {
      if (this.child?.pid && this.child.exitCode === null) process.kill(this.child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    for (const c of this.spawned) c.kill('SIGKILL');
  }

  /**
   * 1. through containerd, every task and container of every namespace; 2. containerd and the ctr
   * we spawned; 3. shims and stray ctr naming this instance's sockets; 4. runc/runsc containers
   * whose shim died first; 5. mounts under the directory; 6. the directory (log kept when
   * TSSHIM_KEEP_LOGS=1).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    const problems: string[] = [];
    const running = this.child && this.child.exitCode === null && this.child.signalCode === null;
    if (running) problems.push(...(await removeAllContainers((args, o) => this.ctr(args, o))));
    for (const c of this.spawned) c.kill('SIGKILL');
    await this.terminate(10_000);
    killProcessesNaming([this.address, this.ttrpcAddress]);
    await deleteOrphanContainers(this.dir);
    await unmountUnder(this.dir);
    if (process.env.TSSHIM_KEEP_LOGS === '1') {
      const keep = '/tmp/tsshim-test-logs';
      mkdirSync(keep, { recursive: true });
      copyFileSync(this.logFile, join(keep, `${this.dir.split('/').pop()}.log`));
    }
    try {
      if (!this.layout.keepDir) rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      problems.push(`rm -rf ${this.dir}: ${(e as Error).message}`);
    }
    if (problems.length > 0) process.stderr.write(`[containerd helper] stop() of ${this.dir}: ${problems.join('; ')}\n`);
  }
}
