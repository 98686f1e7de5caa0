/**
 * What an OCI task handler keeps per container, how it is built from a Create request,
 * and running the runtime with a console socket.
 */
import type { SpecEditor } from './spec-dialect.js';
import type { Logger } from 'pino';
import type { EventPublisher } from '../../shim-api/events.js';
import type { OciSpec } from '../../shim-api/spec.js';
import { packAny, runcOptions, Status, timestampFromDate, TYPE_URL, unpackAny, ZERO_TIME, type task } from '../../shim-api/pb.js';
import type { ProcessState } from '../../shim-api/lifecycle.js';
import { OciCliDriver, type DriverConfig } from './driver.js';
import type { RuntimeProfile } from './profile.js';
import type { CommandRunner } from './runner.js';
import { Proc } from './process.js';
import type { ProcessIO, StdioContext } from './stdio.js';
import { cgroupOfPid, type CgroupRef } from './cgroups/locate.js';
import { OomWatcher } from './cgroups/oom.js';
import type { ExitSource } from './exits.js';
import type { Custody } from '../../shim-api/custody.js';

/** What the composition root hands an OCI-CLI handler. */
export interface OciHandlerDeps {
  name: string;
  profile: RuntimeProfile;
  /** binary/root/global-flag overrides from the handler config */
  driver: Omit<DriverConfig, 'profile' | 'namespace' | 'bundle'>;
  namespace: string;
  publisher: EventPublisher;
  log: Logger;
  run: CommandRunner;
  exits: ExitSource;
  spawn: StdioContext['spawn'];
  mountAll: (mounts: Array<{ type: string; source: string; target?: string; options: string[] }>, rootfs: string) => Promise<void>;
  unmountAll: (target: string) => Promise<void>;
  /** node mode: where fds and task records outlive this worker (adopt.ts); undefined in pod mode */
  custody?: Custody;
  /** the handler's own edit of each task's spec before `create` (defineOciHandler's editSpec) */
  editSpec?: SpecEditor;
}

/** The driver settings a Create's runc options override (kept in node mode's task record). */
export type DriverOverrides = Pick<DriverConfig, 'binary' | 'root' | 'systemdCgroup' | 'criuPath'>;

export interface Container {
  id: string;
  bundle: string;
  driver: OciCliDriver;
  driverOverrides: DriverOverrides;
  init: Proc;
  execs: Map<string, Proc>;
  mounted: boolean;
  ownPidNs: boolean;
  /** joins an existing pod sandbox (CRI container-type "container") and the backend takes its stdio at start */
  stdioAtStart: boolean;
  cgroup?: CgroupRef;
  /** the container's OOM watch (ADR 0004), from its init's start to its exit */
  oom?: OomWatcher;
  /** Create with a checkpoint: the runtime restores it at Start (runc-v2's createdCheckpointState) */
  restoreFrom?: { imagePath: string; noPivot?: boolean };
  /** its init's `start` failed on a backend that cannot start it again (runsc): Delete forces */
  startFailed?: boolean;
  /** adopted (node mode) with pids already gone: exits the supervisor did not deliver, settled at the next request */
  gone?: Proc[];
  ioUid?: number;
  ioGid?: number;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  /** the spec's linux.cgroupsPath (removed after a create the runtime did not finish) */
  cgroupsPath?: string;
}

/** The container of a Create request: its driver with the runc options applied, its init process. */
export function newContainer(
  req: task.CreateTaskRequest,
  spec: OciSpec,
  deps: { profile: RuntimeProfile; namespace: string; driver: Omit<DriverConfig, 'profile' | 'namespace' | 'bundle'>; run: CommandRunner },
): Container {
  const opts = unpackAny(req.options, TYPE_URL.RuncOptions, runcOptions.Options);
  const driverOverrides: DriverOverrides = {
    ...(opts?.binaryName ? { binary: opts.binaryName } : {}),
    ...(opts?.root ? { root: opts.root } : {}),
    ...(opts?.systemdCgroup ? { systemdCgroup: true } : {}),
    ...(opts?.criuPath ? { criuPath: opts.criuPath } : {}),
  };
  const annotations = spec.annotations ?? {};
  return {
    id: req.id,
    bundle: req.bundle,
    driver: containerDriver(deps, req.bundle, driverOverrides),
    driverOverrides,
    init: new Proc(req.id, '', { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal }),
    execs: new Map(),
    mounted: false,
    ownPidNs: (spec.linux?.namespaces ?? []).some((n) => n.type === 'pid' && !n.path),
    // CRI (and CRI-O) mark containers that join an existing pod sandbox.
    stdioAtStart:
      deps.profile.subcontainerStdioAt === 'start' &&
      (annotations['io.kubernetes.cri.container-type'] === 'container' || annotations['io.kubernetes.cri-o.ContainerType'] === 'container'),
    ioUid: opts?.ioUid || undefined,
    ioGid: opts?.ioGid || undefined,
    noPivot: opts?.noPivotRoot || undefined,
    noNewKeyring: opts?.noNewKeyring || undefined,
    cgroupsPath: spec.linux?.cgroupsPath || undefined,
  };
}

/** The stdio context of `c`'s processes. */
export function stdioContextOf(deps: Pick<OciHandlerDeps, 'namespace' | 'log' | 'spawn'>, c: Container): StdioContext {
  return { containerId: c.id, namespace: deps.namespace, ioUid: c.ioUid, ioGid: c.ioGid, log: deps.log, spawn: deps.spawn };
}

/** The driver of a container: the handler's settings, then its Create's runc options. */
export function containerDriver(
  deps: { profile: RuntimeProfile; namespace: string; driver: Omit<DriverConfig, 'profile' | 'namespace' | 'bundle'>; run: CommandRunner },
  bundle: string,
  overrides: DriverOverrides,
): OciCliDriver {
  return new OciCliDriver({ ...deps.driver, profile: deps.profile, namespace: deps.namespace, bundle, ...overrides }, deps.run);
}

/** Run the runtime with a console socket when the process has a terminal; wire the pty after. */
export async function withConsole<T>(io: ProcessIO, fn: (consoleSocket?: string) => Promise<T>): Promise<T> {
  const cs = io.consoleSocket;
  if (!cs) {
    const r = await fn(undefined);
    io.closeChildEnds();
    return r;
  }
  const received = cs.receive(30_000);
  received.catch(() => undefined);
  const r = await fn(cs.path);
  const { fd } = await received;
  io.attachConsole(fd);
  return r;
}

const stateToStatus: Record<ProcessState, Status> = {
  created: Status.CREATED,
  running: Status.RUNNING,
  pausing: Status.PAUSING,
  paused: Status.PAUSED,
  stopped: Status.STOPPED,
  deleted: Status.STOPPED,
};

/** The State answer for a process of `c`. */
export function stateResponse(c: Container, p: Proc): task.StateResponse {
  const { stdin, stdout, stderr, terminal } = p.stdio;
  const exitedAt = p.exit ? timestampFromDate(p.exit.exitedAt) : ZERO_TIME;
  return { id: p.execId || c.id, bundle: c.bundle, pid: p.pid, status: stateToStatus[p.state], stdin, stdout, stderr, terminal, exitStatus: p.exit?.status ?? 0, exitedAt, execId: '' };
}

/** The Pids answer: the runtime's pids, the execs' marked with their exec id (runc's ProcessDetails). */
export function pidsResponse(c: Container, pids: number[]): task.PidsResponse {
  const execByPid = new Map<number, string>();
  for (const e of c.execs.values()) if (e.pid) execByPid.set(e.pid, e.execId);
  return {
    processes: pids.map((pid) => {
      const execId = execByPid.get(pid);
      return { pid, info: execId ? packAny(TYPE_URL.RuncProcessDetails, runcOptions.ProcessDetails, { execId }) : undefined };
    }),
  };
}

/** Find the init's cgroup and watch it for OOM kills (once; none when the init is gone). */
export function watchCgroup(c: Container, onOom: () => void): void {
  if (!c.init.pid || c.oom) return;
  try {
    c.cgroup = cgroupOfPid(c.init.pid);
    c.oom = new OomWatcher(c.cgroup, onOom);
  } catch {
    /* no cgroup (yet, or any more): Stats answers NotFound, no OOM events */
  }
}
