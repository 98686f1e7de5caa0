/**
 * The task API dispatcher: decode a ttrpc request, validate ids, route it to the
 * handler that owns the container, encode the answer. Errors become ttrpc
 * statuses here and only here (toStatus). No backend logic.
 */
import type { Logger } from 'pino';
import type { Server, UnaryHandler } from 'ttrpc-ts';
import { toStatus, notFound, failedPrecondition, alreadyExists } from './errors.js';
import type { HandlerResolver, TaskHandler } from './handler.js';
import { validateExecId, validateId } from './identifiers.js';
import { TaskDefinition, task } from './pb.js';
import { readSpecAnnotations } from './spec.js';
import { TaskLocks } from './lifecycle.js';
import { writeDeletedMarker } from './bootstrap/deleted-marker.js';
import { runInRequest } from './request-scope.js';
import { Code, codeName } from 'ttrpc-ts';
import { Status } from './pb.js';
import { addTaskSource, metrics } from '../observe/shim-metrics.js';
import { SpanKind, parseTraceparent, tracer, type Span } from '../observe/tracing.js';

export const TASK_SERVICE = 'containerd.task.v2.Task';

export interface TaskServiceOptions {
  resolver: HandlerResolver;
  log: Logger;
  /** Called after Shutdown was answered and no container is left. */
  onShutdown: () => void;
  /** Version string answered by Connect (runc-v2 answers ""). */
  version?: string;
  /**
   * Node mode (ADR 0018): Shutdown answers OK and never ends anything, since the process serves
   * other tasks (and later ones) too. Default: runc-v2's rule, exit once no container is left.
   */
  persistent?: boolean;
}

type Req = { id?: string; execId?: string };

type Methods = (typeof TaskDefinition)['methods'];
type Codec = { decode(b: Uint8Array): unknown; encode(m: never): { finish(): Uint8Array }; fromPartial(m: never): unknown };
/** The codecs seen through their untyped side (the table above did the typing). */
type LooseCodec = { encode(m: unknown): { finish(): Uint8Array }; fromPartial(m: unknown): unknown };
type RequestOf<K extends keyof Methods> = ReturnType<Methods[K]['requestType']['decode']>;
type ResponseOf<K extends keyof Methods> = ReturnType<Methods[K]['responseType']['decode']>;
/** google.protobuf.Empty answers are `void` on our side. */
type Answer<T> = keyof T extends never ? void : T;
/** The typed registration table: one entry per Task method, keyed as the generated definition keys it. */
type TaskMethods = { [K in keyof Methods]: (req: RequestOf<K>) => Promise<Answer<ResponseOf<K>>> };

export class TaskService {
  /** container id -> the handler serving it */
  private readonly owners = new Map<string, TaskHandler>();
  /** container id -> its bundle (for the deleted marker) */
  private readonly bundles = new Map<string, string>();
  private readonly handlers = new Set<TaskHandler>();
  /** One FIFO lock per container id (ADR 0011). */
  private readonly locks = new TaskLocks();
  private shuttingDown = false;
  private readonly dropTaskSource: () => void;

  constructor(private readonly opts: TaskServiceOptions) {
    this.dropTaskSource = addTaskSource(() => this.taskStates());
  }

  /** Each task's handler and its init's state, for the tsshim_tasks gauge (ADR 0025). */
  private async taskStates(): Promise<Array<{ handler: string; state: string }>> {
    return Promise.all(
      [...this.owners].map(async ([id, h]) => {
        let state = 'unknown';
        try {
          const r = await h.state({ id, execId: '' });
          state = (Status[r.status] ?? 'unknown').toLowerCase();
        } catch {
          /* unknown */
        }
        return { handler: h.name, state };
      }),
    );
  }

  get containerCount(): number {
    return this.owners.size;
  }

  /** The bundle of task `id` (node mode records it with the task). */
  bundleOf(id: string): string | undefined {
    return this.bundles.get(id);
  }

  /** The handler name of task `id`. */
  handlerOf(id: string): string | undefined {
    return this.owners.get(id)?.name;
  }

  /**
   * Node mode, a restarted worker (ADR 0018): take task `id` over from the worker before, through
   * the handler its bundle names (the resolver reads it back) and that handler's `adopt`.
   */
  adopt(id: string, bundle: string, a: import('./custody.js').Adoption): Promise<void> {
    validateId(id);
    return this.locks.run(id, async () => {
      if (this.owners.has(id)) throw alreadyExists(`container ${id}: already exists`);
      if (!this.opts.resolver.forBundle) throw failedPrecondition('this resolver cannot find a bundle\'s handler');
      const handler = await this.opts.resolver.forBundle(bundle);
      if (!handler.adopt) throw failedPrecondition(`handler ${handler.name} cannot take over a running task (no adopt)`);
      // Known before adopt runs: a handler saves the task's record while it adopts, and node mode
      // keeps the bundle and handler with the record (bundleOf, handlerOf). Without them the next
      // worker could not adopt the task again (its bundle read as '').
      this.owners.set(id, handler);
      this.bundles.set(id, bundle);
      try {
        await handler.adopt(a);
      } catch (err) {
        this.owners.delete(id);
        this.bundles.delete(id);
        throw err;
      }
      this.handlers.add(handler);
    });
  }

  /** The tasks served now and the handler of each (node status). */
  tasks(): Array<{ id: string; handler: string }> {
    return [...this.owners].map(([id, h]) => ({ id, handler: h.name }));
  }

  /**
   * Every method of the Task service, by its key in the generated TaskDefinition: the
   * compiler checks that each one is here, spelt right, with its request and response types.
   */
  private methods(): TaskMethods {
    return {
      state: (r) => this.locked(r, (h) => h.state(r)),
      create: (r) => this.create(r),
      start: (r) => this.locked(r, (h) => h.start(r)),
      delete: (r) => this.locked(r, (h) => this.delete(h, r)),
      pids: (r) => this.locked(r, (h) => h.pids(r)),
      pause: (r) => this.locked(r, (h) => h.pause(r)),
      resume: (r) => this.locked(r, (h) => h.resume(r)),
      checkpoint: (r) => this.locked(r, (h) => h.checkpoint(r)),
      kill: (r) => this.locked(r, (h) => h.kill(r)),
      exec: (r) => {
        validateId(r.execId, 'exec id'); // containerd forbids an empty exec id (InvalidArgument)
        return this.locked(r, (h) => h.exec(r));
      },
      resizePty: (r) => this.locked(r, (h) => h.resizePty(r)),
      // Not serialised: closing stdin never waits for an operation (runc-v2 takes no lock either).
      closeIO: async (r) => this.owner(r).closeIO(r),
      update: (r) => this.locked(r, (h) => h.update(r)),
      // Not serialised: it lasts as long as the process.
      wait: async (r) => this.owner(r).wait(r),
      stats: (r) => this.locked(r, (h) => h.stats(r)),
      connect: (r) => this.connect(r),
      shutdown: () => this.shutdown(),
    };
  }

  register(server: Server): void {
    const table = this.methods();
    const handlers: Record<string, UnaryHandler> = {};
    for (const key of Object.keys(table) as Array<keyof TaskMethods>) {
      const def = TaskDefinition.methods[key];
      handlers[def.name] = this.unary(def.name, def.requestType, def.responseType, table[key] as (req: unknown) => Promise<unknown>);
    }
    server.register(TASK_SERVICE, handlers);
  }

  /**
   * Decode, call, encode; errors become ttrpc statuses (toStatus) here only. Each answer is
   * counted by method and code with its latency, and is one span (child of containerd's, when
   * its request carried a W3C trace context: ADR 0025).
   */
  private unary(name: string, requestType: Codec, responseType: Codec, impl: (req: unknown) => Promise<unknown>): UnaryHandler {
    return async (payload, ctx) => {
      const started = process.hrtime.bigint();
      const span = startRpcSpan(ctx, name);
      let req: Req = {};
      try {
        try {
          req = requestType.decode(payload) as Req;
        } catch (err) {
          throw toStatus(new Error(`${name}: cannot decode request: ${(err as Error).message}`));
        }
        if (span) {
          span.setAttribute('tsshim.task.id', req.id).setAttribute('tsshim.exec.id', req.execId);
          span.setAttribute('tsshim.handler', req.id ? this.owners.get(req.id)?.name : undefined);
        }
        // The caller's signal and deadline, for handlers that forward the call (request-scope.ts).
        const res = await runInRequest({ signal: ctx.signal, deadline: ctx.deadline, span }, () => impl(req));
        this.opts.log.debug({ method: name, id: req.id, execId: req.execId || undefined, ms: msSince(started) }, 'request');
        answered(name, Code.OK, started, span);
        if (res === undefined) return undefined;
        const codec = responseType as unknown as LooseCodec;
        return codec.encode(codec.fromPartial(res)).finish();
      } catch (err) {
        const status = toStatus(err);
        this.opts.log.info({ method: name, id: req.id, execId: req.execId || undefined, code: status.code, err: status.message }, 'request failed');
        answered(name, status.code, started, span, status.message);
        throw status;
      }
    };
  }

  private owner(req: Req): TaskHandler {
    validateId(req.id ?? '');
    validateExecId(req.execId ?? '');
    const h = this.owners.get(req.id!);
    if (!h) throw notFound(`container ${req.id}: not found`);
    return h;
  }

  /**
   * One operation per task at a time, in arrival order (ADR 0011): the owner is looked up
   * once the task's earlier operations are done (a Delete before this one removed it).
   */
  private locked<T>(req: Req, fn: (h: TaskHandler) => Promise<T>): Promise<T> {
    validateId(req.id ?? '');
    validateExecId(req.execId ?? '');
    return this.locks.run(req.id!, () => fn(this.owner(req)));
  }

  // --- the task API ---

  /** Serialised per id: a second Create of the same id waits, then finds it taken. */
  private create(req: task.CreateTaskRequest): Promise<task.CreateTaskResponse> {
    validateId(req.id);
    return this.locks.run(req.id, () => this.createLocked(req));
  }

  private async createLocked(req: task.CreateTaskRequest): Promise<task.CreateTaskResponse> {
    if (this.owners.has(req.id)) throw alreadyExists(`container ${req.id}: already exists`);
    if (this.shuttingDown) throw failedPrecondition('shim is shutting down');
    const handler = await this.opts.resolver.resolve({
      options: req.options,
      annotations: await readSpecAnnotations(req.bundle),
      bundle: req.bundle,
      id: req.id,
    });
    this.handlers.add(handler);
    this.owners.set(req.id, handler);
    this.bundles.set(req.id, req.bundle);
    try {
      return await handler.create(req);
    } catch (err) {
      this.owners.delete(req.id);
      this.bundles.delete(req.id);
      throw err;
    }
  }
  private async delete(h: TaskHandler, req: task.DeleteRequest): Promise<task.DeleteResponse> {
    const res = await h.delete(req);
    if (!req.execId) {
      this.owners.delete(req.id);
      const bundle = this.bundles.get(req.id);
      this.bundles.delete(req.id);
      if (bundle) await writeDeletedMarker(bundle, task.DeleteResponse.encode(res).finish());
    }
    return res;
  }
  private async connect(req: task.ConnectRequest): Promise<task.ConnectResponse> {
    const h = req.id ? this.owners.get(req.id) : undefined;
    return { shimPid: process.pid, taskPid: h ? h.taskPid(req.id) : 0, version: this.opts.version ?? '' };
  }
  private async shutdown(): Promise<void> {
    // runc-v2: containers left -> OK and keep running; none left -> exit after answering.
    if (this.opts.persistent || this.owners.size > 0) return undefined;
    this.shuttingDown = true;
    setImmediate(() => this.opts.onShutdown());
    return undefined;
  }

  async close(): Promise<void> {
    this.dropTaskSource();
    await Promise.allSettled([...this.handlers].map((h) => h.close()));
  }
}

/** Server-side codes otelttrpc marks as span errors (the rest are the caller's mistakes: status unset). */
const SPAN_ERROR_CODES = new Set([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

function startRpcSpan(ctx: { service: string; method: string; metadata: Map<string, string[]> }, method: string): Span | undefined {
  const t = tracer();
  if (!t) return undefined;
  const parent = parseTraceparent(ctx.metadata.get('traceparent')?.[0], ctx.metadata.get('tracestate')?.[0]);
  const span = t.startSpan(`${TASK_SERVICE}/${method}`, SpanKind.SERVER, parent);
  span?.setAttribute('rpc.system', 'ttrpc').setAttribute('rpc.service', TASK_SERVICE).setAttribute('rpc.method', method);
  span?.setAttribute('containerd.namespace', ctx.metadata.get('containerd-namespace')?.[0]);
  return span;
}

function answered(method: string, code: Code, started: bigint, span: Span | undefined, message?: string): void {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  metrics.rpcs.inc({ method, code: codeName(code) });
  metrics.rpcSeconds.observe({ method }, seconds);
  if (span) {
    span.setAttribute('rpc.ttrpc.status_code', code);
    if (SPAN_ERROR_CODES.has(code)) span.fail(message ?? codeName(code));
    span.finish();
  }
}

function msSince(t: bigint): number {
  return Number(process.hrtime.bigint() - t) / 1e6;
}
