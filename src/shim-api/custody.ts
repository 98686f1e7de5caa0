/**
 * Node mode's worker restarts (ADR 0018, issue 12.2): what a task handler hands to the process that
 * outlives it (the supervisor), so that a new worker can take its tasks over.
 *
 * - fds: every fd a running task needs after a worker dies (stdio pipe ends, console masters,
 *   containerd's FIFOs opened by the shim). The supervisor keeps a duplicate, so output written
 *   while no worker runs waits in the pipe and containerd's FIFO readers never see EOF.
 * - records: a JSON-able description of each task, enough for `TaskHandler.adopt` to rebuild it
 *   together with the backend's own state and the kept fds.
 * In pod mode there is no custody (HandlerContext.custody undefined): nothing outlives the shim.
 */
export interface Custody {
  /** Hand the supervisor a duplicate of `fd` under `key` (`<id>/<exec id>/<role>`); the fd stays open and ours. */
  keepFd(key: string, fd: number): void;
  /** The supervisor closes its duplicates of every fd whose key starts with `prefix`. */
  dropFds(prefix: string): void;
  /** Store (replace) the record of task `id`; `undefined` forgets it (Delete). */
  saveRecord(id: string, record: unknown): void;
}

/** What a new worker gets back for one task. */
export interface Adoption {
  id: string;
  /** the last record saved for it */
  record: unknown;
  /** the fds kept for it, by key (this process's own fds now) */
  fds: Map<string, number>;
}
