// gVisor's own shim as a peer (ADR 0017), for the conformance matrix, critest and the bench: where
// setup put it, what it is called, and when it cannot run.
//
//   /opt/tsshim/peers/gvisor/bin/{runsc,containerd-shim-runsc-v1}        the pinned go-branch build, unpatched
//   /opt/tsshim/peers/gvisor-shim-patched/bin/containerd-shim-runsc-v1   the same source with ONE relaxation
//       (scripts/patches/gvisor-shim-oom-eperm.patch): its start tolerates the permission error on
//       lowering its own oom_score_adj to -999, which this host (no CAP_SYS_RESOURCE) refuses
//
// The patched shim is named by absolute path (ctr --runtime <path>, CRI runtime_path), so nothing
// goes on PATH and the unpatched binary is never picked up by mistake.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerdVersion } from './containerd-version.js';

export const PEERS_ROOT = '/opt/tsshim/peers';
export const GVISOR_PEER_DIR = join(PEERS_ROOT, 'gvisor');
export const GVISOR_PEER_RUNSC = join(GVISOR_PEER_DIR, 'bin', 'runsc');
export const GVISOR_SHIM_UNPATCHED = join(GVISOR_PEER_DIR, 'bin', 'containerd-shim-runsc-v1');
export const GVISOR_SHIM_PATCHED_DIR = join(PEERS_ROOT, 'gvisor-shim-patched');
export const GVISOR_SHIM_PATCHED = join(GVISOR_SHIM_PATCHED_DIR, 'bin', 'containerd-shim-runsc-v1');
/** gVisor's own shim's runtime type (its binary's name is derived from it when not given by path). */
export const GVISOR_SHIM_RUNTIME = 'io.containerd.runsc.v1';
/** The label the patched shim carries in every report. */
export const GVISOR_SHIM_PATCHED_LABEL = "gVisor's own shim, patched: oom_score_adj EPERM tolerated (no CAP_SYS_RESOURCE here)";
/** The runsc platform of gVisor's own shim and of tsshim's gvisor handler wherever they are compared (ADR 0017). */
export const GVISOR_PLATFORM = 'ptrace';

/**
 * containerd-shim-runsc-v1's ConfigPath file (pkg/shim/v1/runsc/options.go): the pinned runsc and
 * its flags. `network`: runsc's --network (sandbox: gVisor's netstack in the pod's netns).
 */
export function gvisorShimToml(network: 'none' | 'host' | 'sandbox', platform = GVISOR_PLATFORM): string {
  return `binary_name = ${JSON.stringify(GVISOR_PEER_RUNSC)}\n\n[runsc_config]\nplatform = ${JSON.stringify(platform)}\nnetwork = ${JSON.stringify(network)}\n`;
}

function stampOf(dir: string): string | undefined {
  try {
    return readFileSync(join(dir, 'VERSION'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Why the patched shim cannot run on this containerd here, or undefined. Needs both peers (the
 * shim, and the runsc it drives) with their stamps. containerd 1.6 cannot use it: the shim's
 * `start` answers with JSON bootstrap params (containerd >= 1.7), which 1.6 takes for an address.
 */
export function patchedShimUnavailable(version?: ContainerdVersion): string | undefined {
  if (!stampOf(GVISOR_SHIM_PATCHED_DIR) || !existsSync(GVISOR_SHIM_PATCHED)) {
    return `gVisor's own shim (patched) is not built: ${GVISOR_SHIM_PATCHED} or its VERSION stamp missing (scripts/peers.sh gvisor-shim-patched)`;
  }
  if (!stampOf(GVISOR_PEER_DIR) || !existsSync(GVISOR_PEER_RUNSC)) return `the pinned runsc is not built: ${GVISOR_PEER_RUNSC} (scripts/peers.sh gvisor)`;
  if (version === '1.6') {
    return "containerd 1.6 cannot read containerd-shim-runsc-v1's start answer (JSON bootstrap params, understood from containerd 1.7 on): gVisor's own shim does not run on 1.6";
  }
  return undefined;
}

/** "<stamp of the patched shim>; runsc <stamp>" for the reports. */
export function patchedShimDetail(): string {
  return `${stampOf(GVISOR_SHIM_PATCHED_DIR) ?? 'not built'}; runsc ${stampOf(GVISOR_PEER_DIR) ?? 'not built'} (platform ${GVISOR_PLATFORM})`;
}
