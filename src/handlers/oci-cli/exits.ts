/**
 * Exit tracking: matches the reaper's exit events (src/sys/reaper.ts) to processes.
 * A pid is known only once the runtime wrote its pid file, but the process can die
 * before that (a runtime wrapper that kills the init right after `create`, an exec
 * that exits at once). So, as runc-v2 1.7 does (service.preStart), whoever is about
 * to create a pid subscribes first: exits of pids nobody knows are kept in every open
 * subscription and claimed when the pid is registered (docs/adr/0011).
 */
import type { Logger } from 'pino';
import type { Proc, ExitInfo } from './process.js';
import type { Container } from './container.js';

export interface ExitEvent {
  pid: number;
  status: number;
  exitedAt: Date;
}

export interface ExitSource {
  on(event: 'exit', fn: (e: ExitEvent) => void): unknown;
  off(event: 'exit', fn: (e: ExitEvent) => void): unknown;
}

/** Exits of unknown pids seen while a Create/Start/Exec ran; closed by `end()`. */
export interface ExitSubscription {
  /** The exit of `pid` seen since subscribing, taken out. */
  claim(pid: number): ExitInfo | undefined;
  end(): void;
}

/** More unknown exits than this during one start (a pid-namespace-less init leaving orphans): the oldest go. */
const MAX_PENDING = 4096;

export class ExitTracker {
  readonly #byPid = new Map<number, Proc>();
  readonly #subs = new Set<Map<number, ExitInfo>>();
  readonly #listener = (e: ExitEvent) => this.#dispatch(e);

  constructor(
    private readonly source: ExitSource,
    /** Called for every exit of a tracked process (the process may be holding it). */
    private readonly exited: (p: Proc, e: ExitInfo) => void,
  ) {
    source.on('exit', this.#listener);
  }

  /** Before a backend call that creates a pid: keep exits of pids not tracked yet. */
  subscribe(): ExitSubscription {
    const seen = new Map<number, ExitInfo>();
    this.#subs.add(seen);
    return {
      claim: (pid) => {
        const e = seen.get(pid);
        seen.delete(pid);
        return e;
      },
      end: () => this.#subs.delete(seen),
    };
  }

  /** Exits of `pid` go to `p` from now on; one that came before, within `sub`, goes now. */
  track(pid: number, p: Proc, sub?: ExitSubscription): void {
    if (!pid) return;
    const early = sub?.claim(pid);
    if (early) {
      this.exited(p, early);
      return;
    }
    this.#byPid.set(pid, p);
  }

  untrack(p: Proc): void {
    if (this.#byPid.get(p.pid) === p) this.#byPid.delete(p.pid);
  }

  close(): void {
    this.source.off('exit', this.#listener);
  }

  #dispatch(e: ExitEvent): void {
    const p = this.#byPid.get(e.pid);
    const info = { status: e.status, exitedAt: e.exitedAt };
    if (p) {
      this.#byPid.delete(e.pid);
      this.exited(p, info);
      return;
    }
    for (const seen of this.#subs) {
      if (seen.size >= MAX_PENDING) seen.delete(seen.keys().next().value!);
      seen.set(e.pid, info);
    }
  }
}

/**
 * Backends whose pid file names a shared sandbox (runsc) report each container's exit through
 * `<runtime> wait`. When that fails for a sub-container, nothing else will: report 255.
 */
export function exitByWait(c: Container, exited: (e: ExitInfo) => void, log: Logger): void {
  c.driver.wait(c.id).then(
    (status) => exited({ status, exitedAt: new Date() }),
    (err: Error) => {
      if (c.init.exit) return;
      log.warn({ container: c.id, err: err.message }, 'wait failed');
      // The sandbox root is also reaped as our child; a sub-container has no other witness.
      if (c.stdioAtStart) exited({ status: 255, exitedAt: new Date() });
    },
  );
}
