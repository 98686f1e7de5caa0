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

/** What one command run gives back: the reaper's own result type (src/sys). */
export type { RunResult } from '../../sys/reaper.js';
import type { RunResult } from '../../sys/reaper.js';

/** Throws only when the binary cannot be spawned (ENOENT, EACCES, ...); the error carries `code`. */
export type CommandRunner = (file: string, args: string[], opts?: RunOptions) => Promise<RunResult>;
