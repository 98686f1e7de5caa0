/**
 * Node mode (docs/adr/0018-node-mode.md): one tsshim daemon per containerd instance serves every
 * tsshim task of that containerd, whatever its namespace or pod.
 *
 * - The daemon of a containerd is found by its `-address`: state in NODE_ROOT/<key> (pid file,
 *   control socket, lock), key = a hash of the address, so private containerds side by side each
 *   get their own daemon.
 * - Each containerd namespace gets its own task socket (socketPath(address, ns, NODE_GROUP)) and
 *   its own TaskService: a connection belongs to one namespace by the socket it came in on, so
 *   tasks are keyed by (namespace, id) even when the requests carry no namespace metadata (`ctr`).
 * - `start` (bin/containerd-shim-tsshim-v2) answers with the namespace socket without booting
 *   Node when the daemon already serves it; otherwise Node asks the daemon over the control
 *   socket to serve the namespace, or becomes the daemon itself.
 * - Shutdown never ends the daemon: containerd asks every task's shim to shut down, and other
 *   tasks live on the same process.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Client, Server } from '../../ttrpc/index.js';
import { closeFd } from '../../sys/libc.js';
import { RUNTIME_TYPE } from '../runtime-type.js';
import type { EventPublisher } from '../events.js';
import type { HandlerResolver } from '../handler.js';
import { TaskService } from '../task-service.js';
import { invalidArgument, failedPrecondition } from '../errors.js';
import { isIdentifier } from '../identifiers.js';
import { bindSocket, isServing, socketIdentity, socketPath, toAddress, unlinkOwnSocket, withSocketLock, type SocketIdentity } from './address.js';

export const NODE_ROOT = '/run/tsshim/node';
/** The group part of a namespace socket's hash: not an identifier, so no task id can collide with it. */
export const NODE_GROUP = '@node';
export const CONTROL_SERVICE = 'tsshim.node.v1.Node';
export const NODE_LOG_DIR = '/var/log/tsshim';

/** Where the daemon of the containerd at `containerdAddress` keeps its state. */
export interface NodePaths {
  key: string;
  dir: string;
  pidFile: string;
  control: string;
  lock: string;
  log: string;
}

/** The launcher (bin/containerd-shim-tsshim-v2) computes the same key with sha256sum: keep them equal. */
export function nodeKey(containerdAddress: string): string {
  return createHash('sha256').update(`${RUNTIME_TYPE}:${containerdAddress}`).digest('hex').slice(0, 16);
}

export function nodePaths(containerdAddress: string, root = NODE_ROOT): NodePaths {
  const key = nodeKey(containerdAddress);
  const dir = `${root}/${key}`;
  return { key, dir, pidFile: `${dir}/pid`, control: `${dir}/control.sock`, lock: `${dir}/lock`, log: `${NODE_LOG_DIR}/node-${key}.log` };
}

/** The task socket of one namespace (the launcher computes it too). */
export function namespaceSocket(containerdAddress: string, namespace: string): string {
  return socketPath(containerdAddress, namespace, NODE_GROUP);
}

// --- the control protocol (ttrpc, JSON payloads: only tsshim's own start and CLI speak it) ---

export interface NodeStatus {
  mode: 'node';
  /** The process that holds containerd's connections; null while supervisor and worker are one process. */
  supervisorPid: number | null;
  /** The process that runs handler code, backend commands and stdio copying. */
  workerPid: number;
  pid: number;
  version: string;
  containerdAddress: string;
  startedAt: string;
  uptimeSeconds: number;
  restarts: number;
  /** socketRebinds: times the socket file was removed by another program and bound again. */
  namespaces: Record<string, { address: string; tasks: number; byHandler: Record<string, number>; socketRebinds: number }>;
  tasks: Array<{ namespace: string; id: string; handler: string }>;
}

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = (b: Uint8Array): unknown => (b.length === 0 ? {} : JSON.parse(new TextDecoder().decode(b)));

async function call(control: string, method: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const client = await Client.connect(control, { connectTimeoutMs: timeoutMs });
  try {
    return dec(await client.call(CONTROL_SERVICE, method, enc(body), { timeoutMs }));
  } finally {
    client.close();
  }
}

/** Ask the running daemon to serve `namespace`; resolves to its task address. */
export async function askServe(control: string, namespace: string, timeoutMs = 10_000): Promise<string> {
  const r = (await call(control, 'Serve', { namespace }, timeoutMs)) as { address?: unknown };
  if (typeof r.address !== 'string') throw new Error('tsshim node daemon: Serve answered without an address');
  return r.address;
}

export async function askStatus(control: string, timeoutMs = 5_000): Promise<NodeStatus> {
  return (await call(control, 'Status', {}, timeoutMs)) as NodeStatus;
}

// --- the daemon ---

export interface NodeDaemonDeps {
  log: Logger;
  version: string;
  containerdAddress: string;
  paths: NodePaths;
  /** The composition for one namespace (resolver and event publisher). */
  compose: (namespace: string, socket: string) => { resolver: HandlerResolver; publisher: EventPublisher };
  /** throws unless the peer may talk to us (SO_PEERCRED) */
  authorize: (socket: Socket) => void;
  /** the socket lock's file (tests); default address.ts's */
  socketLock?: string;
}

interface Space {
  namespace: string;
  sock: string;
  address: string;
  server: Server;
  service: TaskService;
  publisher: EventPublisher;
  own?: SocketIdentity;
  /** Stops the current listener (connections stay); replaced when the file is bound again. */
  stopListening?: () => Promise<void>;
  rebinds: number;
  healing?: Promise<string>;
}

export class NodeDaemon {
  private readonly spaces = new Map<string, Promise<Space>>();
  /** The spaces that serve, for status() */
  private readonly ready: Space[] = [];
  private readonly control: Server;
  private controlOwn?: SocketIdentity;
  private readonly startedAt = new Date();
  private closing = false;

  constructor(private readonly deps: NodeDaemonDeps) {
    this.control = new Server({ authorize: deps.authorize, onError: (err, where) => deps.log.warn({ err: String(err), where }, 'control: ttrpc error') });
    this.control.register(CONTROL_SERVICE, {
      Serve: async (payload) => {
        const { namespace } = dec(payload) as { namespace?: unknown };
        if (typeof namespace !== 'string' || !isIdentifier(namespace)) throw invalidArgument(`Serve: namespace ${JSON.stringify(namespace)} is not a containerd identifier`);
        return enc({ address: await this.serveNamespace(namespace) });
      },
      Status: async () => enc(this.status()),
    });
  }

  /** Serve the control socket on an already bound listening fd (bound under the node lock). */
  async listenControl(fd: number): Promise<void> {
    await this.control.listen({ fd });
    this.controlOwn = await socketIdentity(this.deps.paths.control);
  }

  /**
   * Serve a namespace's task socket (idempotent). `fd`: a listening socket the caller already
   * bound at the namespace socket's path; else it is bound here, under the socket lock.
   */
  serveNamespace(namespace: string, fd?: number): Promise<string> {
    if (this.closing) return Promise.reject(failedPrecondition('tsshim node daemon is shutting down'));
    let space = this.spaces.get(namespace);
    if (!space) {
      space = this.openSpace(namespace, fd);
      this.spaces.set(namespace, space);
      space.catch(() => this.spaces.delete(namespace));
      return space.then((s) => s.address);
    }
    if (fd !== undefined) closeFd(fd);
    return space.then((s) => this.ensureSocketFile(s));
  }

  /**
   * The namespace's socket file must still be the one we listen on: another program may have
   * unlinked it (runc-v2 and Kata's shim remove the socket named in a bundle's `address` file when
   * they exit, and a delegating handler's delegate runs in our bundle). Bind it afresh if not.
   */
  private ensureSocketFile(s: Space): Promise<string> {
    // One check at a time per namespace (the watcher and Serve can both ask).
    const run = (s.healing ?? Promise.resolve('')).catch(() => '').then(() => this.healSocketFile(s));
    s.healing = run;
    return run;
  }

  private async healSocketFile(s: Space): Promise<string> {
    const now = await socketIdentity(s.sock);
    if (now && s.own && now.dev === s.own.dev && now.ino === s.own.ino) return s.address;
    const fd = await withSocketLock(async () => {
      if (await isServing(s.sock)) {
        const again = await socketIdentity(s.sock);
        if (again && s.own && again.dev === s.own.dev && again.ino === s.own.ino) return undefined;
        throw failedPrecondition(`another process serves ${s.sock}: is a second tsshim node daemon running for ${this.deps.containerdAddress}?`);
      }
      await fsp.rm(s.sock, { force: true });
      return bindSocket(s.sock);
    }, { lockFile: this.deps.socketLock });
    if (fd === undefined) return s.address;
    let stop: () => Promise<void>;
    try {
      stop = await s.server.listen({ fd });
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    const previous = s.stopListening;
    s.stopListening = stop;
    s.own = await socketIdentity(s.sock);
    s.rebinds += 1;
    this.deps.log.warn({ namespace: s.namespace, socket: s.sock, rebinds: s.rebinds }, 'node daemon: the namespace socket file was removed by someone else; bound it again');
    await previous?.();
    return s.address;
  }

  private async openSpace(namespace: string, given?: number): Promise<Space> {
    const { log } = this.deps;
    const sock = namespaceSocket(this.deps.containerdAddress, namespace);
    const fd =
      given ??
      (await withSocketLock(async () => {
        if (await isServing(sock)) throw failedPrecondition(`another process serves ${sock}: is a second tsshim node daemon running for ${this.deps.containerdAddress}?`);
        await fsp.rm(sock, { force: true });
        return bindSocket(sock);
      }, { lockFile: this.deps.socketLock }));
    const { resolver, publisher } = this.deps.compose(namespace, sock);
    const nsLog = log.child({ namespace });
    const server = new Server({ authorize: this.deps.authorize, onError: (err, where) => nsLog.warn({ err: String(err), where }, 'ttrpc error') });
    // persistent: Shutdown answers OK and never ends the daemon (other tasks live here too).
    const service = new TaskService({ resolver, log: nsLog, version: '', onShutdown: () => undefined, persistent: true });
    service.register(server);
    let stopListening: () => Promise<void>;
    try {
      stopListening = await server.listen({ fd });
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    const own = await socketIdentity(sock);
    this.watchSocketDir(sock);
    log.info({ namespace, socket: sock }, 'node daemon: serving namespace');
    const space: Space = { namespace, sock, address: toAddress(sock), server, service, publisher, own, stopListening, rebinds: 0 };
    this.ready.push(space); // status() reads the serving spaces without awaiting
    return space;
  }

  private watcher?: FSWatcher;

  /**
   * containerd reads a bundle's `address` again when it restarts: a socket file removed behind our
   * back must come back at once, not at the next start. inotify on the socket directory.
   */
  private watchSocketDir(sock: string): void {
    if (this.watcher) return;
    try {
      this.watcher = watch(path.dirname(sock), { persistent: false }, (_event, name) => {
        if (this.closing || !name) return;
        const s = this.ready.find((x) => path.basename(x.sock) === String(name));
        if (s) void this.ensureSocketFile(s).catch((err: unknown) => this.deps.log.error({ err: String(err), socket: s.sock }, 'node daemon: cannot bind the namespace socket again'));
      });
      this.watcher.on('error', (err) => this.deps.log.warn({ err: String(err) }, 'node daemon: socket directory watch failed'));
    } catch (err) {
      this.deps.log.warn({ err: String(err) }, 'node daemon: cannot watch the socket directory (a removed socket file comes back at the next start only)');
    }
  }

  status(): NodeStatus {
    const namespaces: NodeStatus['namespaces'] = {};
    const tasks: NodeStatus['tasks'] = [];
    for (const s of this.ready) {
      const byHandler: Record<string, number> = {};
      const list = s.service.tasks();
      for (const t of list) {
        byHandler[t.handler] = (byHandler[t.handler] ?? 0) + 1;
        tasks.push({ namespace: s.namespace, id: t.id, handler: t.handler });
      }
      namespaces[s.namespace] = { address: s.address, tasks: list.length, byHandler, socketRebinds: s.rebinds };
    }
    return {
      mode: 'node',
      supervisorPid: null,
      workerPid: process.pid,
      pid: process.pid,
      version: this.deps.version,
      containerdAddress: this.deps.containerdAddress,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      restarts: 0,
      namespaces,
      tasks,
    };
  }

  /** Stop serving: sockets unlinked (only our own files), services and publishers closed. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.watcher?.close();
    const spaces = (await Promise.allSettled([...this.spaces.values()])).flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const lock = { lockFile: this.deps.socketLock };
    await unlinkOwnSocket(this.deps.paths.control, this.controlOwn, lock);
    for (const s of spaces) await unlinkOwnSocket(s.sock, s.own, lock);
    await fsp.rm(this.deps.paths.pidFile, { force: true });
    await Promise.allSettled([this.control.close(), ...spaces.map((s) => s.server.close())]);
    await Promise.allSettled(spaces.map((s) => s.service.close()));
    await Promise.allSettled(spaces.map((s) => s.publisher.close(5000)));
  }
}
