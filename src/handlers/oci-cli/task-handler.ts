/**
 * The task API for every runc-compatible backend (runc, runsc, youki, crun, ...):
 * containers and their processes, stdio, exits and events. Backend differences
 * live in the RuntimeProfile the OciCliDriver runs with; nothing here names a backend.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { TaskHandler } from '../../shim-api/handler.js';
import type { EventPublisher } from '../../shim-api/events.js';
import { ShimError, failedPrecondition, invalidArgument, notFound, unimplemented } from '../../shim-api/errors.js';
import { readSpec } from '../../shim-api/spec.js';
import {
  events,
  packAny,
  runcOptions,
  task,
  timestampFromDate,
  unpackAny,
  Status,
  TYPE_URL,
  ZERO_TIME,
  type Any,
  type MessageFns,
} from '../../shim-api/pb.js';
import type { ProcessState } from '../../shim-api/lifecycle.js';
import { OciCliDriver, type DriverConfig } from './driver.js';
import type { RuntimeProfile } from './profile.js';
import type { CommandRunner } from './runner.js';
import { Proc, type ExitInfo } from './process.js';
import { ProcessIO, type StdioContext } from './stdio.js';
import { cgroupOfPid, oomKillCount, readMetrics, type CgroupRef } from './cgroups.js';

export interface ExitSource {
  on(event: 'exit', fn: (e: { pid: number; status: number; exitedAt: Date }) => void): unknown;
  off(event: 'exit', fn: (e: { pid: number; status: number; exitedAt: Date }) => void): unknown;
}

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
}

interface Container {
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
  /** Create with a checkpoint: the runtime restores it at Start (runc-v2's createdCheckpointState) */
  restoreFrom?: { imagePath: string; noPivot?: boolean };
  /** OOM kills seen so far in its cgroup (ADR 0004) */
  oomKills: number;
  ioUid?: number;
  ioGid?: number;
}

const stateToStatus: Record<ProcessState, Status> = {
  created: Status.CREATED,
  running: Status.RUNNING,
  pausing: Status.PAUSING,
  paused: Status.PAUSED,
  stopped: Status.STOPPED,
  deleted: Status.STOPPED,
};

export class OciTaskHandler implements TaskHandler {
  readonly name: string;
  private readonly containers = new Map<string, Container>();
  private readonly byPid = new Map<number, Proc>();
  /** Exits of pids nobody knew yet, kept while an exec/create is starting (runc-v2's pre-start subscription). */
  private pendingStarts = 0;
  private earlyExits: Array<{ pid: number; status: number; exitedAt: Date }> = [];
  private readonly onExit = (e: { pid: number; status: number; exitedAt: Date }) => this.handleExit(e);

  constructor(private readonly deps: OciHandlerDeps) {
    this.name = deps.name;
    deps.exits.on('exit', this.onExit);
  }

  // ---------- helpers ----------

  private container(id: string): Container {
    const c = this.containers.get(id);
    if (!c) throw notFound(`container ${id}: not found`);
    return c;
  }

  private process(id: string, execId: string): { c: Container; p: Proc } {
    const c = this.container(id);
    if (!execId) return { c, p: c.init };
    const p = c.execs.get(execId);
    if (!p) throw notFound(`process does not exist ${execId}: not found`); // runc-v2's words
    return { c, p };
  }

  private publish<T>(topic: string, typeUrl: string, codec: MessageFns<T>, msg: T): void {
    this.deps.publisher.publish(topic, packAny(typeUrl, codec, msg));
  }

  private stdioContext(c: { id: string; ioUid?: number; ioGid?: number }): StdioContext {
    return { containerId: c.id, namespace: this.deps.namespace, ioUid: c.ioUid, ioGid: c.ioGid, log: this.deps.log, spawn: this.deps.spawn };
  }

  /** Start an operation that may create a pid we do not know yet. */
  private beginStart(): void {
    this.pendingStarts++;
  }
  private endStart(): void {
    if (--this.pendingStarts === 0) this.earlyExits = [];
  }
  private claimEarlyExit(pid: number): ExitInfo | undefined {
    const i = this.earlyExits.findIndex((e) => e.pid === pid);
    if (i < 0) return undefined;
    const [e] = this.earlyExits.splice(i, 1);
    return { status: e!.status, exitedAt: e!.exitedAt };
  }

  private handleExit(e: { pid: number; status: number; exitedAt: Date }): void {
    const p = this.byPid.get(e.pid);
    if (!p) {
      if (this.pendingStarts > 0) this.earlyExits.push(e);
      return;
    }
    this.exited(p, { status: e.status, exitedAt: e.exitedAt });
  }

  /** Publish /tasks/oom for every OOM kill counted since the last look. */
  private checkOom(c: Container): void {
    if (!c.cgroup) return;
    const n = oomKillCount(c.cgroup);
    if (n <= c.oomKills) return;
    c.oomKills = n;
    this.deps.log.info({ container: c.id, oomKills: n }, 'OOM kill in container cgroup');
    this.publish('/tasks/oom', TYPE_URL.TaskOOM, events.TaskOOM, { containerId: c.id });
  }

  private oomTimer?: NodeJS.Timeout;
  /** OOM kills of processes that are not the init show up within a second. */
  private ensureOomPoll(): void {
    if (this.oomTimer || this.containers.size === 0) return;
    this.oomTimer = setInterval(() => {
      for (const c of this.containers.values()) if (!c.init.exit) this.checkOom(c);
      if (this.containers.size === 0) {
        clearInterval(this.oomTimer);
        this.oomTimer = undefined;
      }
    }, 1000);
    this.oomTimer.unref();
  }

  private exited(p: Proc, e: ExitInfo): void {
    if (!p.recordExit(e)) return; // held until its start event is out, or already recorded
    this.byPid.delete(p.pid);
    const c = this.containers.get(p.containerId);
    if (c) this.checkOom(c); // synchronously: /tasks/oom goes out before /tasks/exit
    this.deps.log.info({ container: p.containerId, exec: p.execId || undefined, pid: p.pid, status: e.status }, 'process exited');
    if (p.isInit && c && !c.ownPidNs && this.deps.profile.exitMonitor === 'reap') {
      // No private pid namespace: the kernel will not kill the rest for us.
      c.driver.kill(c.id, 9, true).catch(() => undefined);
    }
    this.publish('/tasks/exit', TYPE_URL.TaskExit, events.TaskExit, {
      containerId: p.containerId,
      id: p.execId || p.containerId,
      pid: p.pid,
      exitStatus: e.status,
      exitedAt: timestampFromDate(e.exitedAt),
    });
  }

  private watchCgroup(c: Container): void {
    if (!c.init.pid) return;
    try {
      c.cgroup = cgroupOfPid(c.init.pid);
      c.oomKills = oomKillCount(c.cgroup);
    } catch {
      /* no cgroup (yet): Stats answers NotFound, no OOM events */
    }
  }

  /** Start of a task created from a checkpoint: `<runtime> restore --detach`. */
  private async restore(c: Container, p: Proc): Promise<void> {
    const io = p.io!;
    const pidFile = path.join(c.bundle, 'init.pid');
    await this.withConsole(io, (consoleSocket) =>
      c.driver.restore(c.id, { imagePath: c.restoreFrom!.imagePath, pidFile, consoleSocket, noPivot: c.restoreFrom!.noPivot, detach: true, stdio: io.childFds }),
    );
    p.pid = await this.readPid(pidFile);
    this.byPid.set(p.pid, p);
    const early = this.claimEarlyExit(p.pid);
    if (early) p.recordExit(early);
    this.watchCgroup(c);
    c.restoreFrom = undefined;
  }

  /** Backends whose pid file names a shared sandbox report each container's exit through `wait`. */
  private watchExit(c: Container): void {
    c.driver.wait(c.id).then(
      (status) => this.exited(c.init, { status, exitedAt: new Date() }),
      (err: Error) => {
        if (c.init.exit) return;
        this.deps.log.warn({ container: c.id, err: err.message }, 'wait failed');
        // The sandbox root is also reaped as our child; a sub-container has no other witness.
        if (c.stdioAtStart) this.exited(c.init, { status: 255, exitedAt: new Date() });
      },
    );
  }

  private async readPid(file: string): Promise<number> {
    const text = await fs.readFile(file, 'utf8');
    const pid = Number.parseInt(text.trim(), 10);
    if (!Number.isInteger(pid) || pid <= 0) throw new ShimError('Internal', `invalid pid file ${file}: "${text.trim()}"`);
    return pid;
  }

  /** Run the runtime with a console socket when the process has a terminal; wire the pty after. */
  private async withConsole(io: ProcessIO, fn: (consoleSocket?: string) => Promise<void>): Promise<void> {
    const cs = io.consoleSocket;
    if (!cs) {
      await fn(undefined);
      io.closeChildEnds();
      return;
    }
    const received = cs.receive(30_000);
    received.catch(() => undefined);
    await fn(cs.path);
    const { fd } = await received;
    io.attachConsole(fd);
  }

  // ---------- task API ----------

  async create(req: task.CreateTaskRequest): Promise<task.CreateTaskResponse> {
    if (this.containers.has(req.id)) throw new ShimError('AlreadyExists', `container ${req.id}: already exists`);
    const spec = await readSpec(req.bundle);
    const opts = unpackAny(req.options, TYPE_URL.RuncOptions, runcOptions.Options);
    const driver = new OciCliDriver(
      {
        ...this.deps.driver,
        profile: this.deps.profile,
        namespace: this.deps.namespace,
        bundle: req.bundle,
        ...(opts?.binaryName ? { binary: opts.binaryName } : {}),
        ...(opts?.root ? { root: opts.root } : {}),
        ...(opts?.systemdCgroup ? { systemdCgroup: true } : {}),
        ...(opts?.criuPath ? { criuPath: opts.criuPath } : {}),
      },
      this.deps.run,
    );
    const c: Container = {
      id: req.id,
      bundle: req.bundle,
      driver,
      init: new Proc(req.id, '', { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal }),
      execs: new Map(),
      mounted: false,
      ownPidNs: (spec.linux?.namespaces ?? []).some((n) => n.type === 'pid' && !n.path),
      stdioAtStart: this.deps.profile.subcontainerStdioAt === 'start' && isPodSubcontainer(spec.annotations ?? {}),
      oomKills: 0,
      ioUid: opts?.ioUid || undefined,
      ioGid: opts?.ioGid || undefined,
    };
    const rootfs = path.join(req.bundle, 'rootfs');
    let io: ProcessIO | undefined;
    try {
      if (req.rootfs.length > 0) {
        await fs.mkdir(rootfs, { recursive: true, mode: 0o711 });
        await this.deps.mountAll(req.rootfs, rootfs);
        c.mounted = true;
      }
      io = await ProcessIO.open(c.init.stdio, this.stdioContext(c));
      c.init.io = io;
      const pidFile = path.join(req.bundle, 'init.pid');
      const createOpts = { pidFile, noPivot: opts?.noPivotRoot || undefined, noNewKeyring: opts?.noNewKeyring || undefined };
      if (req.checkpoint) {
        // Nothing runs until Start, which restores; the runtime must be able to.
        if (!this.deps.profile.supports.has('restore')) throw unimplemented(`${this.deps.profile.name} does not support restore`);
        c.restoreFrom = { imagePath: req.checkpoint, noPivot: createOpts.noPivot };
      } else if (c.stdioAtStart) {
        await driver.create(req.id, createOpts); // stdio goes to `start`
      } else {
        await this.withConsole(io, (consoleSocket) => driver.create(req.id, { ...createOpts, consoleSocket, stdio: io!.childFds }));
      }
      if (!c.restoreFrom) c.init.pid = await this.readPid(pidFile);
    } catch (err) {
      await io?.close(0);
      await driver.delete(req.id, { force: true }).catch(() => undefined);
      if (c.mounted) await this.safeUnmount(rootfs);
      throw err;
    }
    this.watchCgroup(c);
    this.containers.set(c.id, c);
    this.ensureOomPoll();
    // A sub-container's pid file names the pod's sandbox: only `wait` can tell its exit.
    if (!c.stdioAtStart && c.init.pid) this.byPid.set(c.init.pid, c.init);
    this.publish('/tasks/create', TYPE_URL.TaskCreate, events.TaskCreate, {
      containerId: req.id,
      bundle: req.bundle,
      rootfs: req.rootfs,
      io: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
      checkpoint: req.checkpoint,
      pid: c.init.pid,
    });
    return { pid: c.init.pid };
  }

  async start(req: task.StartRequest): Promise<task.StartResponse> {
    const { c, p } = this.process(req.id, req.execId);
    p.require('start');
    p.starting = true;
    this.beginStart();
    try {
      if (p.isInit && c.restoreFrom) {
        await this.restore(c, p);
      } else if (p.isInit) {
        await c.driver.start(c.id, c.stdioAtStart ? { stdio: p.io!.childFds } : {});
        if (c.stdioAtStart) p.io!.closeChildEnds();
        // runsc refuses `wait` before start; a root container's fast exit is still reaped.
        if (this.deps.profile.exitMonitor === 'wait') this.watchExit(c);
      } else {
        await this.startExec(c, p);
      }
      p.state = 'running';
    } catch (err) {
      p.starting = false;
      const held = p.takeHeldExit();
      if (held) this.exited(p, held);
      throw err;
    } finally {
      this.endStart();
    }
    if (p.isInit) {
      this.publish('/tasks/start', TYPE_URL.TaskStart, events.TaskStart, { containerId: c.id, pid: p.pid });
    } else {
      this.publish('/tasks/exec-started', TYPE_URL.TaskExecStarted, events.TaskExecStarted, { containerId: c.id, execId: p.execId, pid: p.pid });
    }
    p.starting = false;
    const held = p.takeHeldExit();
    if (held) this.exited(p, held);
    return { pid: p.pid };
  }

  private async startExec(c: Container, p: Proc): Promise<void> {
    const io = await ProcessIO.open(p.stdio, this.stdioContext(c));
    p.io = io;
    const processJsonPath = path.join(c.bundle, `.exec-${p.execId}.json`);
    const pidFile = path.join(c.bundle, `${p.execId}.pid`);
    await fs.writeFile(processJsonPath, p.spec ?? new Uint8Array(), { mode: 0o600 });
    try {
      await this.withConsole(io, (consoleSocket) =>
        c.driver.exec(c.id, {
          processJsonPath,
          pidFile,
          consoleSocket,
          stdio: io.childFds,
        }),
      );
      p.pid = await this.readPid(pidFile);
    } catch (err) {
      await io.close(0);
      throw err;
    } finally {
      await fs.rm(processJsonPath, { force: true });
    }
    this.byPid.set(p.pid, p);
    const early = this.claimEarlyExit(p.pid);
    if (early) p.recordExit(early); // held: published after exec-started
  }

  async delete(req: task.DeleteRequest): Promise<task.DeleteResponse> {
    const { c, p } = this.process(req.id, req.execId);
    p.require('delete');
    if (p.isInit) {
      await c.driver.delete(c.id, { force: p.state === 'created' }).catch((err: unknown) => {
        if (!(err instanceof ShimError && err.kind === 'NotFound')) throw err;
      });
      await p.io?.close();
      for (const e of c.execs.values()) await e.io?.close(0);
      if (c.mounted) await this.safeUnmount(path.join(c.bundle, 'rootfs'));
      this.containers.delete(c.id);
    } else {
      await p.io?.close();
      c.execs.delete(p.execId);
    }
    p.state = 'deleted';
    this.byPid.delete(p.pid);
    const exitStatus = p.exit?.status ?? 0;
    const exitedAt = p.exit ? timestampFromDate(p.exit.exitedAt) : ZERO_TIME;
    if (p.isInit) {
      this.publish('/tasks/delete', TYPE_URL.TaskDelete, events.TaskDelete, {
        containerId: c.id,
        pid: p.pid,
        exitStatus,
        exitedAt,
        id: '',
      });
    }
    return { pid: p.pid, exitStatus, exitedAt };
  }

  private async safeUnmount(rootfs: string): Promise<void> {
    try {
      await this.deps.unmountAll(rootfs);
    } catch (err) {
      this.deps.log.warn({ rootfs, err: (err as Error).message }, 'unmount failed');
    }
  }

  async pids(req: task.PidsRequest): Promise<task.PidsResponse> {
    const c = this.container(req.id);
    const pids = await c.driver.ps(c.id);
    const execByPid = new Map<number, string>();
    for (const e of c.execs.values()) if (e.pid) execByPid.set(e.pid, e.execId);
    return {
      processes: pids.map((pid) => {
        const execId = execByPid.get(pid);
        return {
          pid,
          info: execId ? packAny(TYPE_URL.RuncProcessDetails, runcOptions.ProcessDetails, { execId }) : undefined,
        };
      }),
    };
  }

  async pause(req: task.PauseRequest): Promise<void> {
    const c = this.container(req.id);
    c.init.move('pause');
    try {
      await c.driver.pause(c.id);
    } catch (err) {
      c.init.state = 'running';
      throw err;
    }
    c.init.move('paused');
    this.publish('/tasks/paused', TYPE_URL.TaskPaused, events.TaskPaused, { containerId: c.id });
  }

  async resume(req: task.ResumeRequest): Promise<void> {
    const c = this.container(req.id);
    c.init.require('resume');
    await c.driver.resume(c.id);
    c.init.move('resume');
    this.publish('/tasks/resumed', TYPE_URL.TaskResumed, events.TaskResumed, { containerId: c.id });
  }

  async checkpoint(req: task.CheckpointTaskRequest): Promise<void> {
    const c = this.container(req.id);
    const why = this.deps.profile.shimUnsupported.checkpoint;
    if (why) throw unimplemented(`${this.name}: checkpoint is not supported through tsshim: ${why}`);
    c.init.require('checkpoint');
    const o = unpackAny(req.options, TYPE_URL.RuncCheckpointOptions, runcOptions.CheckpointOptions);
    const exit = o?.exit ?? false;
    const exitByKill = exit && this.deps.profile.checkpointExit === 'kill';
    // As runc-v2 for CRIU backends: without a work path CRIU works in <bundle>/work/criu-work
    // (removed afterwards); when the dump fails its dump.log is kept as <bundle>/criu-dump.log
    // and the error names it (containerd removes the image dir, where the log landed before).
    const criu = this.deps.profile.criuFlag !== undefined;
    const ownWork = criu && !o?.workPath;
    const workPath = o?.workPath || (criu ? path.join(c.bundle, 'work', 'criu-work') : undefined);
    try {
      await c.driver.checkpoint(c.id, {
        imagePath: o?.imagePath || req.path,
        workPath,
        leaveRunning: !exit || exitByKill,
        tcpEstablished: o?.openTcp || undefined,
        externalUnixSockets: o?.externalUnixSockets || undefined,
        shellJob: o?.terminal || undefined,
        fileLocks: o?.fileLocks || undefined,
        emptyNamespaces: o?.emptyNamespaces?.length ? o.emptyNamespaces : undefined,
        cgroupsMode: o?.cgroupsMode || undefined,
      });
    } catch (err) {
      if (!criu || !workPath || !(err instanceof ShimError)) throw err;
      const dumpLog = path.join(c.bundle, 'criu-dump.log');
      await fs.copyFile(path.join(workPath, 'dump.log'), dumpLog).catch((e: unknown) =>
        this.deps.log.error({ err: e, container: c.id }, 'failed to copy dump.log to criu-dump.log'),
      );
      throw new ShimError(err.kind, `${err.message.split('\n')[0]} path= ${dumpLog}`, { cause: err });
    } finally {
      if (ownWork) await fs.rm(workPath!, { recursive: true, force: true }).catch(() => undefined);
    }
    if (exitByKill) await c.driver.kill(c.id, 9, true);
  }

  async kill(req: task.KillRequest): Promise<void> {
    const { c, p } = this.process(req.id, req.execId);
    if (p.isInit) {
      if (p.state === 'stopped' && !req.all) throw notFound('process already finished');
      if (p.state !== 'stopped') p.require('kill');
      try {
        await c.driver.kill(c.id, req.signal, req.all);
      } catch (err) {
        // Kill(all) after the init exited: nothing left to signal is success, as runc answers
        // (runsc says "sandbox is not running", classified NotFound). CRI sends it on every stop.
        if (!(p.state === 'stopped' && err instanceof ShimError && err.kind === 'NotFound')) throw err;
      }
      return;
    }
    if (p.state === 'created') throw failedPrecondition(`process ${p.execId} not started`);
    p.require('kill');
    try {
      process.kill(p.pid, req.signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') throw notFound('process already finished');
      throw err;
    }
  }

  async exec(req: task.ExecProcessRequest): Promise<void> {
    const c = this.container(req.id);
    c.init.require('exec');
    if (c.execs.has(req.execId)) throw new ShimError('AlreadyExists', `id ${req.execId}: already exists`);
    if (!req.spec) throw invalidArgument(`exec ${req.execId}: process spec is missing`);
    c.execs.set(
      req.execId,
      new Proc(c.id, req.execId, { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal }, req.spec.value),
    );
    this.publish('/tasks/exec-added', TYPE_URL.TaskExecAdded, events.TaskExecAdded, { containerId: c.id, execId: req.execId });
  }

  async resizePty(req: task.ResizePtyRequest): Promise<void> {
    const { p } = this.process(req.id, req.execId);
    p.require('resize');
    p.io?.resize(req.width, req.height);
  }

  async closeIO(req: task.CloseIORequest): Promise<void> {
    const { p } = this.process(req.id, req.execId);
    if (req.stdin) p.io?.closeStdin();
  }

  async update(req: task.UpdateTaskRequest): Promise<void> {
    const c = this.container(req.id);
    c.init.require('update');
    if (!req.resources) throw invalidArgument('update: resources are missing');
    await c.driver.update(c.id, Buffer.from(req.resources.value).toString('utf8'));
  }

  async wait(req: task.WaitRequest): Promise<task.WaitResponse> {
    const { p } = this.process(req.id, req.execId);
    const e = await p.wait();
    return { exitStatus: e.status, exitedAt: timestampFromDate(e.exitedAt) };
  }

  async stats(req: task.StatsRequest): Promise<task.StatsResponse> {
    const c = this.container(req.id);
    c.init.require('stats');
    c.cgroup ??= cgroupOfPid(c.init.pid);
    return { stats: readMetrics(c.cgroup) };
  }

  async state(req: task.StateRequest): Promise<task.StateResponse> {
    const { c, p } = this.process(req.id, req.execId);
    return {
      id: p.execId || c.id,
      bundle: c.bundle,
      pid: p.pid,
      status: stateToStatus[p.state],
      stdin: p.stdio.stdin,
      stdout: p.stdio.stdout,
      stderr: p.stdio.stderr,
      terminal: p.stdio.terminal,
      exitStatus: p.exit?.status ?? 0,
      exitedAt: p.exit ? timestampFromDate(p.exit.exitedAt) : ZERO_TIME,
      execId: '',
    };
  }

  taskPid(id: string): number {
    return this.containers.get(id)?.init.pid ?? 0;
  }

  containerCount(): number {
    return this.containers.size;
  }

  async close(): Promise<void> {
    this.deps.exits.off('exit', this.onExit);
    if (this.oomTimer) clearInterval(this.oomTimer);
    for (const c of this.containers.values()) {
      await c.init.io?.close(0);
      for (const e of c.execs.values()) await e.io?.close(0);
    }
  }
}

export type { Any };

/** CRI (and CRI-O) mark containers that join an existing pod sandbox. */
function isPodSubcontainer(annotations: Record<string, string>): boolean {
  return annotations['io.kubernetes.cri.container-type'] === 'container' || annotations['io.kubernetes.cri-o.ContainerType'] === 'container';
}
