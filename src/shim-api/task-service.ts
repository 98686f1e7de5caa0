/**
 * The task API dispatcher: decode a ttrpc request, validate ids, route it to the
 * handler that owns the container, encode the answer. Errors become ttrpc
 * statuses here and only here (toStatus). No backend logic.
 */
import type { Logger } from 'pino';
import type { Server, UnaryHandler } from '../ttrpc/index.js';
import { toStatus, notFound, failedPrecondition, alreadyExists } from './errors.js';
import type { HandlerResolver, TaskHandler } from './handler.js';
import { validateExecId, validateId } from './identifiers.js';
import { TaskDefinition, task } from './pb.js';
import { readSpecAnnotations } from './spec.js';
import { writeDeletedMarker } from './bootstrap/deleted-marker.js';

export const TASK_SERVICE = 'containerd.task.v2.Task';

export interface TaskServiceOptions {
  resolver: HandlerResolver;
  log: Logger;
  /** Called after Shutdown was answered and no container is left. */
  onShutdown: () => void;
  /** Version string answered by Connect (runc-v2 answers ""). */
  version?: string;
}

type Req = { id?: string; execId?: string };

export class TaskService {
  /** container id -> the handler serving it */
  private readonly owners = new Map<string, TaskHandler>();
  /** container id -> its bundle (for the deleted marker) */
  private readonly bundles = new Map<string, string>();
  private readonly handlers = new Set<TaskHandler>();
  private shuttingDown = false;

  constructor(private readonly opts: TaskServiceOptions) {}

  get containerCount(): number {
    return this.owners.size;
  }

  register(server: Server): void {
    const methods: Record<string, UnaryHandler> = {};
    for (const def of Object.values(TaskDefinition.methods)) {
      const name = def.name as string;
      const impl = (this as unknown as Record<string, (req: unknown) => Promise<unknown>>)[lowerFirst(name)];
      if (typeof impl !== 'function') continue; // not served: the ttrpc server answers Unimplemented
      const { requestType, responseType } = def as unknown as {
        requestType: { decode(b: Uint8Array): unknown };
        responseType: { encode(m: unknown): { finish(): Uint8Array }; fromPartial?(m: unknown): unknown };
      };
      methods[name] = async (payload) => {
        let req: unknown;
        try {
          req = requestType.decode(payload);
        } catch (err) {
          throw toStatus(new Error(`${name}: cannot decode request: ${(err as Error).message}`));
        }
        const started = process.hrtime.bigint();
        try {
          const res = await impl.call(this, req);
          this.opts.log.debug({ method: name, id: (req as Req).id, execId: (req as Req).execId || undefined, ms: msSince(started) }, 'request');
          if (res === undefined) return undefined;
          return responseType.encode(responseType.fromPartial ? responseType.fromPartial(res) : res).finish();
        } catch (err) {
          const status = toStatus(err);
          this.opts.log.info({ method: name, id: (req as Req).id, execId: (req as Req).execId || undefined, code: status.code, err: status.message }, 'request failed');
          throw status;
        }
      };
    }
    server.register(TASK_SERVICE, methods);
  }

  private owner(req: Req): TaskHandler {
    validateId(req.id ?? '');
    validateExecId(req.execId ?? '');
    const h = this.owners.get(req.id!);
    if (!h) throw notFound(`container ${req.id}: not found`);
    return h;
  }

  // --- the task API ---

  async create(req: task.CreateTaskRequest) {
    validateId(req.id);
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
  start(req: task.StartRequest) {
    return this.owner(req).start(req);
  }
  async delete(req: task.DeleteRequest) {
    const h = this.owner(req);
    const res = await h.delete(req);
    if (!req.execId) {
      this.owners.delete(req.id);
      const bundle = this.bundles.get(req.id);
      this.bundles.delete(req.id);
      if (bundle) writeDeletedMarker(bundle, task.DeleteResponse.encode(res).finish());
    }
    return res;
  }
  pids(req: task.PidsRequest) {
    return this.owner(req).pids(req);
  }
  pause(req: task.PauseRequest) {
    return this.owner(req).pause(req);
  }
  resume(req: task.ResumeRequest) {
    return this.owner(req).resume(req);
  }
  checkpoint(req: task.CheckpointTaskRequest) {
    return this.owner(req).checkpoint(req);
  }
  kill(req: task.KillRequest) {
    return this.owner(req).kill(req);
  }
  exec(req: task.ExecProcessRequest) {
    return this.owner(req).exec(req);
  }
  resizePty(req: task.ResizePtyRequest) {
    return this.owner(req).resizePty(req);
  }
  closeIO(req: task.CloseIORequest) {
    return this.owner(req).closeIO(req);
  }
  update(req: task.UpdateTaskRequest) {
    return this.owner(req).update(req);
  }
  wait(req: task.WaitRequest) {
    return this.owner(req).wait(req);
  }
  stats(req: task.StatsRequest) {
    return this.owner(req).stats(req);
  }
  state(req: task.StateRequest) {
    return this.owner(req).state(req);
  }
  async connect(req: task.ConnectRequest) {
    const h = req.id ? this.owners.get(req.id) : undefined;
    return { shimPid: process.pid, taskPid: h ? h.taskPid(req.id) : 0, version: this.opts.version ?? '' };
  }
  async shutdown(_req: task.ShutdownRequest) {
    // runc-v2: containers left -> OK and keep running; none left -> exit after answering.
    if (this.owners.size > 0) return undefined;
    this.shuttingDown = true;
    setImmediate(() => this.opts.onShutdown());
    return undefined;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.handlers].map((h) => h.close()));
  }
}

function lowerFirst(s: string): string {
  return s[0]!.toLowerCase() + s.slice(1);
}
function msSince(t: bigint): number {
  return Number(process.hrtime.bigint() - t) / 1e6;
}
