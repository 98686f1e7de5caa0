/**
 * The one way the OCI-CLI driver runs a runtime binary. The driver never spawns
 * processes itself: the process-wide reaper supplies a CommandRunner so that the
 * runtime's own exit status is not stolen by the subreaper's wait loop.
 */
export type StdioSlot = number | 'ignore' | 'pipe';

export interface RunOptions {
  cwd?: string;
  /** Written to the child's stdin (stdin must be 'pipe'). */
  input?: string | Uint8Array;
  /** Extra environment; merged over the parent's environment by the runner. */
  env?: Record<string, string>;
  /** Kill the child after this many milliseconds. */
  timeoutMs?: number;
  stdio?: [StdioSlot, StdioSlot, StdioSlot];
}

export interface RunResult {
  /** Exit code; -1 (or any value) when `signal` is set. */
  exitCode: number;
  /** Name of the signal that terminated the child, e.g. 'SIGKILL'. */
  signal?: string;
  /** Captured stdout ('' when stdout was not 'pipe'). */
  stdout: string;
  /** Captured stderr ('' when stderr was not 'pipe'). */
  stderr: string;
  /** true when the child exited non-zero, was signalled or timed out. */
  failed: boolean;
  /** Optional: true when the runner killed the child because timeoutMs elapsed. */
  timedOut?: boolean;
}

/** Throws only when the binary cannot be spawned (ENOENT, EACCES, ...); the error carries `code`. */
export type CommandRunner = (file: string, args: string[], opts?: RunOptions) => Promise<RunResult>;
