// Small process helpers shared by the test harness, the demo and the benchmark.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Runs a command to completion and collects its output. Never rejects on a non-zero exit
 * (exitCode is the exit status, or 128+N when killed by signal N). Rejects when the command
 * cannot be spawned or runs longer than timeoutMs (it is then SIGKILLed).
 */
export function runCommand(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    // Own process group, so a timeout also kills grandchildren (e.g. ctr under `bash -c`).
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    let settled = false;
    let exitTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(exitTimer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) {
        reject(
          new Error(
            `${cmd} ${args.join(' ')}: timed out after ${timeoutMs} ms\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`,
          ),
        );
        return;
      }
      resolve({ stdout, stderr, exitCode: code ?? (signal ? 128 + signalNumber(signal) : 1) });
    };
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    // 'close' waits for stdio EOF; if a leftover grandchild keeps the pipes open, give up on
    // the remaining output 2 s after the command itself exited.
    child.on('exit', (code, signal) => {
      exitTimer = setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish(code, signal);
      }, timedOut ? 200 : 2000);
    });
    child.on('close', (code, signal) => finish(code, signal));
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {
        /* the command may exit without reading its input */
      });
      child.stdin!.end(opts.input);
    }
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15,
  };
  return table[signal] ?? 0;
}

/** Runs a command and rejects with its output when it exits non-zero. */
export async function runChecked(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await runCommand(cmd, args, opts);
  if (r.exitCode !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.exitCode}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`);
  }
  return r.stdout;
}

/** The repository root: the nearest ancestor of this module with the tsshim package.json. */
export const REPO_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'tsshim') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the tsshim repository root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
})();

export interface ProcInfo {
  pid: number;
  argv: string[];
}

/** All processes whose NUL-separated command line satisfies the predicate. */
export function findProcesses(match: (argv: string[], pid: number) => boolean): ProcInfo[] {
  const found: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let raw: string;
    try {
      raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (raw.length === 0) continue; // kernel thread or zombie
    const argv = raw.replace(/\0$/, '').split('\0');
    if (match(argv, pid)) found.push({ pid, argv });
  }
  return found;
}

/** True while the pid exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until pred() is true or the deadline passes; returns the final pred() value. */
export async function waitFor(pred: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pred()) return true;
    await sleep(stepMs);
  }
  return pred();
}

/** Process state letter from /proc/<pid>/stat ('R', 'S', 'Z', ...), undefined when gone. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** Direct children of pid over all its threads (/proc/<pid>/task/<tid>/children). */
export function childrenOf(pid: number): number[] {
  const out = new Set<number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) out.add(Number(c));
    } catch {
      /* thread exited */
    }
  }
  return [...out];
}

export const zombieChildren = (pid: number): number[] => childrenOf(pid).filter((c) => procState(c) === 'Z');

export const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** The cgroup v1 path of a pid for a controller, from /proc/<pid>/cgroup. */
export function cgroupOf(pid: number, controller: string): string | undefined {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, ctrls, path] = line.split(':');
    if (ctrls !== undefined && ctrls.split(',').includes(controller)) return path;
  }
  return undefined;
}

/** Single-quotes a word for sh. */
export const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs argv with a pseudo-terminal on its stdin/stdout (util-linux `script`) sized rows x cols
 * (ctr -t needs a console and sends its size to the task).
 */
export function underTerminal(argv: string[], opts: { rows?: number; cols?: number; timeoutMs?: number } = {}): Promise<RunResult> {
  const size = opts.rows && opts.cols ? `stty rows ${opts.rows} cols ${opts.cols}; ` : '';
  return runCommand('script', ['-qfec', `${size}${argv.map(shq).join(' ')}`, '/dev/null'], { timeoutMs: opts.timeoutMs ?? 60_000 });
}

/** A container command that writes `size` random bytes to stdout after printing their sha256 on stderr. */
export const randomOutputCommand = (size: number): string[] => ['sh', '-c', `head -c ${size} /dev/urandom > /tmp/d; sha256sum /tmp/d >&2; cat /tmp/d`];

/**
 * Runs argv (e.g. a `ctr run` of randomOutputCommand), hashing its stdout as it streams (never
 * buffered): exit code, byte count, and whether the sha256 received equals the first word of its
 * stderr (after cleanStderr). onSpawn gets the child (to kill it on a timeout).
 */
export async function streamAndHash(
  argv: string[],
  opts: { cleanStderr?: (s: string) => string; onSpawn?: (child: ChildProcess) => void } = {},
): Promise<{ code: number | null; bytes: number; sha256Matches: boolean; stderr: string }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  opts.onSpawn?.(child);
  const hash = createHash('sha256');
  let bytes = 0;
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => {
    bytes += b.length;
    hash.update(b);
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((res) => child.on('close', res));
  const inside = (opts.cleanStderr ?? ((x: string) => x))(stderr).trim().split(/\s+/)[0] ?? '';
  return { code, bytes, sha256Matches: hash.digest('hex') === inside, stderr };
}
