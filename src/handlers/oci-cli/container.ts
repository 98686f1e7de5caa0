/**
 * What an OCI task handler keeps per container, how it is built from a Create request,
 * and running the runtime with a console socket.
 */
import type { OciSpec } from '../../shim-api/spec.js';
import { runcOptions, TYPE_URL, unpackAny, type task } from '../../shim-api/pb.js';
import { OciCliDriver, type DriverConfig } from './driver.js';
import type { RuntimeProfile } from './profile.js';
import type { CommandRunner } from './runner.js';
import { Proc } from './process.js';
import type { ProcessIO } from './stdio.js';
import type { CgroupRef } from './cgroups/locate.js';
import type { OomWatcher } from './cgroups/oom.js';

export interface Container {
  id: string;
  bundle: string;
  driver: OciCliDriver;
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
  ioUid?: number;
  ioGid?: number;
  noPivot?: boolean;
  noNewKeyring?: boolean;
}

/** The container of a Create request: its driver with the runc options applied, its init process. */
export function newContainer(
  req: task.CreateTaskRequest,
  spec: OciSpec,
  deps: { profile: RuntimeProfile; namespace: string; driver: Omit<DriverConfig, 'profile' | 'namespace' | 'bundle'>; run: CommandRunner },
): Container {
  const opts = unpackAny(req.options, TYPE_URL.RuncOptions, runcOptions.Options);
  const driver = new OciCliDriver(
    {
      ...deps.driver,
      profile: deps.profile,
      namespace: deps.namespace,
      bundle: req.bundle,
      ...(opts?.binaryName ? { binary: opts.binaryName } : {}),
      ...(opts?.root ? { root: opts.root } : {}),
      ...(opts?.systemdCgroup ? { systemdCgroup: true } : {}),
      ...(opts?.criuPath ? { criuPath: opts.criuPath } : {}),
    },
    deps.run,
  );
  const annotations = spec.annotations ?? {};
  return {
    id: req.id,
    bundle: req.bundle,
    driver,
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
  };
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
