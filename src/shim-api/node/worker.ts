/**
 * Node mode's worker (ADR 0018): serves the task API of every namespace over the connections its
 * supervisor hands it, runs handler code, backend commands and stdio copying, and may be killed
 * at any moment. It is not a child subreaper (container processes re-parent to the supervisor,
 * whose exits arrive here as messages), it keeps every fd and record a task needs with the
 * supervisor (custody), and a new worker first adopts the tasks the last one left.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Logger } from 'pino';
import { Server } from 'ttrpc-ts';
import { closeFd, dupFd } from '../../sys/libc.js';
import type { ExitEvent } from '../../sys/reaper.js';
import type { Composed } from '../../composition/root.js';
import type { Custody } from '../custody.js';
import type { OsServices } from '../handler.js';
import { TaskService } from '../task-service.js';
import { encodeForward, type EventPublisher } from '../events.js';
import { task } from '../pb.js';
import { isIdentifier } from '../identifiers.js';
import path from 'node:path';
import { namespaceSocket, type NodeStatus } from '../bootstrap/node.js';
import { Channel, type Message } from './channel.js';
import { registry } from '../../observe/shim-metrics.js';
import { EventLoopWatch } from './event-loop.js';

export interface WorkerDeps {
  log: Logger;
  containerdAddress: string;
  /** the composition of one namespace, with this worker's exits source, custody and event publisher */
  compose: (namespace: string, socket: string, exits: OsServices['exits'], custody: Custody, publisher: EventPublisher) => Composed;
  /** starts reaping this process's own children (not as subreaper); onCommand: a backend command starts or ends */
  startReaping: (onExit: (e: ExitEvent) => void, onCommand: (pid: number, running: boolean) => void) => void;
}

interface Space {
  namespace: string;
  service: TaskService;
  server: Server;
  composed: Composed;
}

interface PendingAdoption {
  ns: string;
  id: string;
  bundle: string;
  record: unknown;
  fds: Map<string, number>;
}

export class Worker {
  private readonly channel: Channel;
  private readonly spaces = new Map<string, Space>();
  private readonly exits = new EventEmitter<{ exit: [ExitEvent] }>();
  private readonly adoptions: PendingAdoption[] = [];
  private readonly interrupted: Array<{ ns: string; payload: Uint8Array }> = [];
  private readonly eventLoop = new EventLoopWatch();

  /** msgFd/fdSock: the channel's sockets as inherited (fds 3 and 4); moved to close-on-exec copies. */
  constructor(
    private readonly deps: WorkerDeps,
    inherited: { msgFd: number; fdSock: number },
  ) {
    const msgFd = dupFd(inherited.msgFd);
    const fdSock = dupFd(inherited.fdSock);
    closeFd(inherited.msgFd);
    closeFd(inherited.fdSock);
    this.exits.setMaxListeners(0);
    this.channel = new Channel(msgFd, fdSock);
  }

  start(): void {
    // The supervisor ends the backend commands a dead worker left running before it answers
    // their requests (a `create` finishing after containerd's cleanup would leave a container).
    this.deps.startReaping(
      (e) => this.exits.emit('exit', e),
      (pid, running) => this.channel.send({ t: 'cmd', pid, running }),
    );
    this.channel.on('message', (m) => {
      try {
        this.onMessage(m);
      } catch (err) {
        this.deps.log.error({ err: err instanceof Error ? err.stack : String(err), message: m.t }, 'node worker: message failed');
      }
    });
    // The supervisor is gone: containerd's connections went with it; nothing here is of use.
    this.channel.on('close', () => {
      this.deps.log.error('node worker: the supervisor went away; exiting');
      process.exit(1);
    });
    this.channel.send({ t: 'hello', pid: process.pid });
  }

  private onMessage(m: Message): void {
    switch (m.t) {
      case 'namespace':
        this.space(String(m.ns));
        break;
      case 'adopt': {
        const fds = new Map<string, number>();
        const prefix = `${String(m.ns)}/`;
        for (const key of (m.keys as string[]) ?? []) fds.set(key.slice(prefix.length), this.channel.takeFd(key));
        this.adoptions.push({ ns: String(m.ns), id: String(m.id), bundle: String(m.bundle), record: m.record, fds });
        break;
      }
      case 'interrupted':
        if (m.method === 'Create') this.interrupted.push({ ns: String(m.ns), payload: Buffer.from(String(m.payload), 'base64') });
        break;
      case 'adopt-done':
        void this.adoptAll();
        break;
      case 'conn': {
        const fd = this.channel.takeFd(`conn:${String(m.n)}`);
        const socket = new net.Socket({ fd, readable: true, writable: true });
        this.space(String(m.ns)).server.handle(socket);
        break;
      }
      case 'exit':
        this.exits.emit('exit', { pid: Number(m.pid), status: Number(m.status), exitedAt: new Date(String(m.exitedAt)) });
        this.channel.send({ t: 'ack', seq: m.seq as number });
        break;
      case 'sync':
        // Everything sent before this reply is with the supervisor when it reads it.
        this.channel.send({ t: 'synced', seqs: m.seqs as Message });
        break;
      case 'status':
        this.channel.send({ t: 'status-reply', q: m.q as number, tasks: this.tasks(), eventLoop: this.eventLoop.snapshot(m.resetEventLoop === true) });
        break;
      case 'metrics':
        void registry.exposition().then(
          (text) => this.channel.send({ t: 'metrics-reply', q: m.q as number, text }),
          (err: unknown) => this.deps.log.warn({ err: String(err) }, 'node worker: metrics failed'),
        );
        break;
      default:
        break;
    }
  }

  private space(ns: string): Space {
    let s = this.spaces.get(ns);
    if (s) return s;
    const log = this.deps.log.child({ namespace: ns });
    let service: TaskService | undefined;
    const custody: Custody = {
      keepFd: (key, fd) => {
        const name = `${ns}/${key}`;
        if (this.channel.sendFd(name, fd)) this.channel.send({ t: 'keep', key: name });
      },
      dropFds: (prefix) => this.channel.send({ t: 'drop', prefix: `${ns}/${prefix}` }),
      saveRecord: (id, record) =>
        this.channel.send({ t: 'record', ns, id, bundle: service?.bundleOf(id) ?? '', handler: service?.handlerOf(id) ?? '', record: (record ?? null) as Message }),
    };
    // Events go to the supervisor, which forwards them to containerd (with retries): one handed
    // over survives this worker. It goes out before the record and the exit's ack that follow it.
    const publisher: EventPublisher = {
      publish: (topic, event, task) =>
        this.channel.send({ t: 'event', ns, topic, task, payload: Buffer.from(encodeForward(ns, topic, event, new Date())).toString('base64') }),
      close: async () => undefined,
    };
    const composed = this.deps.compose(ns, namespaceSocket(this.deps.containerdAddress, ns), this.exits, custody, publisher);
    service = new TaskService({ resolver: composed.resolver, log, version: '', onShutdown: () => undefined, persistent: true });
    const server = new Server({ onError: (err, where) => log.warn({ err: String(err), where }, 'ttrpc error') });
    service.register(server);
    s = { namespace: ns, service, server, composed };
    this.spaces.set(ns, s);
    return s;
  }

  /** Take over every task the last worker left, before any connection is served. */
  private async adoptAll(): Promise<void> {
    const failed: string[] = [];
    for (const a of this.adoptions.splice(0)) {
      const s = this.space(a.ns);
      try {
        await s.service.adopt(a.id, a.bundle, { id: a.id, record: a.record, fds: a.fds });
      } catch (err) {
        failed.push(`${a.ns}/${a.id}: ${(err as Error).message}`);
        for (const fd of a.fds.values()) closeFd(fd);
      }
    }
    // Creates the last worker did not finish: the backend's cleanup, as the `delete` subcommand
    // runs it for a dead shim (containerd's Delete of them finds no task here and stops there).
    for (const c of this.interrupted.splice(0)) {
      let id = '';
      try {
        const req = task.CreateTaskRequest.decode(c.payload);
        id = req.id;
        if (!isIdentifier(id) || !path.isAbsolute(req.bundle)) continue;
        if (this.spaces.get(c.ns)?.service.tasks().some((t) => t.id === id)) continue; // adopted: it was created
        await this.space(c.ns).composed.resolver.cleanup(req.bundle, id);
        this.deps.log.info({ namespace: c.ns, id }, 'node worker: cleaned up after a Create the last worker did not finish');
      } catch (err) {
        failed.push(`${c.ns}/${id}: cleanup after an interrupted Create: ${(err as Error).message}`);
      }
    }
    this.channel.send({ t: 'adopted', failed });
  }

  private tasks(): NodeStatus['tasks'] {
    const out: NodeStatus['tasks'] = [];
    for (const s of this.spaces.values()) for (const t of s.service.tasks()) out.push({ namespace: s.namespace, id: t.id, handler: t.handler });
    return out;
  }
}
