// A private, real containerd per test file (or per demo/bench run).
//
// Everything lives under /run/tsshim-test/<name>-<hex>/ (short, because unix socket paths are
// limited to 107 bytes): root/, state/, opt/, config.toml, containerd.log, c.sock, c.sock.ttrpc.
// containerd's PATH starts with <repo>/bin so containerd-shim-tsshim-v2 is found there.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { TEST_IMAGE, buildTestImageArchive } from './image.js';
import { REPO_ROOT, findProcesses, isAlive, runCommand, sleep, waitFor, type RunResult } from './proc.js';

export { TEST_IMAGE, REPO_ROOT };

export const DEFAULT_NAMESPACE = 'tsshim-test';
export const TEST_BASE_DIR = '/run/tsshim-test';
const STANDARD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CRI_PLUGIN = 'io.containerd.grpc.v1.cri';

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
  /** pid of the current containerd process (changes on restart()). */
  readonly pid: number;
  /**
   * Runs `ctr --address <addr> -n <ns> ...args`. Never rejects on a non-zero exit; rejects only
   * when ctr cannot be spawned or exceeds timeoutMs (default 120 s; it is then SIGKILLed).
   */
  ctr(args: string[], opts?: CtrOptions): Promise<RunResult>;
  /** Spawns a long-running ctr (e.g. `ctr events`); stdio pipes; killed by stop(). */
  ctrSpawn(args: string[], opts?: { namespace?: string }): ChildProcess;
  /** Last `lines` lines of containerd's log. */
  logTail(lines?: number): string;
  /**
   * SIGTERM containerd, wait for exit, start again on the same root/state/sockets; running shims
   * survive. `whileDown` runs while containerd is stopped (e.g. kill a container's process).
   */
  restart(opts?: { whileDown?: () => Promise<void> }): Promise<void>;
  /** Tears everything down (see file comment in stop()); idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Short label used in the directory name. */
  name?: string;
  /** TOML deep-merged over the generated config (tables merge, values replace). Mentioning the CRI plugin enables it. */
  extraConfig?: string;
  /** `[debug] level = "debug"` (also when env TSSHIM_TEST_DEBUG=1). */
  debug?: boolean;
  /** Default namespace for ctr(); default 'tsshim-test'. */
  namespace?: string;
}

/** `prefix-<8 hex>`: containerd-shim-runc-v2 keeps runc state in /run/containerd/runc/<ns> whatever containerd's dirs are, so ids must be unique across instances. */
export function uniqueId(prefix = 't'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

type TomlTable = Record<string, unknown>;
const isTable = (v: unknown): v is TomlTable => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

export function deepMerge(base: TomlTable, over: TomlTable): TomlTable {
  const out: TomlTable = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isTable(b) && isTable(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/** The config.toml text for a private instance rooted at dir. Exported for inspection and tests. */
export function renderConfig(dir: string, opts: { extraConfig?: string; debug?: boolean } = {}): string {
  const extra = opts.extraConfig ? (parseToml(opts.extraConfig) as TomlTable) : {};
  const plugins = isTable(extra.plugins) ? extra.plugins : {};
  const criRequested = CRI_PLUGIN in plugins;
  const base: TomlTable = {
    version: 2,
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    disabled_plugins: criRequested ? [] : [CRI_PLUGIN],
    grpc: { address: join(dir, 'c.sock'), uid: 0, gid: 0 },
    ttrpc: { address: join(dir, 'c.sock.ttrpc'), uid: 0, gid: 0 },
    debug: { address: '', level: opts.debug ? 'debug' : 'info' },
    metrics: { address: '' },
    plugins: {
      'io.containerd.internal.v1.opt': { path: join(dir, 'opt') },
    },
  };
  return stringifyToml(deepMerge(base, extra)) + '\n';
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

class Instance implements PrivateContainerd {
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
  ) {
    this.root = join(dir, 'root');
    this.state = join(dir, 'state');
    this.address = join(dir, 'c.sock');
    this.ttrpcAddress = this.address + '.ttrpc';
    this.logFile = join(dir, 'containerd.log');
    this.configFile = join(dir, 'config.toml');
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  async launch(): Promise<void> {
    const logFd = openSync(this.logFile, 'a');
    const pathDirs = [join(REPO_ROOT, 'bin'), ...(process.env.PATH ?? '').split(':').filter(Boolean)];
    for (const d of STANDARD_PATH.split(':')) if (!pathDirs.includes(d)) pathDirs.push(d);
    let child: ChildProcess;
    try {
      child = spawn('containerd', ['--config', this.configFile], {
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, PATH: pathDirs.join(':') },
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

  ctr(args: string[], opts: CtrOptions = {}): Promise<RunResult> {
    return runCommand('ctr', ['--address', this.address, '-n', opts.namespace ?? this.namespace, ...args], {
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? 120_000,
    });
  }

  ctrSpawn(args: string[], opts: { namespace?: string } = {}): ChildProcess {
    const child = spawn('ctr', ['--address', this.address, '-n', opts.namespace ?? this.namespace, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.spawned.add(child);
    child.once('exit', () => this.spawned.delete(child));
    return child;
  }

  /** SIGTERM, wait up to graceMs, then SIGKILL. */
  private async terminate(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || !isAlive(child.pid ?? -1)) return;
    child.ref();
    try {
      child.kill('SIGTERM');
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

  async restart(opts: { whileDown?: () => Promise<void> } = {}): Promise<void> {
    if (this.stopped) throw new Error('restart() after stop()');
    await this.terminate(20_000);
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

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    const problems: string[] = [];

    // 1. Through containerd: kill and delete every task, remove every container, in every namespace.
    const running = this.child && this.child.exitCode === null && this.child.signalCode === null;
    if (running) {
      try {
        const nsOut = await this.ctr(['namespaces', 'ls', '-q'], { timeoutMs: 10_000 });
        const namespaces = nsOut.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
        for (const ns of namespaces) {
          const tasks = (await this.ctr(['tasks', 'ls', '-q'], { namespace: ns, timeoutMs: 10_000 })).stdout
            .split('\n').map((s) => s.trim()).filter(Boolean);
          for (const id of tasks) {
            await this.ctr(['tasks', 'kill', '-s', 'SIGKILL', id], { namespace: ns, timeoutMs: 10_000 }).catch(() => undefined);
          }
          for (const id of tasks) {
            const r = await this.ctr(['tasks', 'delete', '-f', id], { namespace: ns, timeoutMs: 20_000 }).catch((e: Error) => ({ exitCode: -1, stderr: e.message }));
            if (r.exitCode !== 0) problems.push(`task ${ns}/${id} delete: ${r.stderr.trim()}`);
          }
          const containers = (await this.ctr(['containers', 'ls', '-q'], { namespace: ns, timeoutMs: 10_000 })).stdout
            .split('\n').map((s) => s.trim()).filter(Boolean);
          if (containers.length > 0) {
            await this.ctr(['containers', 'rm', ...containers], { namespace: ns, timeoutMs: 20_000 }).catch(() => undefined);
          }
        }
      } catch (e) {
        problems.push(`ctr cleanup: ${(e as Error).message}`);
      }
    }

    // 2. containerd itself, and ctr processes we spawned.
    for (const c of this.spawned) c.kill('SIGKILL');
    await this.terminate(10_000);

    // 3. Shims (and stray ctr processes) that name this instance's socket.
    const mine = (argv: string[]) => argv.some((a) => a === this.address || a.endsWith('=' + this.address) || a === this.ttrpcAddress);
    for (const p of findProcesses(mine)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }

    // 4. Containers whose shim died before cleaning up: runc state under /run/containerd/runc/<ns>.
    await this.killOrphanRuncContainers();

    // 5. Mounts left under our directory, deepest first.
    await unmountUnder(this.dir);

    // 6. Keep the log when asked, then remove the directory.
    if (process.env.TSSHIM_KEEP_LOGS === '1') {
      const keep = '/tmp/tsshim-test-logs';
      mkdirSync(keep, { recursive: true });
      copyFileSync(this.logFile, join(keep, `${this.dir.split('/').pop()}.log`));
    }
    try {
      rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      problems.push(`rm -rf ${this.dir}: ${(e as Error).message}`);
    }
    if (problems.length > 0) process.stderr.write(`[containerd helper] stop() of ${this.dir}: ${problems.join('; ')}\n`);
  }

  private async killOrphanRuncContainers(): Promise<void> {
    const base = '/run/containerd/runc';
    if (!existsSync(base)) return;
    for (const ns of readdirSync(base)) {
      const rootDir = join(base, ns);
      let list: Array<{ id: string; bundle: string }>;
      try {
        const r = await runCommand('runc', ['--root', rootDir, 'list', '-f', 'json'], { timeoutMs: 10_000 });
        if (r.exitCode !== 0) continue;
        list = JSON.parse(r.stdout || 'null') ?? [];
      } catch {
        continue;
      }
      for (const c of list) {
        if (!c.bundle.startsWith(this.dir + '/')) continue;
        await runCommand('runc', ['--root', rootDir, 'kill', c.id, 'KILL'], { timeoutMs: 10_000 }).catch(() => undefined);
        await runCommand('runc', ['--root', rootDir, 'delete', '-f', c.id], { timeoutMs: 10_000 }).catch(() => undefined);
      }
    }
  }
}

/** Mount points at or under dir, from /proc/self/mountinfo (octal escapes decoded). */
export function mountsUnder(dir: string): string[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const points: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp === dir || mp.startsWith(dir + '/')) points.push(mp);
  }
  return points;
}

async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(dir).sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    for (const mp of points) {
      const r = await runCommand('umount', [mp], { timeoutMs: 10_000 }).catch(() => ({ exitCode: 1 }));
      if (r.exitCode !== 0) await runCommand('umount', ['-l', mp], { timeoutMs: 10_000 }).catch(() => undefined);
    }
  }
}

function shortLabel(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 16) || 'cd';
}

/** Starts a private containerd and waits until `ctr version` answers. */
export async function startContainerd(opts: StartOptions = {}): Promise<PrivateContainerd> {
  if (process.getuid?.() !== 0) throw new Error('startContainerd needs root');
  installSafetyNet();
  const dir = join(TEST_BASE_DIR, `${shortLabel(opts.name ?? 'cd')}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const inst = new Instance(dir, opts.namespace ?? DEFAULT_NAMESPACE);
  writeFileSync(inst.configFile, renderConfig(dir, { extraConfig: opts.extraConfig, debug: opts.debug ?? process.env.TSSHIM_TEST_DEBUG === '1' }));
  live.add(inst);
  try {
    await inst.launch();
  } catch (e) {
    await inst.stop();
    throw e;
  }
  return inst;
}

/** Builds (cached) the busybox OCI archive, imports and unpacks it; returns TEST_IMAGE. */
export async function importTestImage(cd: PrivateContainerd, opts: { namespace?: string } = {}): Promise<string> {
  const archive = await buildTestImageArchive();
  const r = await cd.ctr(['images', 'import', archive], { timeoutMs: 180_000, namespace: opts.namespace });
  if (r.exitCode !== 0) throw new Error(`ctr images import ${archive} exited ${r.exitCode}: ${r.stderr.trim()}`);
  const ls = await cd.ctr(['images', 'ls', '-q'], { namespace: opts.namespace });
  if (!ls.stdout.split('\n').includes(TEST_IMAGE)) {
    throw new Error(`after import, ${TEST_IMAGE} is not listed; ctr images ls -q said:\n${ls.stdout}\nimport said:\n${r.stdout}${r.stderr}`);
  }
  return TEST_IMAGE;
}
