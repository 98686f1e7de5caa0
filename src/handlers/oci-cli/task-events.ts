/**
 * The /tasks/* events an OCI task publishes, with runc-v2's fields. One method per
 * topic: the handler says what happened, this file spells the message.
 */
import type { EventPublisher } from '../../shim-api/events.js';
import { events, packAny, timestampFromDate, TYPE_URL, type MessageFns, type task } from '../../shim-api/pb.js';
import type { ExitInfo, Proc } from './process.js';

export class TaskEvents {
  constructor(private readonly publisher: EventPublisher) {}

  private publish<T extends { containerId: string }>(topic: string, typeUrl: string, codec: MessageFns<T>, msg: T): void {
    this.publisher.publish(topic, packAny(typeUrl, codec, msg), msg.containerId);
  }

  create(req: task.CreateTaskRequest, pid: number): void {
    this.publish('/tasks/create', TYPE_URL.TaskCreate, events.TaskCreate, {
      containerId: req.id,
      bundle: req.bundle,
      rootfs: req.rootfs,
      io: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
      checkpoint: req.checkpoint,
      pid,
    });
  }

  /** /tasks/start for the init, /tasks/exec-started for an exec. */
  started(p: Proc): void {
    if (p.isInit) this.publish('/tasks/start', TYPE_URL.TaskStart, events.TaskStart, { containerId: p.containerId, pid: p.pid });
    else this.publish('/tasks/exec-started', TYPE_URL.TaskExecStarted, events.TaskExecStarted, { containerId: p.containerId, execId: p.execId, pid: p.pid });
  }

  execAdded(containerId: string, execId: string): void {
    this.publish('/tasks/exec-added', TYPE_URL.TaskExecAdded, events.TaskExecAdded, { containerId, execId });
  }

  exit(p: Proc, e: ExitInfo): void {
    this.publish('/tasks/exit', TYPE_URL.TaskExit, events.TaskExit, {
      containerId: p.containerId,
      id: p.execId || p.containerId,
      pid: p.pid,
      exitStatus: e.status,
      exitedAt: timestampFromDate(e.exitedAt),
    });
  }

  deleted(res: task.DeleteResponse & { containerId: string }): void {
    this.publish('/tasks/delete', TYPE_URL.TaskDelete, events.TaskDelete, { ...res, id: '' });
  }

  paused(containerId: string): void {
    this.publish('/tasks/paused', TYPE_URL.TaskPaused, events.TaskPaused, { containerId });
  }

  resumed(containerId: string): void {
    this.publish('/tasks/resumed', TYPE_URL.TaskResumed, events.TaskResumed, { containerId });
  }

  oom(containerId: string): void {
    this.publish('/tasks/oom', TYPE_URL.TaskOOM, events.TaskOOM, { containerId });
  }
}
