/**
 * One process of a container (the init or an exec): its place in the state
 * machine (private, moved only through `transition`), its pid, its exit, and
 * everyone waiting for it.
 */
import { Lifecycle, type ProcessOp, type ProcessState, type Undo } from '../../shim-api/lifecycle.js';
import type { ProcessIO } from './stdio.js';

export interface ExitInfo {
  status: number;
  exitedAt: Date;
}

export class Proc {
  readonly #life = new Lifecycle();
  pid = 0;
  /** The runtime's own pid for an exec (runsc: inside the sandbox), when profile.execSignal is 'runtime'. */
  internalPid?: number;
  exit?: ExitInfo;
  io?: ProcessIO;
  /** node mode: the pid's start time (/proc/<pid>/stat field 22), so an adopting worker can tell a reused pid */
  startTime?: string;
  /** >0 while Create or Start runs: exits seen meanwhile are held until its event is out. */
  #holds = 0;
  #heldExit?: ExitInfo;
  readonly #waiters: Array<(e: ExitInfo) => void> = [];

  constructor(
    readonly containerId: string,
    /** '' for the init process */
    readonly execId: string,
    readonly stdio: { stdin: string; stdout: string; stderr: string; terminal: boolean },
    /** OCI process spec JSON for execs */
    readonly spec?: Uint8Array,
  ) {}

  /**
   * A process rebuilt by a new worker (node mode, adopt.ts): `ops` replayed from `created`
   * through the lifecycle table (e.g. start, pause, paused), then the recorded exit, if any.
   */
  static replayed(
    containerId: string,
    execId: string,
    stdio: Proc['stdio'],
    spec: Uint8Array | undefined,
    r: { pid: number; ops: readonly ProcessOp[]; exit?: ExitInfo; startTime?: string; internalPid?: number },
  ): Proc {
    const p = new Proc(containerId, execId, stdio, spec);
    p.pid = r.pid;
    p.startTime = r.startTime;
    p.internalPid = r.internalPid;
    for (const op of r.ops) p.transition(op);
    if (r.exit) p.recordExit(r.exit);
    return p;
  }

  get isInit(): boolean {
    return this.execId === '';
  }

  get state(): ProcessState {
    return this.#life.state;
  }

  allows(op: ProcessOp): boolean {
    return this.#life.allows(op);
  }

  /**
   * The only way this process changes state (lifecycle.ts). Throws runc-v2's refusal
   * when `op` is illegal now. The undo rolls a failed operation back; an exit that
   * arrived meanwhile (and could not apply to the transient state) applies after it.
   */
  transition(op: ProcessOp): Undo {
    const undo = this.#life.transition(op);
    return () => {
      undo();
      if (this.exit && this.#life.allows('exit')) this.#life.transition('exit');
    };
  }

  /** Hold exits until `release()`: Create and Start publish their event first (runc-v2 order). */
  hold(): void {
    this.#holds++;
  }

  /** End a hold; records the exit held meanwhile (if any) and returns it, for publication. */
  release(): ExitInfo | undefined {
    if (--this.#holds > 0) return undefined;
    const e = this.#heldExit;
    this.#heldExit = undefined;
    return e && this.recordExit(e) ? e : undefined;
  }

  /** Record the exit (the `exit` row); false when held, or already recorded. */
  recordExit(e: ExitInfo): boolean {
    if (this.#holds > 0) {
      this.#heldExit ??= e;
      return false;
    }
    if (this.exit) return false;
    this.exit = e;
    // From a transient state (`deleted` while Delete runs) the undo applies it later.
    if (this.#life.allows('exit')) this.#life.transition('exit');
    for (const w of this.#waiters.splice(0)) w(e);
    return true;
  }

  wait(): Promise<ExitInfo> {
    if (this.exit) return Promise.resolve(this.exit);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
