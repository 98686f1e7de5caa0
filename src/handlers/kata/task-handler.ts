/**
 * Kata Containers is itself a shim v2 (containerd-shim-kata-v2): this handler
 * starts it with containerd's bootstrap contract and forwards the task API over
 * our ttrpc client. The delegate publishes its own events to containerd.
 */
import type { Client } from 'ttrpc-ts';
import type { CleanupResult, HandlerContext, TaskHandler } from '../../shim-api/handler.js';
import { notFound } from '../../shim-api/errors.js';
import type { Adoption } from '../../shim-api/custody.js';
import { closeFd } from '../../sys/libc.js';
import { Any, packAny, runtimeOptions, task, SERVICE, TYPE_URL } from '../../shim-api/pb.js';
import { forwardOptions } from '../../shim-api/request-scope.js';
import { delegateInfo, deleteDelegate, dial, recordDelegate, recordedDelegate, startDelegate, type DelegateConfig } from './delegate.js';

export interface KataConfig extends DelegateConfig {
  name: string;
  /** Kata's configuration.toml, passed to the delegate as runtimeoptions.v1.Options ConfigPath */
  configPath?: string;
  /**
   * Timeouts of our calls to the delegate, in ms, by task API method ('Create', 'Kill', ...) and
   * 'default'; merged over DELEGATE_TIMEOUTS_MS. Wait never times out (as in containerd). A
   * caller's own deadline, when shorter, wins; a caller that goes away cancels the call.
   */
  timeoutsMs?: Record<string, number>;
}

/**
 * Default timeouts of calls to the delegate (ms). Create boots a VM (and pulls nothing), so it
 * gets the most; Wait has none: it lasts as long as the process.
 */
export const DELEGATE_TIMEOUTS_MS: Readonly<Record<string, number>> = {
  default: 30_000,
  Create: 120_000,
  Start: 60_000,
  Delete: 60_000,
  Checkpoint: 120_000,
  Shutdown: 10_000,
};

/** The timeout of `method` under `cfg`; undefined for Wait (none). */
export function delegateTimeout(cfg: Pick<KataConfig, 'timeoutsMs'>, method: string): number | undefined {
  if (method === 'Wait') return undefined;
  const t = { ...DELEGATE_TIMEOUTS_MS, ...cfg.timeoutsMs };
  return t[method] ?? t.default;
}

/** What the delegate gets as options: Kata's own config, never ours. */
export function delegateOptions(cfg: Pick<KataConfig, 'configPath'>): Any | undefined {
  if (!cfg.configPath) return undefined;
  return packAny(TYPE_URL.RuntimeOptions, runtimeOptions.Options, runtimeOptions.Options.fromPartial({ configPath: cfg.configPath }));
}

interface Codec<T> {
  encode(m: T): { finish(): Uint8Array };
  decode(b: Uint8Array): T;
  fromPartial(m: unknown): T;
}

interface Delegated {
  socket: string;
  /** containerd.task.v2.Task, or v3 for a delegate that announced version 3 (containerd 2.x's shims). */
  service: string;
  client: Client;
  pid: number;
}

export class KataTaskHandler implements TaskHandler {
  readonly name: string;
  private readonly clients = new Map<string, Client>();
  private readonly containers = new Map<string, Delegated>();

  constructor(
    private readonly cfg: KataConfig,
    private readonly ctx: HandlerContext,
  ) {
    this.name = cfg.name;
  }

  private delegateOptions(): Any | undefined {
    return delegateOptions(this.cfg);
  }

  /** `-info`: the delegate's own runtime features (from its `-info`), none when it has no -info. */
  static async features(cfg: KataConfig, ctx: HandlerContext): Promise<Any | undefined> {
    return (await delegateInfo(cfg, ctx, delegateOptions(cfg)))?.features;
  }

  private of(id: string): Delegated {
    const d = this.containers.get(id);
    if (!d) throw notFound(`container ${id}: not found`);
    return d;
  }

  private async call<Req, Res>(d: Delegated, method: string, reqCodec: Codec<Req>, req: Req, resCodec?: Codec<Res>): Promise<Res> {
    const bytes = await d.client.call(d.service, method, reqCodec.encode(req).finish(), {
      metadata: { 'containerd-namespace': this.ctx.namespace },
      ...forwardOptions(delegateTimeout(this.cfg, method)),
    });
    return (resCodec ? resCodec.decode(bytes) : undefined) as Res;
  }

  private async client(socket: string): Promise<Client> {
    let c = this.clients.get(socket);
    if (!c || c.closed) {
      c = await dial(socket);
      this.clients.set(socket, c);
    }
    return c;
  }

  async create(req: task.CreateTaskRequest): Promise<task.CreateTaskResponse> {
    const options = this.delegateOptions();
    const ep = await startDelegate(this.cfg, this.ctx, req.bundle, req.id, options);
    const { socket } = ep;
    // The delegate may have written its own socket into the bundle's `address`: containerd must
    // keep reconnecting to us (after a restart), and our `delete` must find the delegate.
    await recordDelegate(req.bundle, ep, this.ctx.shim.address);
    const d: Delegated = { socket, service: ep.service, client: await this.client(socket), pid: 0 };
    const res = await this.call(d, 'Create', task.CreateTaskRequest, { ...req, options }, task.CreateTaskResponse);
    d.pid = res.pid;
    this.containers.set(req.id, d);
    // Node mode: all a new worker needs is where the delegate listens (the delegate keeps the rest).
    this.ctx.custody?.saveRecord(req.id, { bundle: req.bundle, pid: res.pid });
    this.ctx.log.info({ id: req.id, delegate: this.cfg.binary, socket, service: ep.service, protocol: ep.protocol }, 'task delegated');
    return res;
  }
  start(req: task.StartRequest) {
    return this.call(this.of(req.id), 'Start', task.StartRequest, req, task.StartResponse);
  }
  async delete(req: task.DeleteRequest): Promise<task.DeleteResponse> {
    const d = this.of(req.id);
    const res = await this.call(d, 'Delete', task.DeleteRequest, req, task.DeleteResponse);
    if (!req.execId) {
      this.containers.delete(req.id);
      this.ctx.custody?.saveRecord(req.id, undefined);
      if (![...this.containers.values()].some((o) => o.socket === d.socket)) {
        // Last task of that delegate: let it exit, as containerd would.
        await this.call(d, 'Shutdown', task.ShutdownRequest, { id: req.id, now: false }).catch(() => undefined);
        d.client.close();
        this.clients.delete(d.socket);
      }
    }
    return res;
  }
  /**
   * Node mode, a restarted worker (ADR 0018): the task lives in its delegate shim, which outlived
   * the worker; dial it again from what the bundle recorded.
   */
  async adopt(a: Adoption): Promise<void> {
    const rec = a.record as { bundle?: unknown; pid?: unknown } | null;
    if (!rec || typeof rec.bundle !== 'string') throw new Error(`task ${a.id}: its record names no bundle`);
    for (const fd of a.fds.values()) closeFd(fd); // a delegating handler keeps no fds
    const ep = await recordedDelegate(rec.bundle);
    if (!ep) throw new Error(`task ${a.id}: ${rec.bundle} records no delegate shim`);
    const d: Delegated = { socket: ep.socket, service: ep.service, client: await this.client(ep.socket), pid: typeof rec.pid === 'number' ? rec.pid : 0 };
    this.containers.set(a.id, d);
    this.ctx.log.info({ id: a.id, socket: ep.socket }, 'task adopted from the worker before (delegate dialled again)');
  }
  pids(req: task.PidsRequest) {
    return this.call(this.of(req.id), 'Pids', task.PidsRequest, req, task.PidsResponse);
  }
  async pause(req: task.PauseRequest) {
    await this.call(this.of(req.id), 'Pause', task.PauseRequest, req);
  }
  async resume(req: task.ResumeRequest) {
    await this.call(this.of(req.id), 'Resume', task.ResumeRequest, req);
  }
  async checkpoint(req: task.CheckpointTaskRequest) {
    await this.call(this.of(req.id), 'Checkpoint', task.CheckpointTaskRequest, req);
  }
  async kill(req: task.KillRequest) {
    await this.call(this.of(req.id), 'Kill', task.KillRequest, req);
  }
  async exec(req: task.ExecProcessRequest) {
    await this.call(this.of(req.id), 'Exec', task.ExecProcessRequest, req);
  }
  async resizePty(req: task.ResizePtyRequest) {
    await this.call(this.of(req.id), 'ResizePty', task.ResizePtyRequest, req);
  }
  async closeIO(req: task.CloseIORequest) {
    await this.call(this.of(req.id), 'CloseIO', task.CloseIORequest, req);
  }
  async update(req: task.UpdateTaskRequest) {
    await this.call(this.of(req.id), 'Update', task.UpdateTaskRequest, req);
  }
  wait(req: task.WaitRequest) {
    return this.call(this.of(req.id), 'Wait', task.WaitRequest, req, task.WaitResponse);
  }
  stats(req: task.StatsRequest) {
    return this.call(this.of(req.id), 'Stats', task.StatsRequest, req, task.StatsResponse);
  }
  state(req: task.StateRequest) {
    return this.call(this.of(req.id), 'State', task.StateRequest, req, task.StateResponse);
  }
  taskPid(id: string): number {
    return this.containers.get(id)?.pid ?? 0;
  }
  containerCount(): number {
    return this.containers.size;
  }
  async close(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /**
   * `delete` subcommand (our daemon is gone): the delegate's own `delete` removes the task,
   * then its daemon is asked to shut down, as containerd would have done for it.
   */
  static async cleanup(cfg: KataConfig, ctx: HandlerContext, bundle: string, id: string): Promise<CleanupResult> {
    const rec = await recordedDelegate(bundle);
    const client = rec ? await dial(rec.socket).catch(() => undefined) : undefined;
    if (client) {
      // The delegate daemon outlived us: end the task through it (kill, wait, delete), then
      // ask it to shut down; it exits once no task of its own is left.
      const opts = { timeoutMs: 3000, metadata: { 'containerd-namespace': ctx.namespace } };
      const rpc = (method: string, bytes: Uint8Array) => client.call(rec!.service, method, bytes, opts).catch(() => undefined);
      await rpc('Kill', task.KillRequest.encode(task.KillRequest.fromPartial({ id, signal: 9, all: true })).finish());
      await rpc('Wait', task.WaitRequest.encode(task.WaitRequest.fromPartial({ id })).finish());
      await rpc('Delete', task.DeleteRequest.encode(task.DeleteRequest.fromPartial({ id })).finish());
      await rpc('Shutdown', task.ShutdownRequest.encode(task.ShutdownRequest.fromPartial({ id })).finish());
      client.close();
    }
    const r = await deleteDelegate(cfg, ctx, bundle, id);
    return { pid: r.pid, exitStatus: r.exitStatus };
  }
}
