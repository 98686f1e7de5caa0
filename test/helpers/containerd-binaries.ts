// The one place that names the containerd and ctr binaries the test helpers run.
//
// By default both come from PATH (the host's containerd). A `dir` (e.g. a peer build such as
// /opt/tsshim/peers/containerd-2/bin) names <dir>/containerd and <dir>/ctr, and is put on the
// private containerd's PATH right after <repo>/bin, so that version's containerd-shim-runc-v2 is
// the reference shim. Version selection (env, per-test choice) builds on containerdBinaries().
import { join } from 'node:path';

export interface ContainerdBinaries {
  /** Path or PATH name of the containerd daemon. */
  containerd: string;
  /** Path or PATH name of ctr (must match the daemon's version). */
  ctr: string;
  /** Directory holding both (and containerd-shim-runc-v2); undefined = from PATH. */
  dir?: string;
}

/** containerd and ctr from dir, or from PATH when dir is undefined. */
export function containerdBinaries(dir?: string): ContainerdBinaries {
  if (!dir) return { containerd: 'containerd', ctr: 'ctr' };
  return { containerd: join(dir, 'containerd'), ctr: join(dir, 'ctr'), dir };
}
