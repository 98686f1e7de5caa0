/**
 * Node mode's worker restarts for the OCI-CLI handler (docs/adr/0020-oci-adopt.md, custody.ts):
 * the record a task leaves with its custody (`snapshot`, JSON only), the fd keys of its processes'
 * stdio (`fdKeeper`), and rebuilding a Container and its Procs in a new worker from the record,
 * the kept fds and the backend's own state (`rebuild`). The task handler wires exits and OOM.
 */
import fsp from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Custody, Adoption } from '../../shim-api/custody.js';
import { ShimError, invalidArgument } from '../../shim-api/errors.js';
import type { ProcessOp, ProcessState } from '../../shim-api/lifecycle.js';
import { containerDriver, type Container, type DriverOverrides, type OciHandlerDeps } from './container.js';
import { Proc, type ExitInfo } from './process.js';
import { exitByWait } from './exits.js';
import { ProcessIO, type FdKeeper, type StdioConfig, type StdioContext } from './stdio.js';

const VERSION = 1;

interface ProcRecord {
  /** '' for the init */
  execId: string;
  pid: number;
  state: ProcessState;
  exit?: { status: number; at: string };
  stdio: StdioConfig;
  /** /proc/<pid>/stat start time when it was launched: a reused pid is not ours */
  startTime?: string;
  /** an exec's pid inside the runtime (runsc), which signals go to (profile.execSignal) */
  internalPid?: number;
  /** an exec added and not started yet: its OCI process spec, base64 */
  spec?: string;
}

export interface TaskRecord {
  v: typeof VERSION;
  bundle: string;
  driver: DriverOverrides;
  mounted: boolean;
  ownPidNs: boolean;
  stdioAtStart: boolean;
  ioUid?: number;
  ioGid?: number;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  restoreFrom?: { imagePath: string; noPivot?: boolean };
  startFailed?: boolean;
  init: ProcRecord;
  execs: ProcRecord[];
}

function procRecord(p: Proc): ProcRecord {
  return {
    execId: p.execId,
    pid: p.pid,
    state: p.state,
    ...(p.exit ? { exit: { status: p.exit.status, at: p.exit.exitedAt.toISOString() } } : {}),
    stdio: { ...p.stdio },
    ...(p.startTime ? { startTime: p.startTime } : {}),
    ...(p.internalPid ? { internalPid: p.internalPid } : {}),
    ...(p.state === 'created' && p.spec ? { spec: Buffer.from(p.spec).toString('base64') } : {}),
  };
}

/** What a new worker needs of `c` besides its fds and the backend's state. */
export function snapshot(c: Container): TaskRecord {
  return {
    v: VERSION,
    bundle: c.bundle,
    driver: c.driverOverrides,
    mounted: c.mounted,
    ownPidNs: c.ownPidNs,
    stdioAtStart: c.stdioAtStart,
    ...(c.ioUid !== undefined ? { ioUid: c.ioUid } : {}),
    ...(c.ioGid !== undefined ? { ioGid: c.ioGid } : {}),
    ...(c.noPivot ? { noPivot: true } : {}),
    ...(c.noNewKeyring ? { noNewKeyring: true } : {}),
    ...(c.restoreFrom ? { restoreFrom: c.restoreFrom } : {}),
    ...(c.startFailed ? { startFailed: true } : {}),
    init: procRecord(c.init),
    execs: [...c.execs.values()].map(procRecord),
  };
}

/** `<id>/<exec id or 'init'>/` (an exec literally named `init` is `:init`: ':' is no identifier character). */
export function fdPrefix(id: string, execId: string): string {
  return `${id}/${execId === '' ? 'init' : execId === 'init' ? ':init' : execId}/`;
}

export function fdKeeper(custody: Custody | undefined, id: string, execId: string): FdKeeper | undefined {
  if (!custody) return undefined;
  const base = fdPrefix(id, execId);
  return { keep: (role, fd) => custody.keepFd(base + role, fd), drop: (prefix) => custody.dropFds(base + prefix) };
}

/** The start time of `pid` (field 22 of /proc/<pid>/stat), undefined when it is gone. */
export async function startTimeOf(pid: number): Promise<string | undefined> {
  try {
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** `pid` still names the process we launched (alive, or a zombie whose exit is still to be reaped). */
async function stillOurs(p: Proc): Promise<boolean> {
  const t = await startTimeOf(p.pid);
  return t !== undefined && (p.startTime === undefined || t === p.startTime);
}

/** The operations that lead from `created` to a recorded state (a stopped one replays its exit instead). */
const REPLAY: Record<ProcessState, readonly ProcessOp[]> = {
  created: [],
  running: ['start'],
  pausing: ['start', 'pause'],
  paused: ['start', 'pause', 'paused'],
  stopped: [],
  deleted: [],
};

/**
 * The init's state as the backend tells it, where the record is behind: a Start, Pause or Resume
 * whose worker died before its record was saved (the supervisor answered it Unavailable; its
 * effect is read back here). `stopped` and a vanished container change nothing: the exit decides.
 */
function reconcile(recorded: ProcessState, backend: string | undefined): ProcessState {
  if (recorded === 'stopped' || backend === undefined) return recorded;
  if (backend === 'running' && recorded !== 'running') return 'running';
  if (backend === 'paused' && recorded !== 'paused') return 'paused';
  return recorded;
}

function parse(a: Adoption): TaskRecord {
  const r = a.record as TaskRecord | undefined;
  if (!r || r.v !== VERSION || typeof r.bundle !== 'string' || !r.init) throw invalidArgument(`task ${a.id}: no usable record (version ${String(r?.v)})`);
  return r;
}

function replay(id: string, r: ProcRecord, state: ProcessState): Proc {
  const exit = r.exit ? { status: r.exit.status, exitedAt: new Date(r.exit.at) } : undefined;
  const spec = r.spec ? new Uint8Array(Buffer.from(r.spec, 'base64')) : undefined;
  return Proc.replayed(id, r.execId, r.stdio, spec, { pid: r.pid, ops: REPLAY[state], exit, startTime: r.startTime, internalPid: r.internalPid });
}

export interface Rebuilt {
  c: Container;
  /** processes whose exits are still to come: track their pids */
  live: Proc[];
  /** of those, the ones whose pid was already gone at adoption (reaped while no worker ran) */
  gone: Proc[];
  /** the backend's status of the init ('' when it no longer knows the container) */
  backend: string;
}

/**
 * A Container as the previous worker left it: Procs replayed to their recorded (or, for the init,
 * the backend's) states, stdio copies restarted from the kept fds. Nothing is launched or signalled.
 */
export async function rebuild(a: Adoption, deps: OciHandlerDeps, stdio: (c: Container) => StdioContext): Promise<Rebuilt> {
  const r = parse(a);
  const driver = containerDriver(deps, r.bundle, r.driver ?? {});
  let backend = '';
  try {
    backend = (await driver.state(a.id)).status;
  } catch (err) {
    if (!(err instanceof ShimError && err.kind === 'NotFound')) throw err;
  }
  const initState = reconcile(r.init.state, backend === '' ? undefined : backend);
  if (initState !== r.init.state) deps.log.info({ container: a.id, recorded: r.init.state, backend }, 'adopt: init state taken from the backend');
  const init = replay(a.id, r.init, initState);
  const c: Container = {
    id: a.id,
    bundle: r.bundle,
    driver,
    driverOverrides: r.driver ?? {},
    init,
    execs: new Map(r.execs.map((e) => [e.execId, replay(a.id, e, e.state)])),
    mounted: r.mounted,
    ownPidNs: r.ownPidNs,
    stdioAtStart: r.stdioAtStart,
    ioUid: r.ioUid,
    ioGid: r.ioGid,
    noPivot: r.noPivot,
    noNewKeyring: r.noNewKeyring,
    restoreFrom: r.restoreFrom,
    startFailed: r.startFailed,
  };
  await adoptStdio(c, a.fds, deps, stdio(c));
  const live: Proc[] = [];
  const gone: Proc[] = [];
  for (const p of [init, ...c.execs.values()]) {
    // a sub-container whose stdio went at start names the sandbox: only `wait` tells its exit
    if (!p.pid || p.exit || (p.isInit && c.stdioAtStart)) continue;
    live.push(p);
    if (!(await stillOurs(p))) gone.push(p);
  }
  return { c, live, gone, backend };
}

/** Each process's ProcessIO from its kept fds; fds of processes the record no longer has are released. */
async function adoptStdio(c: Container, fds: ReadonlyMap<string, number>, deps: OciHandlerDeps, ctx: StdioContext): Promise<void> {
  const procs = [c.init, ...c.execs.values()];
  const byProc = new Map<Proc | undefined, Map<string, number>>();
  for (const [key, fd] of fds) {
    const p = procs.find((q) => key.startsWith(fdPrefix(c.id, q.execId)));
    const role = p ? key.slice(fdPrefix(c.id, p.execId).length) : key;
    if (!byProc.has(p)) byProc.set(p, new Map());
    byProc.get(p)!.set(role, fd);
  }
  for (const [key, fd] of byProc.get(undefined) ?? []) {
    ProcessIO.release(fd);
    deps.custody?.dropFds(key);
  }
  for (const p of procs) {
    const keeper = fdKeeper(deps.custody, c.id, p.execId) ?? { keep: () => undefined, drop: () => undefined };
    const mine = byProc.get(p) ?? new Map<string, number>();
    if (p.isInit && p.state === 'created' && (c.restoreFrom || c.stdioAtStart)) {
      // Its stdio is handed to the runtime at Start, which has not run: open it afresh, as Create did.
      for (const fd of mine.values()) ProcessIO.release(fd);
      keeper.drop('');
      p.io = await ProcessIO.open(p.stdio, ctx, keeper);
    } else if (mine.size > 0) {
      p.io = await ProcessIO.adopt(p.stdio, ctx, keeper, mine);
    }
  }
}

/** Save `c`'s record; after a launch, with the start time of the pid it made (async: /proc). */
export function saveRecord(custody: Custody | undefined, c: Container, launched?: Proc): Promise<void> | void {
  if (!custody) return;
  if (!launched?.pid) return custody.saveRecord(c.id, snapshot(c));
  return startTimeOf(launched.pid).then((t) => {
    launched.startTime = t;
    custody.saveRecord(c.id, snapshot(c));
  });
}

/** What of the task handler an adoption wires: stdio context, exit tracking, OOM watch, the exit row. */
export interface AdoptHooks {
  stdio(c: Container): StdioContext;
  track(p: Proc): void;
  watch(c: Container): void;
  exited(p: Proc, e: ExitInfo): void;
}

/**
 * Take task `a.id` over: rebuild it, track the exits still to come, watch a live init's cgroup
 * for OOM kills again (from a new baseline: a kill while no worker ran is not reported), run
 * `<runtime> wait` again where exits come that way, and save the record as it now stands.
 */
export async function adoptTask(a: Adoption, deps: OciHandlerDeps, hooks: AdoptHooks): Promise<Container> {
  const { c, live, gone, backend } = await rebuild(a, deps, hooks.stdio);
  for (const p of live) hooks.track(p);
  if (gone.length > 0) c.gone = gone;
  const init = c.init;
  if (!init.exit && init.state !== 'created') {
    hooks.watch(c);
    if (deps.profile.exitMonitor === 'wait') exitByWait(c, (e) => hooks.exited(init, e), deps.log);
  }
  saveRecord(deps.custody, c);
  deps.log.info({ container: c.id, state: init.state, backend, execs: c.execs.size, gone: gone.length }, 'task adopted');
  return c;
}

/**
 * Adopted processes whose pid was gone at adoption and whose exit has still not come by the next
 * request: the supervisor delivers the exits it reaped before it forwards a request to the new
 * worker, so nobody will. The status is unknown: 255, as for a sub-container whose `wait` failed.
 */
export function settleGone(c: Container, exited: (p: Proc, e: ExitInfo) => void, log: Logger): void {
  const gone = c.gone ?? [];
  c.gone = undefined;
  for (const p of gone) {
    if (p.exit) continue;
    log.warn({ container: c.id, exec: p.execId || undefined, pid: p.pid }, 'adopted process gone, its exit never delivered: status 255');
    exited(p, { status: 255, exitedAt: new Date() });
  }
}
