/**
 * The process state machine. One table says which operation is legal in which state
 * and where it leads (`check`, pure); a `Lifecycle` holds one process's state
 * privately and `Lifecycle.transition(op)` is the only way to move it: every task
 * operation, the exit and the delete included, goes through it before its backend
 * call and rolls back with the returned undo when that call fails. `TaskLocks`
 * serialises the operations of one task (docs/adr/0011-authoritative-lifecycle.md).
 * Mirrors containerd's runc shim (pkg/process/*_state.go, Init.mu / execProcess.mu).
 */
import { ShimError } from './errors.js';

export type ProcessState = 'created' | 'running' | 'pausing' | 'paused' | 'stopped' | 'deleted';

export type ProcessOp =
  | 'start'
  | 'pause'
  | 'paused'
  | 'resume'
  | 'exit'
  | 'delete'
  | 'kill'
  | 'exec'
  | 'update'
  | 'checkpoint'
  | 'resize'
  | 'pids'
  | 'stats';

/** For each operation: the states it is legal in, and the state it leads to (undefined = unchanged). */
const table: Record<ProcessOp, { from: readonly ProcessState[]; to?: ProcessState }> = {
  start: { from: ['created'], to: 'running' },
  pause: { from: ['running'], to: 'pausing' },
  paused: { from: ['pausing'], to: 'paused' },
  resume: { from: ['paused'], to: 'running' },
  exit: { from: ['created', 'running', 'pausing', 'paused'], to: 'stopped' },
  delete: { from: ['created', 'stopped'], to: 'deleted' },
  kill: { from: ['created', 'running', 'pausing', 'paused'] },
  exec: { from: ['created', 'running'] },
  update: { from: ['created', 'running', 'paused'] },
  checkpoint: { from: ['running', 'paused'] },
  resize: { from: ['created', 'running', 'paused'] },
  pids: { from: ['created', 'running', 'pausing', 'paused', 'stopped'] },
  stats: { from: ['created', 'running', 'pausing', 'paused'] },
};

/** runc-v2's state a refusal names: it has no `pausing` state (a flag on running). */
const asRunc = (s: ProcessState): ProcessState => (s === 'pausing' ? 'running' : s);

/** runc-v2's wording for refused operations (pkg/process/init_state.go, exec_state.go), so clients see the same messages. */
const refusal: Record<ProcessOp, (s: ProcessState) => string> = {
  start: (s) => `cannot start a ${asRunc(s)} process`,
  pause: (s) => (s === 'created' ? 'cannot pause task in created state' : s === 'paused' || s === 'stopped' ? `cannot pause a ${s} container` : `cannot pause a ${s} process`),
  paused: (s) => `cannot finish pausing a ${s} process`,
  resume: (s) => (s === 'created' ? 'cannot resume task in created state' : s === 'stopped' ? 'cannot resume a stopped container' : `cannot resume a ${asRunc(s)} process`),
  exit: (s) => `cannot exit a ${s} process`,
  delete: (s) => `cannot delete a ${asRunc(s)} process`,
  kill: () => 'process already finished',
  exec: (s) => `cannot exec in a ${s} state`,
  update: (s) => (s === 'stopped' ? 'cannot update a stopped container' : `cannot update a ${s} process`),
  checkpoint: (s) => (s === 'created' ? 'cannot checkpoint a task in created state' : s === 'stopped' ? 'cannot checkpoint a stopped container' : `cannot checkpoint a ${s} process`),
  resize: (s) => (s === 'stopped' ? 'cannot resize a stopped container' : `cannot resize a ${s} process`),
  pids: (s) => `cannot list pids of a ${s} process`,
  stats: (s) => `cannot get stats of a ${s} process`,
};

export type Check = { ok: true; next: ProcessState } | { ok: false; reason: string };

/** Pure: may `op` happen in state `s`, and what follows. */
export function check(s: ProcessState, op: ProcessOp): Check {
  const row = table[op];
  if (!row.from.includes(s)) return { ok: false, reason: refusal[op](s) };
  return { ok: true, next: row.to ?? s };
}

export function legalOps(s: ProcessState): ProcessOp[] {
  return (Object.keys(table) as ProcessOp[]).filter((op) => table[op].from.includes(s));
}

export const ALL_STATES: readonly ProcessState[] = ['created', 'running', 'pausing', 'paused', 'stopped', 'deleted'];
export const ALL_OPS = Object.keys(table) as readonly ProcessOp[];

/** Restores the state a transition left, if nothing moved the process since. */
export type Undo = () => void;

/**
 * One process's place in the table. The state is private: `transition` is the only
 * writer. A refused operation throws runc-v2's wording and class: plain errors
 * (Unknown), except Kill of a finished process (NotFound, which CRI relies on).
 */
export class Lifecycle {
  #state: ProcessState = 'created';

  get state(): ProcessState {
    return this.#state;
  }

  /** Whether `op` is legal now. */
  allows(op: ProcessOp): boolean {
    return check(this.#state, op).ok;
  }

  /**
   * Check `op` against the table and move to its target state (unchanged for the
   * operations that do not move). Throws the refusal when illegal. The returned undo
   * puts the previous state back, unless something moved the process since (an exit).
   */
  transition(op: ProcessOp): Undo {
    const r = check(this.#state, op);
    if (!r.ok) throw new ShimError(op === 'kill' ? 'NotFound' : 'Unknown', r.reason);
    const before = this.#state;
    this.#state = r.next;
    return () => {
      if (this.#state === r.next) this.#state = before;
    };
  }
}

/**
 * One FIFO async lock per task (container id): the operations of a task, its execs'
 * included, run one at a time in arrival order, as runc-v2's per-process mutex and
 * service lock order them. Entries vanish when their queue drains.
 */
export class TaskLocks {
  readonly #tails = new Map<string, Promise<void>>();

  /** Run `fn` once every earlier operation on `key` has finished. Joins the queue synchronously. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev ? prev.then(() => mine) : mine;
    this.#tails.set(key, tail);
    try {
      if (prev) await prev;
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }

  /** Keys with an operation running or queued (for tests and leak checks). */
  get size(): number {
    return this.#tails.size;
  }
}
