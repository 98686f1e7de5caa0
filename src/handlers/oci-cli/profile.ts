/**
 * A RuntimeProfile is the data a backend contributes to the shared OCI-CLI
 * driver: which binary, which global flags, which subcommands exist and which
 * per-subcommand flags differ from runc's. No behaviour lives here.
 */
import { ShimError } from '../../shim-api/errors.js';
import { ALL_OPERATIONS, RUNC_OPERATIONS, type Operation } from '../../shim-api/operations.js';

/** The capability vocabulary lives in shim-api; re-exported for the driver's signatures. */
export type { Operation } from '../../shim-api/operations.js';

/**
 * How the driver treats one optional flag of one subcommand.
 * - pass: put it on the command line (default for runc's own flags)
 * - drop: leave it out silently (the backend has no such flag and the request is meaningless for it)
 * - reject: refuse the operation with Unimplemented before running anything (default for
 *   flags runc does not have, e.g. runsc's `exec --internal-pid-file`)
 */
export type FlagDisposition = 'pass' | 'drop' | 'reject';

/** Key of a flag override: `<subcommand operation> <flag>`, e.g. `'create --no-pivot'`. */
export type FlagKey = `${Operation} --${string}`;

export interface RuntimeProfile {
  /** 'runc' | 'runsc' | 'youki' | configured name; appears in every error message. */
  readonly name: string;
  /** Default binary: a name looked up on PATH, or an absolute path. */
  readonly binary: string;
  /** Extra global flags placed after --root/--log/--log-format, e.g. runsc's ['--platform=ptrace', '--network=none']. */
  readonly globalArgs: readonly string[];
  /** State root; the driver appends '/<namespace>' like containerd's runc shim. */
  readonly defaultRoot: string;
  readonly supports: ReadonlySet<Operation>;
  /** Subcommand used for checkpoint when it is not 'checkpoint' (youki: 'checkpointt'). */
  readonly checkpointSubcommand?: string;
  /** false when `ps` lists sandbox-internal pids (runsc). */
  readonly psReportsHostPids: boolean;
  /** Whether `kill --all` exists; without it the driver signals the init only. */
  readonly killAllFlag: boolean;
  /** Flag that makes delete kill a running container first. */
  readonly forceDeleteFlag: string;
  /** Flag selecting the systemd cgroup driver; undefined = the backend has none. */
  readonly systemdCgroupFlag?: string;
  /** Global flag naming the CRIU binary (runc: '--criu'); undefined = not a CRIU backend. */
  readonly criuFlag?: string;
  /** Per-subcommand flag differences from runc (see FlagDisposition). */
  readonly flags: ReadonlyMap<string, FlagDisposition>;
  /**
   * How the shim learns that a container's init exited. 'reap': the pid in the pid file is the
   * init, re-parented to us (runc, crun, youki). 'wait': the pid file holds a sandbox shared by
   * the pod's containers; `<binary> wait <id>` reports each container's exit (runsc).
   */
  readonly exitMonitor: 'reap' | 'wait';
  /**
   * Which command's stdio becomes a pod sub-container's stdio: 'create' (runc) or 'start' (runsc
   * hands the `start` command's stdio to containers that join an existing sandbox).
   */
  readonly subcontainerStdioAt: 'create' | 'start';
  /**
   * How "checkpoint and exit" is done: 'flag' (omit --leave-running: runc) or 'kill' (checkpoint
   * with --leave-running, then SIGKILL: runsc fails its own post-checkpoint wait when the shim,
   * as subreaper, has already reaped the sandbox).
   */
  readonly checkpointExit: 'flag' | 'kill';
  /**
   * Operations the backend's CLI has but tsshim's task handler cannot offer through containerd,
   * with the reason (answered as Unimplemented).
   */
  readonly shimUnsupported: Readonly<Partial<Record<Operation, string>>>;
  /**
   * `linux.rootfsPropagation` values the backend refuses, with the value it accepts for the same
   * mount flags (youki 0.7 takes only the OCI spec's names, shared/slave/private/unbindable, and
   * always adds MS_REC; containerd's CRI writes rshared/rslave). The task handler rewrites the
   * bundle's config.json before `create` when the spec holds one of these keys.
   */
  readonly rootfsPropagationAliases: Readonly<Record<string, string>>;
  /**
   * How a signal reaches an exec'd process. 'pid': kill(2) on the pid from `exec --pid-file`
   * (runc: the process itself). 'runtime': `<binary> kill --pid <pid inside> <id> <signal>`,
   * with the pid from `exec --internal-pid-file` (runsc: the pid file names a host-side
   * `runsc exec` helper, which forwards catchable signals but dies of SIGKILL alone, leaving the
   * process in the sandbox running; gVisor's own shim signals execs this way).
   */
  readonly execSignal: 'pid' | 'runtime';
  /**
   * Files in the state root that a backend command killed part-way leaves for container `id`
   * and its own `delete` does not remove (runsc: the `<id>_sandbox:<sandbox>.lock` of a `create`
   * killed before it wrote the `.state`; node mode kills a dead worker's commands, ADR 0018).
   * Given the root's entries; the shim's cleanup removes what this returns after a forced delete.
   */
  readonly strayFiles?: (id: string, names: readonly string[]) => string[];
  /** Known differences, for docs and `doctor`. */
  readonly notes?: readonly string[];
}

export interface ProfileSpec {
  name: string;
  binary: string;
  defaultRoot: string;
  globalArgs?: readonly string[];
  /** Default: every operation. */
  supports?: Iterable<Operation>;
  checkpointSubcommand?: string;
  /** Default true. */
  psReportsHostPids?: boolean;
  /** Default true. */
  killAllFlag?: boolean;
  /** Default '--force'. */
  forceDeleteFlag?: string;
  /** Default '--systemd-cgroup'; false = the backend has no such flag. */
  systemdCgroupFlag?: string | false;
  /** Default none. */
  criuFlag?: string;
  flags?: Readonly<Partial<Record<FlagKey, FlagDisposition>>>;
  /** Default 'reap'. */
  exitMonitor?: 'reap' | 'wait';
  /** Default 'create'. */
  subcontainerStdioAt?: 'create' | 'start';
  /** Default 'flag'. */
  checkpointExit?: 'flag' | 'kill';
  /** Default none. */
  shimUnsupported?: Readonly<Partial<Record<Operation, string>>>;
  /** Default none. */
  rootfsPropagationAliases?: Readonly<Record<string, string>>;
  /** Default 'pid'. */
  execSignal?: 'pid' | 'runtime';
  strayFiles?: (id: string, names: readonly string[]) => string[];
  notes?: readonly string[];
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const FLAG_RE = /^--?[A-Za-z0-9][A-Za-z0-9._-]*$/;

function bad(name: string, what: string): ShimError {
  return new ShimError('InvalidArgument', `runtime profile "${name}": ${what}`);
}

/** Validate a profile spec, fill in the defaults and freeze the result. */
export function defineProfile(p: ProfileSpec): RuntimeProfile {
  const name = p.name;
  if (typeof name !== 'string' || !NAME_RE.test(name)) throw bad(String(name), 'name must match ' + NAME_RE);
  if (typeof p.binary !== 'string' || p.binary.trim() === '' || /\s/.test(p.binary)) {
    throw bad(name, `binary must be a non-empty name or path without spaces, got ${JSON.stringify(p.binary)}`);
  }
  if (p.binary.includes('/') && !p.binary.startsWith('/')) {
    throw bad(name, `binary "${p.binary}" must be a bare name (looked up on PATH) or an absolute path`);
  }
  if (typeof p.defaultRoot !== 'string' || !p.defaultRoot.startsWith('/')) {
    throw bad(name, `defaultRoot must be an absolute path, got ${JSON.stringify(p.defaultRoot)}`);
  }
  const globalArgs = [...(p.globalArgs ?? [])];
  for (const a of globalArgs) {
    if (typeof a !== 'string' || !a.startsWith('-')) throw bad(name, `global argument ${JSON.stringify(a)} is not a flag`);
    if (/^--?(root|log|log-format)(=|$)/.test(a)) {
      throw bad(name, `global argument ${a} is owned by the driver (--root, --log, --log-format)`);
    }
  }
  const supports = new Set<Operation>();
  for (const op of p.supports ?? RUNC_OPERATIONS) {
    if (!ALL_OPERATIONS.includes(op)) throw bad(name, `unknown operation ${JSON.stringify(op)} in supports`);
    supports.add(op);
  }
  const checkFlag = (what: string, f: string | undefined) => {
    if (f !== undefined && !FLAG_RE.test(f)) throw bad(name, `${what} ${JSON.stringify(f)} is not a flag`);
  };
  if (p.checkpointSubcommand !== undefined && !NAME_RE.test(p.checkpointSubcommand)) {
    throw bad(name, `checkpointSubcommand ${JSON.stringify(p.checkpointSubcommand)} is not a subcommand name`);
  }
  const forceDeleteFlag = p.forceDeleteFlag ?? '--force';
  checkFlag('forceDeleteFlag', forceDeleteFlag);
  const systemdCgroupFlag = p.systemdCgroupFlag === false ? undefined : (p.systemdCgroupFlag ?? '--systemd-cgroup');
  checkFlag('systemdCgroupFlag', systemdCgroupFlag);
  checkFlag('criuFlag', p.criuFlag);
  const flags = new Map<string, FlagDisposition>();
  for (const [key, disp] of Object.entries(p.flags ?? {}) as [string, FlagDisposition | undefined][]) {
    const m = /^([a-z]+) (--[A-Za-z0-9][A-Za-z0-9._-]*)$/.exec(key);
    if (!m || !ALL_OPERATIONS.includes(m[1] as Operation)) {
      throw bad(name, `flag key ${JSON.stringify(key)} must be "<operation> --<flag>"`);
    }
    if (disp !== 'pass' && disp !== 'drop' && disp !== 'reject') {
      throw bad(name, `flag ${key}: disposition must be pass, drop or reject`);
    }
    flags.set(key, disp);
  }
  const profile: RuntimeProfile = {
    name,
    binary: p.binary,
    globalArgs: Object.freeze(globalArgs),
    defaultRoot: p.defaultRoot.length > 1 ? p.defaultRoot.replace(/\/+$/, '') : p.defaultRoot,
    supports: new FrozenSet(supports),
    ...(p.checkpointSubcommand !== undefined ? { checkpointSubcommand: p.checkpointSubcommand } : {}),
    psReportsHostPids: p.psReportsHostPids ?? true,
    killAllFlag: p.killAllFlag ?? true,
    forceDeleteFlag,
    ...(systemdCgroupFlag !== undefined ? { systemdCgroupFlag } : {}),
    ...(p.criuFlag !== undefined ? { criuFlag: p.criuFlag } : {}),
    flags: new FrozenMap(flags),
    exitMonitor: p.exitMonitor ?? 'reap',
    subcontainerStdioAt: p.subcontainerStdioAt ?? 'create',
    checkpointExit: p.checkpointExit ?? 'flag',
    shimUnsupported: Object.freeze({ ...(p.shimUnsupported ?? {}) }),
    rootfsPropagationAliases: Object.freeze({ ...(p.rootfsPropagationAliases ?? {}) }),
    execSignal: p.execSignal ?? 'pid',
    ...(p.strayFiles !== undefined ? { strayFiles: p.strayFiles } : {}),
    ...(p.notes !== undefined ? { notes: Object.freeze([...p.notes]) } : {}),
  };
  return Object.freeze(profile);
}

class FrozenSet<T> extends Set<T> {
  #frozen = false;
  constructor(items: Iterable<T>) {
    super();
    for (const i of items) super.add(i);
    this.#frozen = true;
  }
  override add(v: T): this {
    if (this.#frozen) throw new TypeError('profile.supports is read-only');
    return super.add(v);
  }
  override delete(): boolean {
    throw new TypeError('profile.supports is read-only');
  }
  override clear(): void {
    throw new TypeError('profile.supports is read-only');
  }
}

class FrozenMap<K, V> extends Map<K, V> {
  #frozen = false;
  constructor(entries: Iterable<readonly [K, V]>) {
    super();
    for (const [k, v] of entries) super.set(k, v);
    this.#frozen = true;
  }
  override set(k: K, v: V): this {
    if (this.#frozen) throw new TypeError('profile.flags is read-only');
    return super.set(k, v);
  }
  override delete(): boolean {
    throw new TypeError('profile.flags is read-only');
  }
  override clear(): void {
    throw new TypeError('profile.flags is read-only');
  }
}
