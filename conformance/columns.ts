// The columns of the conformance matrix: one containerd runtime entry each.
//
//   reference  io.containerd.runc.v2 (containerd-shim-runc-v2): what every other column is compared to
//   runc       tsshim, handler "runc"
//   gvisor-ref gVisor's own shim containerd-shim-runsc-v1 (io.containerd.runsc.v1) with the pinned runsc
//              built by setup, PATCHED: oom_score_adj EPERM tolerated (no CAP_SYS_RESOURCE here): the
//              second reference, for the gvisor column only; CRI scenarios only, containerd >= 1.7 (ADR 0017)
//   gvisor     tsshim, handler "gvisor" (runsc, no network; judged against runc-v2 AND gvisor-ref)
//   kata       tsshim, handler "kata" delegating to containerd-shim-runc-v2: a STAND-IN delegate, not Kata
//   youki      tsshim, handler "youki"
//   crun       tsshim, handler "crun"
//   <type>     any handler from a handler config file (`tsshim conformance --handler-config FILE`, the kit
//              third parties use; columnFromHandlerConfig): a handler package or a built-in with options
//
// What a column declares it can do comes from the handler's profile (the registry's `supports`),
// so a scenario needing an operation the handler lacks is reported as "not supported" with the
// Unimplemented message the shim returned.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { loadConfigFile } from '../src/composition/config.js';
import { bindHandler } from '../src/composition/handler-module.js';
import { registry } from '../src/composition/registry.js';
import type { Operation } from '../src/shim-api/operations.js';
import { findHandler, probeHandler, type HandlerType } from '../src/composition/registry.js';
import { which } from '../src/composition/host.js';
import { RUNTIME_TYPE } from '../src/shim-api/runtime-type.js';
import { kataStandInDelegate } from '../test/helpers/containerd-version.js';
import { gvisorProfile } from '../src/handlers/gvisor/profile.js';
import { makeBundle } from '../test/helpers/bundle.js';
import { GVISOR_INIT_SIGTERM_REASON } from '../test/helpers/cri.js';
import { REPO_ROOT, runCommand } from '../test/helpers/proc.js';
import { selectedContainerd } from '../test/helpers/containerd-version.js';
import {
  GVISOR_PEER_DIR,
  GVISOR_PLATFORM,
  GVISOR_SHIM_PATCHED,
  GVISOR_SHIM_PATCHED_LABEL,
  GVISOR_SHIM_RUNTIME,
  GVISOR_SHIM_UNPATCHED,
  gvisorShimToml,
  patchedShimDetail,
  patchedShimUnavailable,
} from '../test/helpers/gvisor-peer.js';
import type { Scenario } from './types.js';
import type { SeenKernel } from '../test/helpers/isolation.js';

export const REFERENCE_RUNTIME = 'io.containerd.runc.v2';
export const TSSHIM_RUNTIME = RUNTIME_TYPE;

export type BuiltinColumnId = 'reference' | 'runc' | 'gvisor-ref' | 'gvisor' | 'kata' | 'youki' | 'crun';
/** A built-in column, or a handler config file's (its handler type). */
export type ColumnId = BuiltinColumnId | (string & {});
export const COLUMN_IDS: readonly BuiltinColumnId[] = ['reference', 'runc', 'gvisor-ref', 'gvisor', 'kata', 'youki', 'crun'];

/** gVisor's own shim and the runsc it drives: test/helpers/gvisor-peer.ts (ADR 0015, 0017). */
export { GVISOR_PEER_DIR, GVISOR_PLATFORM, GVISOR_SHIM_RUNTIME };

/** reference: runc-v2, what the others are compared with; tsshim: one of tsshim's own handlers; stand-in: a tsshim handler in front of a substitute backend; peer-reference: gVisor's own shim, the gvisor column's second yardstick (ADR 0017); handler: the handler of a config file under test (the kit). */
export type ColumnKind = 'reference' | 'tsshim' | 'stand-in' | 'peer-reference' | 'handler';

export type Availability = { run: true; detail?: string } | { run: false; reason: string };

export interface Column {
  id: ColumnId;
  kind: ColumnKind;
  /** Header label in the reports. */
  header: string;
  /** containerd runtime type. */
  runtimeType: string;
  /**
   * A peer reference (gVisor's own shim): its cells are observations compared with runc-v2 and
   * reported as "differs", never counted as tsshim failures; it is the second yardstick of the
   * column named in `peerReferenceFor`.
   */
  peerReferenceFor?: ColumnId;
  /** The column whose observations this one is also judged against (gvisor -> gvisor-ref). */
  peerReference?: ColumnId;
  /** Directory the private containerd must have on its PATH for this column's shim. */
  shimPath?: string;
  /** The shim binary by absolute path (CRI runtime_path), when it is not the one named after runtimeType. */
  runtimePath?: string;
  /** Why this column cannot run one scenario although it runs (the cell is "not run" with this reason). */
  cellUnavailable?(scenario: Pick<Scenario, 'id' | 'cri'>): string | undefined;
  /** tsshim handler type; undefined for the reference. */
  handler?: HandlerType | (string & {});
  /** Body of the runtime options' ConfigPath file (tsshim handler config, runsc shim options); undefined for the reference. */
  handlerToml?: string;
  /** The handler config file itself, used where it is (a relative `module:` path resolves from its directory); the kit's column. */
  handlerConfigFile?: string;
  /** Handler config for the CRI runtime entry, when it differs (gVisor: host network for host-network pods). */
  criHandlerToml?: string;
  /** The program that runs the container under the shim (runc, runsc, youki, crun, or the Kata column's delegate shim). */
  backend: string;
  /** How `Checkpoint` is carried out: CRIU (runc and anything delegating to runc-v2) or runsc's own. */
  checkpointEngine: 'criu' | 'runsc';
  /** Whether the task pid is a process in the container's own pid namespace on the host (false: a sandbox). */
  hostPidNamespaceJoinable: boolean;
  /**
   * The kernel the container must see: the host's, gVisor's Sentry, or a VM's own. A stand-in
   * declares what the stand-in gives (the Kata column's runc-v2 delegate runs on the host kernel).
   */
  isolation: SeenKernel;
  /**
   * Differences from the reference this column's handler declares (its profile says so), keyed
   * `<scenario id>:<observation path>`, with the reason. Reported, not counted as failures.
   */
  knownDifferences?: Readonly<Record<string, string>>;
  /** Can this column run on this host? */
  probe(): Promise<Availability>;
  /** Does the handler's profile declare this operation? */
  declares(op: Operation): boolean;
}

const TSSHIM_BUNDLE = join(REPO_ROOT, 'dist', 'bundle', 'main.js');

function tsshimBuilt(): Availability | undefined {
  if (!existsSync(join(REPO_ROOT, 'bin', 'containerd-shim-tsshim-v2'))) return { run: false, reason: 'bin/containerd-shim-tsshim-v2 missing' };
  if (!existsSync(TSSHIM_BUNDLE)) return { run: false, reason: `tsshim not built: ${TSSHIM_BUNDLE} missing (npm run build)` };
  return undefined;
}

function needBinaries(...names: string[]): Availability {
  for (const n of names) if (!which(n)) return { run: false, reason: `${n} not installed` };
  return { run: true };
}

function gvisorKnownDifferences(): Record<string, string> {
  const out: Record<string, string> = {};
  // Measured with runsc alone (`script -c "runsc do sh -c tty"`: "not a tty"): gVisor imports the
  // console's host pty into the sandbox; its ioctls work (stty size) but it is no /dev/pts node there.
  out['tty-size:stdinIsPty'] = 'runsc imports the host console pty into the sandbox: `stty size` works, but ttyname(0) fails there (`tty`: "not a tty"), with or without a shim';
  out['cri-pod-lifecycle:stopExitCode'] = GVISOR_INIT_SIGTERM_REASON;
  if (!gvisorProfile.psReportsHostPids) {
    out['pids:initPidListed'] = 'gvisor profile psReportsHostPids=false: `runsc ps` lists sandbox-internal pids; the task pid is the sandbox\'s host pid';
  }
  return out;
}

/**
 * Whether the UNPATCHED containerd-shim-runsc-v1 can start here: its `start` sets the shim's
 * oom_score_adj to -999 and fails on a permission error (pkg/shim/v1/manager.go), which needs
 * CAP_SYS_RESOURCE. Probed for real: a child tries the same write. (The column runs the patched
 * build, which tolerates exactly that error; this says why it is needed.)
 */
export async function probeUnpatchedGvisorShim(dir = GVISOR_PEER_DIR): Promise<Availability> {
  const stamp = join(dir, 'VERSION');
  if (!existsSync(stamp)) return { run: false, reason: `gVisor's own shim not built: ${stamp} missing (scripts/peers.sh gvisor builds runsc and containerd-shim-runsc-v1)` };
  for (const b of ['runsc', 'containerd-shim-runsc-v1']) {
    if (!existsSync(join(dir, 'bin', b))) return { run: false, reason: `gVisor's own shim not built: ${join(dir, 'bin', b)} missing` };
  }
  const oom = await runCommand('/bin/sh', ['-c', 'echo -999 > /proc/self/oom_score_adj'], { timeoutMs: 10_000 });
  if (oom.exitCode !== 0) {
    return {
      run: false,
      reason:
        `the unpatched ${GVISOR_SHIM_UNPATCHED} cannot start on this host: its start sets its oom_score_adj to -999 and fails on "permission denied" ` +
        `(this host cannot lower oom_score_adj: no CAP_SYS_RESOURCE; probe \`echo -999 > /proc/self/oom_score_adj\` exited ${oom.exitCode}); ADR 0017`,
    };
  }
  return { run: true, detail: `containerd-shim-runsc-v1 and runsc ${readFileSync(stamp, 'utf8').trim()} (platform ${GVISOR_PLATFORM})` };
}

/**
 * Plain-ctr scenarios under gVisor's own shim: its Create of a container without the
 * io.kubernetes.cri.container-type annotation does not return (ADR 0017, measured there).
 */
export const GVISOR_REF_CTR_NOT_RUN =
  "plain ctr: gVisor's own shim does not return from Create of a container without CRI's io.kubernetes.cri.container-type annotation " +
  "(measured 2026-12-02 on containerd 2.4.2: `ctr run --rm … echo hello` still waiting after 90 s; the cause is in ADR 0017); only CRI scenarios run on this column";

/**
 * gVisor's own shim (patched build) runs when setup built it and the runsc it drives, on a
 * containerd that reads its start answer (>= 1.7); the unpatched build's probe is in the detail.
 */
export async function probeGvisorPeer(): Promise<Availability> {
  const why = patchedShimUnavailable(selectedContainerd());
  if (why) return { run: false, reason: why };
  const unpatched = await probeUnpatchedGvisorShim();
  return {
    run: true,
    detail: `${GVISOR_SHIM_PATCHED_LABEL}: ${GVISOR_SHIM_PATCHED} (${patchedShimDetail()}); CRI scenarios only; ${unpatched.run ? 'the unpatched build could start here too' : unpatched.reason}`,
  };
}

function declaresFromRegistry(type: HandlerType): (op: Operation) => boolean {
  const entry = findHandler(type);
  if (!entry) throw new Error(`no handler ${type} in the registry`);
  const set = new Set<Operation>(entry.supports);
  return (op) => set.has(op);
}

/**
 * crun 1.8.1 fails every create on hybrid cgroup hosts. Try one `crun run` of a busybox bundle
 * (no containerd) and report crun's own error when it fails.
 */
export async function probeCrunCreate(binary = '/usr/bin/crun'): Promise<Availability> {
  const dir = mkdtempSync(join(tmpdir(), 'tsshim-crun-probe-'));
  const id = `crun-probe-${process.pid}`;
  const root = join(dir, 'state');
  try {
    mkdirSync(root);
    makeBundle(join(dir, 'bundle'), { args: ['true'] });
    const r = await runCommand(binary, ['--root', root, 'run', '--bundle', join(dir, 'bundle'), id], { timeoutMs: 30_000 });
    if (r.exitCode === 0) return { run: true, detail: 'probe `crun run` of a busybox bundle succeeded' };
    const msg = (r.stderr + r.stdout).trim().split('\n').filter(Boolean).pop() ?? `exit status ${r.exitCode}`;
    return { run: false, reason: `crun fails every create on this host: probe \`crun run\` exited ${r.exitCode}: "${msg}"` };
  } catch (e) {
    return { run: false, reason: `crun probe failed: ${(e as Error).message}` };
  } finally {
    await runCommand(binary, ['--root', root, 'delete', '-f', id], { timeoutMs: 10_000 }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The handler's own doctor verdict (`tsshim doctor`): not usable -> not run, with its reason. */
async function doctorSays(type: HandlerType): Promise<Availability | undefined> {
  const p = await probeHandler(findHandler(type)!);
  return p.usable ? undefined : { run: false, reason: `tsshim doctor: ${p.reason}` };
}

export const COLUMNS: Readonly<Record<BuiltinColumnId, Column>> = Object.freeze({
  reference: {
    id: 'reference',
    kind: 'reference',
    backend: 'runc',
    header: 'reference (io.containerd.runc.v2)',
    runtimeType: REFERENCE_RUNTIME,
    checkpointEngine: 'criu',
    hostPidNamespaceJoinable: true,
    isolation: 'host-kernel',
    probe: async () => needBinaries('containerd-shim-runc-v2', 'runc'),
    declares: () => true,
  },
  runc: {
    id: 'runc',
    kind: 'tsshim',
    backend: 'runc',
    header: 'runc (tsshim, handler runc)',
    runtimeType: TSSHIM_RUNTIME,
    handler: 'runc',
    handlerToml: 'handler = "runc"\nname = "conformance-runc"\n',
    checkpointEngine: 'criu',
    hostPidNamespaceJoinable: true,
    isolation: 'host-kernel',
    probe: async () => tsshimBuilt() ?? needBinaries('runc'),
    declares: declaresFromRegistry('runc'),
  },
  'gvisor-ref': {
    id: 'gvisor-ref',
    kind: 'peer-reference',
    backend: 'runsc (pinned go branch) through containerd-shim-runsc-v1 (patched: oom_score_adj EPERM tolerated)',
    header: `${GVISOR_SHIM_PATCHED_LABEL} (${GVISOR_SHIM_RUNTIME}, reference for gvisor)`,
    runtimeType: GVISOR_SHIM_RUNTIME,
    runtimePath: GVISOR_SHIM_PATCHED,
    cellUnavailable: (s) => (s.cri ? undefined : GVISOR_REF_CTR_NOT_RUN),
    peerReferenceFor: 'gvisor',
    // containerd-shim-runsc-v1's ConfigPath file (pkg/shim/v1/runsc/options.go): runsc binary and flags.
    handlerToml: gvisorShimToml('none'),
    criHandlerToml: gvisorShimToml('host'),
    checkpointEngine: 'runsc',
    hostPidNamespaceJoinable: false,
    isolation: 'gvisor',
    probe: () => probeGvisorPeer(),
    declares: () => true,
  },
  gvisor: {
    id: 'gvisor',
    kind: 'tsshim',
    backend: 'runsc',
    header: `gvisor (tsshim, runsc ${GVISOR_PLATFORM})`,
    runtimeType: TSSHIM_RUNTIME,
    peerReference: 'gvisor-ref',
    handler: 'gvisor',
    // No binary, no platform: the handler's defaults (the pinned runsc when setup built it, ptrace; ADR 0017).
    handlerToml: 'handler = "gvisor"\nname = "conformance-gvisor"\n\n[options]\nnetwork = "none"\n',
    criHandlerToml: 'handler = "gvisor"\nname = "conformance-gvisor"\n\n[options]\nnetwork = "host"\n',
    checkpointEngine: 'runsc',
    hostPidNamespaceJoinable: false,
    isolation: 'gvisor',
    knownDifferences: gvisorKnownDifferences(),
    probe: async () => tsshimBuilt() ?? needBinaries('runsc'),
    declares: declaresFromRegistry('gvisor'),
  },
  kata: {
    id: 'kata',
    kind: 'stand-in',
    backend: 'containerd-shim-runc-v2 (delegate stand-in)',
    header: 'kata (delegate stand-in: containerd-shim-runc-v2)',
    runtimeType: TSSHIM_RUNTIME,
    handler: 'kata',
    // The stand-in is that containerd's own runc shim (on 2.x it speaks the bootstrap protocol; kataStandInDelegate).
    handlerToml: `handler = "kata"\nname = "conformance-kata-standin"\n\n[options]\nshim = ${JSON.stringify(kataStandInDelegate())}\n`,
    checkpointEngine: 'criu',
    hostPidNamespaceJoinable: true,
    // The stand-in delegate (runc-v2) runs the container on the host kernel; real Kata would be 'vm'.
    isolation: 'host-kernel',
    probe: async (): Promise<Availability> => {
      const built = tsshimBuilt();
      if (built) return built;
      const a = needBinaries('containerd-shim-runc-v2', 'runc');
      return a.run ? { run: true, detail: 'stand-in delegate containerd-shim-runc-v2; real Kata is not installed' } : a;
    },
    declares: declaresFromRegistry('kata'),
  },
  youki: {
    id: 'youki',
    kind: 'tsshim',
    backend: 'youki',
    header: 'youki (tsshim, handler youki)',
    runtimeType: TSSHIM_RUNTIME,
    handler: 'youki',
    handlerToml: 'handler = "youki"\nname = "conformance-youki"\n',
    checkpointEngine: 'criu',
    hostPidNamespaceJoinable: true,
    isolation: 'host-kernel',
    probe: async () => tsshimBuilt() ?? (which('youki') ? { run: true } : { run: false, reason: 'youki not installed' }),
    declares: declaresFromRegistry('youki'),
  },
  crun: {
    id: 'crun',
    kind: 'tsshim',
    backend: 'crun',
    header: 'crun (tsshim, handler crun)',
    runtimeType: TSSHIM_RUNTIME,
    handler: 'crun',
    handlerToml: 'handler = "crun"\nname = "conformance-crun"\n',
    checkpointEngine: 'criu',
    hostPidNamespaceJoinable: true,
    isolation: 'host-kernel',
    probe: async (): Promise<Availability> => {
      const built = tsshimBuilt();
      if (built) return built;
      const doctor = await doctorSays('crun');
      if (doctor) return doctor;
      return probeCrunCreate(which('crun'));
    },
    declares: declaresFromRegistry('crun'),
  },
});

/** Writes each column's handler config files into dir; returns column id -> { ctr, cri } paths. */
export function writeHandlerConfigs(dir: string, columns: readonly Column[]): Map<ColumnId, { ctr?: string; cri?: string }> {
  mkdirSync(dir, { recursive: true });
  const out = new Map<ColumnId, { ctr?: string; cri?: string }>();
  for (const c of columns) {
    if (c.handlerConfigFile) {
      out.set(c.id, { ctr: c.handlerConfigFile, cri: c.handlerConfigFile });
      continue;
    }
    if (!c.handlerToml) {
      out.set(c.id, {});
      continue;
    }
    const ctr = join(dir, `${c.id}.toml`);
    writeFileSync(ctr, c.handlerToml);
    let cri = ctr;
    if (c.criHandlerToml) {
      cri = join(dir, `${c.id}-cri.toml`);
      writeFileSync(cri, c.criHandlerToml);
    }
    out.set(c.id, { ctr, cri });
  }
  return out;
}

/**
 * Parses `--handlers runc,gvisor` (any order, "all"); the reference is always included, first, and
 * a column's peer reference (gvisor -> gvisor-ref) comes with it.
 */
export function selectColumns(list: string | undefined): Column[] {
  const ids = !list || list === 'all' ? [...COLUMN_IDS] : list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of ids) {
    if (!COLUMN_IDS.includes(id as BuiltinColumnId)) throw new Error(`unknown column "${id}"; known: ${COLUMN_IDS.join(', ')}`);
  }
  const set = new Set<BuiltinColumnId>(['reference', ...(ids as BuiltinColumnId[])]);
  for (const id of [...set]) {
    const peer = COLUMNS[id].peerReference as BuiltinColumnId | undefined;
    if (peer) set.add(peer);
  }
  return COLUMN_IDS.filter((id) => set.has(id)).map((id) => COLUMNS[id]);
}

/**
 * The kit's column: the handler a handler config file selects (a handler package by `module:`, or a
 * built-in with its options), run through tsshim with that file as the runtime options' ConfigPath,
 * where it lies. What it declares (operations) and how it isolates come from its definition
 * (`supports`, `conformance`); whether it runs here from its own doctor verdict. A module that is
 * missing or broken is an Error with the loader's message (nothing is run).
 */
export async function columnFromHandlerConfig(file: string): Promise<Column> {
  const abs = resolve(file);
  const shim = await loadConfigFile(abs);
  const { definition: def, config } = await bindHandler(shim.handler, abs, registry);
  const hints = def.conformance ?? {};
  const id = COLUMN_IDS.includes(def.type as BuiltinColumnId) ? `config-${def.type}` : def.type;
  const supports = new Set<Operation>(def.supports);
  const binary = def.binariesFor(config)[0] ?? def.binary;
  const source = config.module ? `module:${config.module.specifier}` : `handler ${def.type}`;
  return {
    id,
    kind: 'handler',
    // runc-options.ts runs only where the backend is runc itself: runc's runtime options select tsshim's
    // runc handler, not this config, so that scenario says why it is not run here.
    backend: `${basename(binary)} through ${def.type}`,
    header: `${def.type} (tsshim, ${source}, ${basename(abs)})`,
    runtimeType: TSSHIM_RUNTIME,
    handler: def.type,
    // For the report: the settings, without the file's comments.
    handlerToml: readFileSync(abs, 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#')).join('\n') + '\n',
    handlerConfigFile: abs,
    checkpointEngine: hints.checkpointEngine ?? 'criu',
    hostPidNamespaceJoinable: hints.hostPidNamespaceJoinable ?? true,
    isolation: hints.isolation ?? 'host-kernel',
    ...(hints.knownDifferences ? { knownDifferences: { ...hints.knownDifferences } } : {}),
    probe: async (): Promise<Availability> => {
      const built = tsshimBuilt();
      if (built) return built;
      const p = await probeHandler(def, config);
      return p.usable ? { run: true, detail: `tsshim doctor: ${p.reason}` } : { run: false, reason: `tsshim doctor: ${p.reason}` };
    },
    declares: (op) => supports.has(op),
  };
}
