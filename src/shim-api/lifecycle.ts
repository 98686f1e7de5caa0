/**
 * The process state machine, pure. One table says which operation is legal in
 * which state and where it leads; `transition` is the only function that moves a
 * process. Mirrors containerd's runc shim (pkg/process/*_state.go).
 */
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

/** runc-v2's wording for refused operations, so clients see the same messages. */
const refusal: Record<ProcessOp, (s: ProcessState) => string> = {
  start: (s) => `cannot start a ${s === 'stopped' ? 'stopped' : s === 'deleted' ? 'deleted' : 'running'} process`,
  pause: (s) => `cannot pause a ${s} process`,
  paused: (s) => `cannot finish pausing a ${s} process`,
  resume: (s) => `cannot resume a ${s} process`,
  exit: (s) => `cannot exit a ${s} process`,
  delete: (s) => `cannot delete a ${s} process`,
  kill: () => 'process already finished',
  exec: (s) => `cannot exec in a ${s} state`,
  update: (s) => `cannot update a ${s} process`,
  checkpoint: (s) => `cannot checkpoint a ${s} process`,
  resize: (s) => `cannot resize a ${s} process`,
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
