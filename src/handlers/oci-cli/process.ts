/**
 * One process of a container (the init or an exec): its place in the state
 * machine, its pid, its exit, and everyone waiting for it.
 */
import { check, type ProcessOp, type ProcessState } from '../../shim-api/lifecycle.js';
import { ShimError } from '../../shim-api/errors.js';
import type { ProcessIO } from './stdio.js';

export interface ExitInfo {
  status: number;
  exitedAt: Date;
}

export class Proc {
  state: ProcessState = 'created';
  pid = 0;
  exit?: ExitInfo;
  io?: ProcessIO;
  /** Set while Start runs: exits seen meanwhile are held until the start event is out. */
  starting = false;
  private heldExit?: ExitInfo;
  private readonly waiters: Array<(e: ExitInfo) => void> = [];

  constructor(
    readonly containerId: string,
    /** '' for the init process */
    readonly execId: string,
    readonly stdio: { stdin: string; stdout: string; stderr: string; terminal: boolean },
    /** OCI process spec JSON for execs */
    readonly spec?: Uint8Array,
  ) {}

  get isInit(): boolean {
    return this.execId === '';
  }

  /**
   * Throws with runc-v2's wording and class when `op` is illegal now: runc-v2 answers
   * misuse with plain errors (Unknown), except Kill of a finished process (NotFound,
   * which CRI relies on).
   */
  require(op: ProcessOp): ProcessState {
    const r = check(this.state, op);
    if (!r.ok) throw new ShimError(op === 'kill' ? 'NotFound' : 'Unknown', r.reason);
    return r.next;
  }

  move(op: ProcessOp): void {
    this.state = this.require(op);
  }

  /** Record the exit; returns false when it must wait for the start to finish. */
  recordExit(e: ExitInfo): boolean {
    if (this.starting) {
      this.heldExit = e;
      return false;
    }
    if (this.exit) return false;
    this.exit = e;
    this.state = 'stopped';
    for (const w of this.waiters.splice(0)) w(e);
    return true;
  }

  /** After Start completed and its event is queued: the exit held meanwhile, if any. */
  takeHeldExit(): ExitInfo | undefined {
    const e = this.heldExit;
    this.heldExit = undefined;
    return e;
  }

  wait(): Promise<ExitInfo> {
    if (this.exit) return Promise.resolve(this.exit);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
