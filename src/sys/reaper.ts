/**
 * The reaper: exact exit statuses for every child of this process.
 *
 * Two kinds of children exist in a shim:
 *  - libuv children, spawned through node:child_process (execa, runc, loggers).
 *    libuv reaps each of them itself with waitpid(<that pid>) and reports the
 *    status through the ChildProcess 'exit' event. If anyone else reaps one of
 *    them first, libuv never reports it (execa hangs forever).
 *  - foreign children: descendants re-parented to us because we are a child
 *    subreaper (the container init once `runc create` exits, runsc's sandbox,
 *    double-forked helpers). Nobody reaps these unless we do.
 *
 * So we never call waitpid(-1). On SIGCHLD (and when started, and whenever a
 * libuv child ends) we ask the kernel which child has exited without reaping it
 * (waitid WNOWAIT), reap it by pid if it is NOT a registered libuv child, and
 * repeat until none is left or the next one is libuv's; emit 'exit' for each.
 *
 * Registration: every ChildProcess spawned in this thread is registered
 * synchronously inside ChildProcess.prototype.spawn (hook installed when this
 * module is first imported), and again explicitly by run()/spawnTracked(). It
 * is unregistered in its 'exit' event, which Node emits only after libuv has
 * reaped it. JS is single-threaded and our SIGCHLD handler is a JS callback, so
 * there is no window in which a libuv child exists but is unregistered.
 */
import { EventEmitter } from 'node:events';
import { ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { access } from 'node:fs/promises';
import { execa } from 'execa';
import { peekExitedChild, setChildSubreaper, SysError, waitpidNoHang } from './libc.js';

export interface ExitEvent {
  pid: number;
  /** exit code, or 128+signal */
  status: number;
  exitedAt: Date;
}

export interface RunOptions {
  cwd?: string;
  input?: string | Uint8Array;
  env?: Record<string, string>;
  timeoutMs?: number;
  // execa's stdio option (array form), passed through unchanged
  stdio?: any[];
  extendEnv?: boolean;
}

export interface RunResult {
  /** exit code; 128+signal number when the process was killed by a signal */
  exitCode: number;
  signal?: string;
  /** execa semantics: final newline stripped; '' when the stream was not piped */
  stdout: string;
  stderr: string;
  failed: boolean;
  timedOut?: boolean;
}

// ---------------------------------------------------------------------------
// libuv child registry (module-wide: one per JS thread)
// ---------------------------------------------------------------------------

const libuvChildren = new Set<number>();
const startedReapers = new Set<Reaper>();
let sweepScheduled = false;

/** True while pid is a child spawned through node:child_process that libuv has not reaped yet. */
export function isLibuvChild(pid: number): boolean {
  return libuvChildren.has(pid);
}

function trackChild(cp: ChildProcess): void {
  const pid = cp.pid;
  if (typeof pid !== 'number' || libuvChildren.has(pid)) return;
  libuvChildren.add(pid);
  cp.once('exit', () => {
    libuvChildren.delete(pid);
    scheduleSweep();
  });
}

/** A libuv child ended: its SIGCHLD may have coincided with a foreign child's, so sweep again. */
function scheduleSweep(): void {
  if (sweepScheduled || startedReapers.size === 0) return;
  sweepScheduled = true;
  setImmediate(() => {
    sweepScheduled = false;
    for (const r of startedReapers) r.sweep();
  });
}

const HOOKED = Symbol.for('tsshim.reaper.spawnHook');

function installSpawnHook(): void {
  const proto = ChildProcess.prototype as unknown as Record<PropertyKey, unknown>;
  if (proto[HOOKED]) return;
  const original = proto['spawn'];
  if (typeof original !== 'function') return; // Node changed its internals: run()/spawnTracked() still register explicitly
  proto['spawn'] = function hookedSpawn(this: ChildProcess, ...args: unknown[]): unknown {
    const result = (original as (...a: unknown[]) => unknown).apply(this, args);
    trackChild(this);
    return result;
  };
  proto[HOOKED] = true;
}

installSpawnHook();

// ---------------------------------------------------------------------------
// Reaper
// ---------------------------------------------------------------------------

/** A run() command starting (running: true) or done: node mode's worker tells its supervisor (ADR 0018). */
export interface CommandEvent {
  pid: number;
  running: boolean;
}

export class Reaper extends EventEmitter<{ exit: [ExitEvent]; command: [CommandEvent] }> {
  private started = false;
  private readonly onSigchld = (): void => {
    this.sweep();
  };

  /**
   * setChildSubreaper() (unless `subreaper: false`: node mode's worker leaves that role to its
   * supervisor, ADR 0018), SIGCHLD handler, initial sweep. Idempotent.
   */
  start(opts: { subreaper?: boolean } = {}): void {
    if (this.started) return;
    if (opts.subreaper !== false) setChildSubreaper();
    process.on('SIGCHLD', this.onSigchld);
    this.started = true;
    startedReapers.add(this);
    this.sweep();
  }

  /** Stop reaping. The subreaper attribute stays set (it is a process property). */
  stop(): void {
    if (!this.started) return;
    process.off('SIGCHLD', this.onSigchld);
    this.started = false;
    startedReapers.delete(this);
  }

  get isStarted(): boolean {
    return this.started;
  }

  /**
   * Reap every exited foreign child now and emit 'exit' for each; returns what was reaped.
   * Called on SIGCHLD; safe to call any time.
   *
   * Only children that have exited are touched: waitid(WNOWAIT) names one exited child without
   * reaping it; a foreign one is then reaped by pid, a libuv one is left to libuv (whose reaping
   * schedules another sweep), so the cost is O(exits), not O(children), and no /proc file is
   * needed. Each exit goes to every listener as soon as it is reaped, each listener called on
   * its own: neither a throwing listener nor a failing syscall can lose an exit already
   * collected (the first error surfaces afterwards, uncaught: the daemon logs it).
   */
  sweep(): ExitEvent[] {
    const reaped: ExitEvent[] = [];
    let firstError: unknown;
    for (;;) {
      let pid: number;
      let r;
      try {
        pid = peekExitedChild();
        if (pid <= 0 || libuvChildren.has(pid)) break; // none, or libuv's own: it reaps it and sweeps us again
        r = waitpidNoHang(pid);
      } catch (e) {
        if (e instanceof SysError && e.code === 'ECHILD') continue; // reaped by someone else meanwhile
        firstError ??= e;
        break;
      }
      if (!r) break; // WNOWAIT said exited, waitpid says running: never expected; do not spin on it
      const ev: ExitEvent = { pid: r.pid, status: r.status, exitedAt: new Date() };
      reaped.push(ev);
      // each listener on its own: one that throws costs no other listener this exit
      for (const fn of this.rawListeners('exit') as Array<(e: ExitEvent) => void>) {
        try {
          fn.call(this, ev);
        } catch (e) {
          firstError ??= e;
        }
      }
    }
    if (firstError !== undefined) {
      // every exit reaped so far was delivered; surface the error as uncaught (the daemon logs it)
      process.nextTick(() => {
        throw firstError;
      });
    }
    return reaped;
  }

  /**
   * Run a command as our own child via execa. Its pid is registered as a libuv
   * child synchronously after spawn, so the reaper never steals its status.
   * Never throws for a non-zero exit; throws a SysError for spawn failures.
   */
  async run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const sub = execa(file, args, {
      reject: false,
      cwd: opts.cwd,
      input: opts.input,
      env: opts.env,
      extendEnv: opts.extendEnv ?? true,
      timeout: opts.timeoutMs,
      ...(opts.stdio ? { stdio: opts.stdio as any } : {}),
    });
    trackChild(sub as unknown as ChildProcess); // execa 9's subprocess is the ChildProcess itself
    const spawned = typeof sub.pid === 'number';
    if (spawned) this.emit('command', { pid: sub.pid!, running: true });
    const r = await sub;
    if (spawned) this.emit('command', { pid: sub.pid!, running: false });
    if (!spawned) throw await spawnError(file, opts, r.code, (r as { message?: string }).message ?? '');
    const signal = typeof r.signal === 'string' ? r.signal : undefined;
    const signum = signal ? (osConstants.signals as Record<string, number>)[signal] : undefined;
    const exitCode = typeof r.exitCode === 'number' ? r.exitCode : signum !== undefined ? 128 + signum : 255;
    return {
      exitCode,
      ...(signal ? { signal } : {}),
      stdout: typeof r.stdout === 'string' ? r.stdout : '',
      stderr: typeof r.stderr === 'string' ? r.stderr : '',
      failed: r.failed,
      timedOut: r.timedOut,
    };
  }

  /** Start a long-running child via node:child_process spawn; its pid is registered as ours. */
  spawnTracked(file: string, args: string[], opts: SpawnOptions): ChildProcess {
    const cp = spawn(file, args, opts);
    trackChild(cp);
    return cp;
  }
}

async function spawnError(file: string, opts: RunOptions, code: string | undefined, detail: string): Promise<SysError> {
  const errno = code ? (osConstants.errno as Record<string, number>)[code] ?? 0 : 0;
  let why: string;
  if (opts.cwd && !(await access(opts.cwd).then(() => true, () => false))) {
    why = `working directory ${JSON.stringify(opts.cwd)} does not exist`;
  } else if (code === 'ENOENT') {
    why = file.includes('/')
      ? `${JSON.stringify(file)} does not exist`
      : `${JSON.stringify(file)} not found in PATH=${opts.env?.['PATH'] ?? process.env['PATH'] ?? ''}`;
  } else if (code === 'EACCES') {
    why = `${JSON.stringify(file)} is not executable`;
  } else {
    why = detail.split('\n').pop() ?? detail;
  }
  return new SysError('spawn', errno, code ?? 'UNKNOWN', `cannot execute ${file}: ${code ?? 'error'}: ${why}`, file);
}

/** Process-wide singleton: one SIGCHLD owner per process. */
export const reaper: Reaper = new Reaper();
