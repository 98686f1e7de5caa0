/**
 * The task API for every runc-compatible backend (runc, runsc, youki, crun, ...):
 * containers and their processes. Backend differences live in the RuntimeProfile the
 * OciCliDriver runs with; nothing here names a backend. Every state change goes
 * through Proc.transition (the lifecycle table), checked before the backend call and
 * undone when it fails; the task service runs one operation per task at a time
 * (docs/adr/0011-authoritative-lifecycle.md). Exits: exits.ts; events: task-events.ts.
 */
import { metrics } from '../../observe/shim-metrics.js';
import type { TaskHandler } from '../../shim-api/handler.js';
import type { Adoption } from '../../shim-api/custody.js';
import { ShimError, failedPrecondition, invalidArgument, notFound, unimplemented } from '../../shim-api/errors.js';
import { readSpec } from '../../shim-api/spec.js';
import { adaptSpec } from './spec-dialect.js';
import { task, timestampFromDate, ZERO_TIME } from '../../shim-api/pb.js';
import { Proc, type ExitInfo } from './process.js';
import { cgroupOfPid, loadMetrics } from './cgroups.js';
import { ExitTracker, exitByWait } from './exits.js';
import { TaskEvents } from './task-events.js';
import { checkpointTask } from './checkpoint.js';
import { newContainer, pidsResponse, stateResponse, stdioContextOf, watchCgroup, type Container, type OciHandlerDeps } from './container.js';
import { createInit, restoreInit, startExec, startFailed, startInit, unmountRootfs, type LaunchDeps } from './launch.js';
import { adoptTask, fdKeeper, saveRecord, settleGone } from './adopt.js';

export type { ExitSource } from './exits.js';
export type { OciHandlerDeps } from './container.js';

export class OciTaskHandler implements TaskHandler {
  readonly name: string;
  private readonly containers = new Map<string, Container>();
  private readonly events: TaskEvents;
  private readonly exits: ExitTracker;
  private readonly launch: LaunchDeps;

  constructor(private readonly deps: OciHandlerDeps) {
    this.name = deps.name;
    this.events = new TaskEvents(deps.publisher);
    this.exits = new ExitTracker(deps.exits, (p, e) => this.exited(p, e));
    this.launch = { ...deps, stdio: (c) => stdioContextOf(this.deps, c), keeper: (c, p) => fdKeeper(deps.custody, c.id, p.execId) };
  }

  private container(id: string): Container {
    const c = this.containers.get(id);
    if (!c) throw notFound(`container ${id}: not found`);
    if (c.gone) settleGone(c, (p, e) => this.exited(p, e), this.deps.log);
    return c;
  }

  private process(id: string, execId: string): { c: Container; p: Proc } {
    const c = this.container(id);
    if (!execId) return { c, p: c.init };
    const p = c.execs.get(execId);
    if (!p) throw notFound(`process does not exist ${execId}: not found`); // runc-v2's words
    return { c, p };
  }

  /** An exit of a known pid (or one claimed from a subscription): the `exit` row. */
  private exited(p: Proc, e: ExitInfo): void {
    if (p.recordExit(e)) this.published(p, e);
  }

  /** End a Create/Start hold: its event is out, so the exit held meanwhile follows now. */
  private release(p: Proc): void {
    const e = p.release();
    if (e) this.published(p, e);
  }

  private published(p: Proc, e: ExitInfo): void {
    this.exits.untrack(p);
    const c = this.containers.get(p.containerId);
    c?.oom?.check(); // synchronously: /tasks/oom goes out before /tasks/exit
    if (p.isInit) c?.oom?.stop();
    this.deps.log.info({ container: p.containerId, exec: p.execId || undefined, pid: p.pid, status: e.status }, 'process exited');
    if (p.isInit && c && !c.ownPidNs && this.deps.profile.exitMonitor === 'reap') {
      // No private pid namespace: the kernel will not kill the rest for us.
      c.driver.kill(c.id, 9, true).catch(() => undefined);
    }
    this.events.exit(p, e);
    if (c) saveRecord(this.deps.custody, c);
  }

  /** The init runs: watch its cgroup for OOM kills (ADR 0004). */
  private watchCgroup(c: Container): void {
    watchCgroup(c, () => {
      this.deps.log.info({ container: c.id }, 'OOM kill in container cgroup');
      metrics.ooms.inc({ handler: this.name });
      this.events.oom(c.id);
    });
  }

  // ---------- task API ----------

  async create(req: task.CreateTaskRequest): Promise<task.CreateTaskResponse> {
    if (this.containers.has(req.id)) throw new ShimError('AlreadyExists', `container ${req.id}: already exists`);
    const spec = await readSpec(req.bundle);
    const edit = this.deps.editSpec ? { id: req.id, handler: this.name, editor: this.deps.editSpec } : undefined;
    const adapted = await adaptSpec(this.deps.profile, req.bundle, spec, edit);
    if (adapted) this.deps.log.info({ id: req.id, adapted }, `spec rewritten for ${this.deps.profile.name}`);
    const c = newContainer(req, spec, this.deps);
    const init = c.init;
    // Exits from here on are kept until the init's pid is known (a runtime wrapper may kill it
    // right after `create`), and held until /tasks/create is out (runc-v2 1.7's preStart).
    const sub = this.exits.subscribe();
    init.hold();
    try {
      await createInit(c, req, this.launch);
      this.containers.set(c.id, c);
      // A sub-container's pid file names the pod's sandbox: only `wait` can tell its exit.
      if (!c.stdioAtStart) this.exits.track(init.pid, init, sub);
    } finally {
      sub.end();
    }
    this.watchCgroup(c);
    this.events.create(req, init.pid);
    this.release(init);
    await saveRecord(this.deps.custody, c, init);
    return { pid: init.pid };
  }

  async start(req: task.StartRequest): Promise<task.StartResponse> {
    const { c, p } = this.process(req.id, req.execId);
    const undo = p.transition('start');
    const sub = this.exits.subscribe();
    p.hold();
    try {
      if (p.isInit && c.restoreFrom) {
        await restoreInit(c, p);
        this.exits.track(p.pid, p, sub);
        this.watchCgroup(c);
      } else if (p.isInit) {
        await startInit(c, p);
        // runsc refuses `wait` before start; a root container's fast exit is still reaped.
        if (this.deps.profile.exitMonitor === 'wait') exitByWait(c, (e) => this.exited(c.init, e), this.deps.log);
      } else {
        await startExec(c, p, this.launch);
        this.exits.track(p.pid, p, sub); // an exit already seen is held: published after exec-started
      }
    } catch (err) {
      undo();
      if (p.isInit && this.deps.profile.exitMonitor === 'wait') startFailed(c, (e) => this.exited(p, e));
      this.release(p);
      throw err;
    } finally {
      sub.end();
    }
    this.events.started(p);
    this.release(p);
    await saveRecord(this.deps.custody, c, p);
    return { pid: p.pid };
  }

  async delete(req: task.DeleteRequest): Promise<task.DeleteResponse> {
    const { c, p } = this.process(req.id, req.execId);
    const wasCreated = p.state === 'created' || (p.isInit && c.startFailed === true);
    const undo = p.transition('delete');
    try {
      if (p.isInit) {
        await c.driver.delete(c.id, { force: wasCreated }).catch((err: unknown) => {
          if (!(err instanceof ShimError && err.kind === 'NotFound')) throw err;
        });
      }
    } catch (err) {
      undo();
      throw err;
    }
    await p.io?.close();
    this.exits.untrack(p);
    if (p.isInit) {
      c.oom?.stop();
      for (const e of c.execs.values()) {
        this.exits.untrack(e);
        await e.io?.close(0);
      }
      await unmountRootfs(c, this.deps);
      this.containers.delete(c.id);
      this.deps.custody?.saveRecord(c.id, undefined);
      this.deps.custody?.dropFds(`${c.id}/`);
    } else {
      c.execs.delete(p.execId);
      saveRecord(this.deps.custody, c);
    }
    const res = { pid: p.pid, exitStatus: p.exit?.status ?? 0, exitedAt: p.exit ? timestampFromDate(p.exit.exitedAt) : ZERO_TIME };
    if (p.isInit) this.events.deleted({ containerId: c.id, ...res });
    return res;
  }

  async pids(req: task.PidsRequest): Promise<task.PidsResponse> {
    const c = this.container(req.id);
    c.init.transition('pids');
    return pidsResponse(c, await c.driver.ps(c.id));
  }

  async pause(req: task.PauseRequest): Promise<void> {
    const c = this.container(req.id);
    const undo = c.init.transition('pause');
    await c.driver.pause(c.id).catch((err: unknown) => {
      undo();
      throw err;
    });
    c.init.transition('paused');
    saveRecord(this.deps.custody, c);
    this.events.paused(c.id);
  }

  async resume(req: task.ResumeRequest): Promise<void> {
    const c = this.container(req.id);
    const undo = c.init.transition('resume');
    await c.driver.resume(c.id).catch((err: unknown) => {
      undo();
      throw err;
    });
    saveRecord(this.deps.custody, c);
    this.events.resumed(c.id);
  }

  async checkpoint(req: task.CheckpointTaskRequest): Promise<void> {
    const c = this.container(req.id);
    const why = this.deps.profile.shimUnsupported.checkpoint;
    if (why) throw unimplemented(`${this.name}: checkpoint is not supported through tsshim: ${why}`);
    c.init.transition('checkpoint');
    await checkpointTask(c.driver, c.id, c.bundle, req, this.deps.log);
  }

  async kill(req: task.KillRequest): Promise<void> {
    const { c, p } = this.process(req.id, req.execId);
    if (p.isInit) {
      // Kill(all) after the init exited still reaches what is left (runc-v2 runs `kill --all`).
      if (!(p.state === 'stopped' && req.all)) p.transition('kill');
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
    p.transition('kill');
    if (p.internalPid !== undefined && c.driver.profile.execSignal === 'runtime') {
      // runsc: the pid is a host-side helper; the process inside is signalled by the runtime.
      try {
        await c.driver.kill(c.id, req.signal, false, p.internalPid);
      } catch (err) {
        if (p.exit || (err instanceof ShimError && err.kind === 'NotFound')) throw notFound(`process ${p.execId} already finished`);
        throw err;
      }
      return;
    }
    try {
      process.kill(p.pid, req.signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') throw notFound('process already finished');
      throw err;
    }
  }

  async exec(req: task.ExecProcessRequest): Promise<void> {
    const c = this.container(req.id);
    c.init.transition('exec');
    if (c.execs.has(req.execId)) throw new ShimError('AlreadyExists', `id ${req.execId}: already exists`);
    if (!req.spec) throw invalidArgument(`exec ${req.execId}: process spec is missing`);
    c.execs.set(req.execId, new Proc(c.id, req.execId, { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal }, req.spec.value));
    saveRecord(this.deps.custody, c);
    this.events.execAdded(c.id, req.execId);
  }

  async resizePty(req: task.ResizePtyRequest): Promise<void> {
    const { p } = this.process(req.id, req.execId);
    p.transition('resize');
    p.io?.resize(req.width, req.height);
  }

  async closeIO(req: task.CloseIORequest): Promise<void> {
    const { p } = this.process(req.id, req.execId);
    if (req.stdin) p.io?.closeStdin();
  }

  async update(req: task.UpdateTaskRequest): Promise<void> {
    const c = this.container(req.id);
    c.init.transition('update');
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
    c.init.transition('stats');
    c.cgroup ??= cgroupOfPid(c.init.pid);
    return { stats: await loadMetrics(c.cgroup) };
  }

  async state(req: task.StateRequest): Promise<task.StateResponse> {
    const { c, p } = this.process(req.id, req.execId);
    return stateResponse(c, p);
  }

  taskPid(id: string): number {
    return this.containers.get(id)?.init.pid ?? 0;
  }

  containerCount(): number {
    return this.containers.size;
  }

  /** Node mode, a worker restarted: take task `a.id` over from its record and kept fds (adopt.ts, ADR 0020). */
  async adopt(a: Adoption): Promise<void> {
    if (this.containers.has(a.id)) throw new ShimError('AlreadyExists', `container ${a.id}: already exists`);
    const hooks = { stdio: (x: Container) => stdioContextOf(this.deps, x), track: (p: Proc) => this.exits.track(p.pid, p), watch: (x: Container) => this.watchCgroup(x), exited: (p: Proc, e: ExitInfo) => this.exited(p, e) };
    const c = await adoptTask(a, this.deps, hooks);
    this.containers.set(c.id, c);
  }

  /** Pod mode: the shim ends, and its tasks with it. Node mode: only this worker does (its custody keeps the rest). */
  async close(): Promise<void> {
    this.exits.close();
    for (const c of this.containers.values()) {
      c.oom?.stop();
      for (const p of [c.init, ...c.execs.values()]) await (this.deps.custody ? p.io?.detach() : p.io?.close(0));
    }
  }
}
