/** runsc (gVisor) driven through its runc-compatible CLI. */
import { defineProfile, type RuntimeProfile } from '../oci-cli/profile.js';
import { allOperationsExcept } from '../../shim-api/operations.js';

export interface GvisorOptions {
  /** 'systrap' needs runsc >= 2023; Debian's 2022 build knows ptrace and kvm only. */
  platform: 'ptrace' | 'systrap' | 'kvm';
  /** 'sandbox' needs a prepared network namespace in the spec (CNI); 'none' works anywhere. */
  network: 'none' | 'sandbox' | 'host';
  /** Directory for runsc's per-command debug logs (enables --debug). */
  debugLogDir?: string;
  /** More runsc global flags, like the [runsc_config] table of containerd-shim-runsc-v1: key -> --key=value. */
  extra?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * The pinned runsc that setup builds (scripts/peers.sh, ADR 0015): today's gVisor, with `update`
 * and the systrap platform. The handler prefers it when it is there (ADR 0017); Debian's 2022
 * runsc stays usable with `binary = "/usr/bin/runsc"` (platform then defaults to ptrace).
 */
export const GVISOR_PEER_RUNSC = '/opt/tsshim/peers/gvisor/bin/runsc';

/** What the runsc build can do beyond Debian's 0.0~20221219. */
export interface RunscBuild {
  /** Name on PATH or absolute path. */
  binary: string;
  /** `runsc update` exists (runsc >= 2023; the pinned build). */
  update: boolean;
  /**
   * `checkpoint --leave-running` resumes the same sandbox (the pinned build: CheckpointOpts.Resume,
   * runsc/cmd/checkpoint.go). Debian's 2022 runsc instead destroys the sandbox and restores a new
   * one with the same id, and waits on the old sandbox process, which the shim (its parent, a
   * child subreaper) has already reaped: "sandbox no longer running and its exit status is unavailable".
   */
  checkpointResumes: boolean;
  /**
   * `runsc features` prints the OCI features document (the pinned build: runsc/specutils
   * Features(), the same document gVisor's own shim reports from its `-info`). Debian's 2022
   * runsc has no `features`.
   */
  ociFeatures?: boolean;
}

export const DEBIAN_RUNSC: RunscBuild = { binary: 'runsc', update: false, checkpointResumes: false };

const FLAG_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const OWNED = new Set(['root', 'log', 'log-format', 'platform', 'network', 'debug', 'debug-log']);

/** runsc global flags for the given options, e.g. ['--platform=ptrace', '--network=none']. */
export function gvisorGlobalArgs(o: GvisorOptions): string[] {
  if (!['ptrace', 'systrap', 'kvm'].includes(o.platform)) throw new TypeError(`unknown gVisor platform ${JSON.stringify(o.platform)}`);
  if (!['none', 'sandbox', 'host'].includes(o.network)) throw new TypeError(`unknown gVisor network ${JSON.stringify(o.network)}`);
  const args = [`--platform=${o.platform}`, `--network=${o.network}`];
  if (o.debugLogDir !== undefined && o.debugLogDir !== '') {
    if (!o.debugLogDir.startsWith('/')) throw new TypeError(`debugLogDir must be absolute, got ${JSON.stringify(o.debugLogDir)}`);
    // A trailing '/' makes runsc create one file per command inside the directory.
    args.push('--debug', `--debug-log=${o.debugLogDir.replace(/\/*$/, '/')}`);
  }
  for (const [k, v] of Object.entries(o.extra ?? {})) {
    if (!FLAG_NAME_RE.test(k)) throw new TypeError(`invalid runsc flag name ${JSON.stringify(k)}`);
    if (OWNED.has(k)) throw new TypeError(`runsc flag --${k} is set by the driver or by GvisorOptions`);
    args.push(`--${k}=${String(v)}`);
  }
  return args;
}

/**
 * runsc keeps `<id>_sandbox:<sandbox id>.state` and `.lock` in its root; `delete` removes both,
 * but a `create` killed between taking the lock and writing the state leaves the lock alone,
 * and `delete` then finds no container. Those lock files, without their state file.
 */
export function runscStrayLocks(id: string, names: readonly string[]): string[] {
  const have = new Set(names);
  return names.filter((n) => n.startsWith(`${id}_sandbox:`) && n.endsWith('.lock') && !have.has(n.slice(0, -'.lock'.length) + '.state'));
}

/** A gVisor profile with the given runsc options, for the given runsc build (default: Debian's). */
export function gvisorProfileWith(o: GvisorOptions, build: RunscBuild = DEBIAN_RUNSC): RuntimeProfile {
  return defineProfile({
    name: 'runsc',
    binary: build.binary,
    defaultRoot: '/run/containerd/runsc',
    globalArgs: gvisorGlobalArgs(o),
    // Debian's runsc 0.0~20221219 has neither `update` nor `features`; today's has `update`
    // (`--resources -` like runc) and `features` (the OCI features document, which `-info` reports
    // as gVisor's own shim does, so containerd 2.x's CRI gates the same features for both).
    supports: [
      ...allOperationsExcept(...(build.update ? [] : ['update' as const]), ...(build.ociFeatures ? [] : ['features' as const])),
      'wait',
    ],
    psReportsHostPids: false,
    // The pid file holds the sandbox pid, shared by every container of the pod.
    exitMonitor: 'wait',
    strayFiles: runscStrayLocks,
    subcontainerStdioAt: 'start',
    checkpointExit: 'kill',
    shimUnsupported: build.checkpointResumes
      ? {}
      : {
          checkpoint:
            'runsc (Debian 0.0~20221219) rebuilds the sandbox while checkpointing and then waits on the old sandbox process, ' +
            'which tsshim as child subreaper has already reaped ("sandbox no longer running and its exit status is unavailable"); ' +
            'the pinned runsc (checkpoint --leave-running resumes the same sandbox) checkpoints through tsshim',
        },
    killAllFlag: true,
    forceDeleteFlag: '--force',
    // An exec's pid file names the host-side `runsc exec` helper: it forwards signals only for a
    // terminal, and SIGKILL kills just the helper, leaving the process in the sandbox running
    // (critest's execSync timeout). `runsc kill --pid <pid inside>`, as gVisor's own shim does.
    execSignal: 'runtime',
    flags: {
      // No pivot_root / session keyring in the host sense: the requests are meaningless, drop them.
      'create --no-pivot': 'drop',
      'create --no-new-keyring': 'drop',
      'restore --no-pivot': 'drop',
      // The pid of an exec inside the sandbox, which signals to it go to (execSignal below).
      'exec --internal-pid-file': 'pass',
      'kill --pid': 'pass',
      // gVisor checkpoints the whole sandbox into its own state file, not through CRIU: the CRIU
      // knobs (which ctr sets by default, e.g. file locks) have nothing to select, so they are dropped.
      'checkpoint --tcp-established': 'drop',
      'checkpoint --ext-unix-sk': 'drop',
      'checkpoint --shell-job': 'drop',
      'checkpoint --file-locks': 'drop',
      'checkpoint --empty-ns': 'drop',
      'checkpoint --manage-cgroups-mode': 'drop',
      'restore --tcp-established': 'drop',
      'restore --ext-unix-sk': 'drop',
      'restore --shell-job': 'drop',
      'restore --file-locks': 'drop',
    },
    notes: [
      'exec --pid-file holds a host-side `runsc exec` helper that lives as long as the process and exits with its status',
      'ps lists sandbox-internal pids',
      'checkpoint writes a gVisor state file (checkpoint.img); --work-path is accepted and ignored; restore starts the container',
      'kill TERM stops a container whose init ignores TERM under runc',
      'events: thin stats, no OOM events; stats and OOM must come from the sandbox cgroup',
      'sandbox, gofer and exec helper processes must be reaped promptly or delete fails with "context deadline exceeded"',
    ],
  });
}

/** Debian's runsc with the defaults that work anywhere: ptrace platform, no network. */
export const gvisorProfile: RuntimeProfile = gvisorProfileWith({ platform: 'ptrace', network: 'none' });
