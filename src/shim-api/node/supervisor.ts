/**
 * Node mode's supervisor (ADR 0018): the small process that must not die. It holds everything
 * containerd and the containers depend on, so that the worker, which runs handler code, backend
 * commands and stdio copying, can be SIGKILLed or upgraded at any moment:
 * - the listening sockets (control, one per namespace) and every accepted containerd connection
 *   (proxy.ts: whole frames only, requests in flight remembered);
 * - the child-subreaper role: container processes re-parent here; their exits are reaped here and
 *   forwarded to the worker, kept until it has acknowledged them and answered every Create, Start
 *   or Exec that was in flight when it got them (a task may hold an exit until its own event is
 *   out), replayed to the next worker otherwise;
 * - a duplicate of every fd a task needs (custody), and each task's record, handed to the next
 *   worker, which adopts the tasks before it is given any connection;
 * - the events for containerd: the worker encodes them and hands them over; they are forwarded
 *   (with retries) from here, so an event handed over is never lost with the worker. The worker
 *   sends an exit's event and its task's record before the exit's ack: an acknowledged exit's
 *   event is here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { watch, type FSWatcher } from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { Server } from 'ttrpc-ts';
import { closeFd, socketPair } from '../../sys/libc.js';
import type { ExitEvent } from '../../sys/reaper.js';
import { failedPrecondition, invalidArgument } from '../errors.js';
import { isIdentifier } from '../identifiers.js';
import { bindSocket, isServing, socketIdentity, toAddress, unlinkOwnSocket, withSocketLock, type SocketIdentity } from '../bootstrap/address.js';
import { CONTROL_SERVICE, namespaceSocket, type EventLoopDelay, type NodePaths, type NodeStatus } from '../bootstrap/node.js';
import { Channel, type Message } from './channel.js';
import { ProxyConn } from './proxy.js';
import { EventForwarder } from '../event-forwarder.js';
import { EventLoopWatch } from './event-loop.js';
import { Registry } from '../../observe/metrics.js';
import { eventRegistry } from '../../observe/shim-metrics.js';

/** How long a scrape waits for the worker's metrics before answering with the supervisor's alone. */
export const WORKER_METRICS_TIMEOUT_MS = 3000;

/**
 * What the supervisor adds to the worker's metrics (ADR 0025): it outlives workers, so it counts
 * their restarts and what a dead worker's requests became, and it answers scrapes while no worker runs.
 */
function supervisorMetrics() {
  const r = new Registry();
  return {
    registry: r,
    up: r.gauge('tsshim_node_worker_up', '1 while a worker serves (adopted its tasks), else 0 (restarting: the worker metrics are missing from this scrape).'),
    workerStart: r.gauge('tsshim_node_worker_start_time_seconds', 'Start time of the current worker (its counters start from zero then).'),
    restarts: r.counter('tsshim_node_worker_restarts_total', 'Workers that exited and were replaced (crash, kill, reload).'),
    replayed: r.counter('tsshim_node_requests_replayed_total', 'Requests in flight when a worker died that went to the next worker (idempotent ones).'),
    unavailable: r.counter('tsshim_node_requests_unavailable_total', 'Requests in flight when a worker died, answered Unavailable by the supervisor.'),
    connections: r.gauge('tsshim_node_connections', 'containerd connections the supervisor holds.'),
    exitsWaiting: r.gauge('tsshim_node_exits_unacknowledged', 'Container exits reaped and not yet acknowledged by a worker.'),
    rebinds: r.gauge('tsshim_node_socket_rebinds', 'Times a namespace socket file was removed by another program and bound again.', ['namespace']),
    scrapeFailures: r.counter('tsshim_node_worker_scrape_failures_total', 'Scrapes the worker did not answer in time (or no worker ran).'),
    start: r.gauge('tsshim_node_supervisor_start_time_seconds', 'Start time of the supervisor.'),
  };
}

/** Exits kept for a worker that has not acknowledged them, at most (oldest dropped, logged). */
export const MAX_UNACKED_EXITS = 65_536;
/** Interrupted Creates kept for the next worker to clean up after, at most. */
const MAX_INTERRUPTED = 1024;
const RESTART_DELAYS_MS = [0, 100, 250, 500, 1000, 2000, 5000];
/**
 * A worker that served (adopted its tasks and got the connections) for longer than this was no
 * crash loop: those die while booting or adopting, or at the first request replayed to them.
 * Short on purpose: while no worker serves, containerd's requests with short deadlines fail (its
 * task Get asks State with 2 s and then reports pid 0, so CRI builds a container's namespaces
 * from /proc/0/ns and the start fails), so a worker killed now and then restarts at once.
 */
export const YOUNG_MS = 2_000;

/**
 * When the next worker starts: at once after a worker that served a while (servedMs: since it
 * was ready; undefined: never ready) or was replaced on purpose (`tsshim node reload`); 0, 100 ms
 * … 5 s while workers keep dying young, counted in a row (not over the daemon's life).
 */
export function nextRestart(youngInARow: number, servedMs: number | undefined, replaced: boolean): { delayMs: number; youngInARow: number } {
  if (replaced || (servedMs !== undefined && servedMs > YOUNG_MS)) return { delayMs: 0, youngInARow: 0 };
  const n = youngInARow + 1;
  return { delayMs: RESTART_DELAYS_MS[Math.min(n - 1, RESTART_DELAYS_MS.length - 1)]!, youngInARow: n };
}

export interface SupervisorDeps {
  log: Logger;
  version: string;
  containerdAddress: string;
  /** containerd's ttrpc address (TTRPC_ADDRESS), where events go; absent: events are dropped with an error */
  ttrpcAddress?: string;
  paths: NodePaths;
  /** throws unless the peer may talk to us (SO_PEERCRED) */
  authorize: (socket: net.Socket) => void;
  /** argv (after the node executable) that runs a worker; read at each (re)start, so a rebuilt tsshim is what starts */
  workerArgv: () => string[];
  /** exits of foreign children (the reaper's 'exit' events) */
  exits: { on(event: 'exit', fn: (e: ExitEvent) => void): unknown };
  socketLock?: string;
}

interface Space {
  namespace: string;
  sock: string;
  address: string;
  server: net.Server;
  own?: SocketIdentity;
  rebinds: number;
  healing?: Promise<string>;
}

interface TaskRecord {
  namespace: string;
  id: string;
  bundle: string;
  handler: string;
  record: unknown;
}

/** An exit the worker has not settled: not acknowledged, or requests that may hold it still unanswered. */
interface Unacked {
  e: ExitEvent;
  acked: boolean;
  /** "<conn>:<stream>" of the requests in flight when it went to the worker */
  holders: Set<string>;
}

/** The worker's answer to `status`. */
interface StatusReply {
  tasks: NodeStatus['tasks'];
  eventLoop: EventLoopDelay | null;
}

interface Worker {
  child: ChildProcess;
  channel: Channel;
  ready: boolean;
  startedAt: number;
  readyAt?: number;
  /** backend commands it runs now (runc create, exec, start...): ended when it dies */
  commands: Set<number>;
  /** killed by reload(): the next one starts at once */
  replaced?: boolean;
}

export class Supervisor {
  private readonly spaces = new Map<string, Promise<Space>>();
  private readonly ready: Space[] = [];
  private readonly control: Server;
  private controlOwn?: SocketIdentity;
  private readonly conns = new Map<number, ProxyConn>();
  private nextConn = 1;
  private worker?: Worker;
  private restarts = 0;
  private youngInARow = 0;
  private restartTimer?: NodeJS.Timeout;
  private readonly fds = new Map<string, number>();
  private readonly records = new Map<string, TaskRecord>();
  private readonly unacked = new Map<number, Unacked>();
  private readonly forwarders = new Map<string, EventForwarder>();
  /** Creates a dead worker left unanswered (namespace, raw request): the next worker cleans up after them. */
  private interrupted: Array<{ ns: string; payload: string }> = [];
  /** The dead worker's backend commands being ended: a new worker cleans up only after. */
  private ending: Promise<void> = Promise.resolve();
  private exitSeq = 0;
  private readonly startedAt = new Date();
  private closing = false;
  private watcher?: FSWatcher;
  private statusWaiters = new Map<number, (reply: StatusReply | undefined) => void>();
  private statusSeq = 0;
  private readonly metricWaiters = new Map<number, (text: string | undefined) => void>();
  private readonly metrics = supervisorMetrics();
  private readonly eventLoop = new EventLoopWatch();

  constructor(private readonly deps: SupervisorDeps) {
    this.control = new Server({ authorize: deps.authorize, onError: (err, where) => deps.log.warn({ err: String(err), where }, 'control: ttrpc error') });
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const dec = (b: Uint8Array): Record<string, unknown> => (b.length === 0 ? {} : (JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>));
    this.control.register(CONTROL_SERVICE, {
      Serve: async (payload) => {
        const { namespace } = dec(payload);
        if (typeof namespace !== 'string' || !isIdentifier(namespace)) throw invalidArgument(`Serve: namespace ${JSON.stringify(namespace)} is not a containerd identifier`);
        return enc({ address: await this.serveNamespace(namespace) });
      },
      Status: async (payload) => enc(await this.status({ resetEventLoop: dec(payload).resetEventLoop === true })),
      Reload: async () => enc(await this.reload()),
    });
    deps.exits.on('exit', (e) => this.onExit(e));
    this.metrics.start.set(undefined, Math.round(this.startedAt.getTime() / 1000));
    this.metrics.registry.onCollect(() => {
      this.metrics.up.set(undefined, this.worker?.ready ? 1 : 0);
      this.metrics.connections.set(undefined, this.conns.size);
      this.metrics.exitsWaiting.set(undefined, this.unacked.size);
      for (const sp of this.ready) this.metrics.rebinds.set({ namespace: sp.namespace }, sp.rebinds);
    });
  }

  /**
   * The node daemon's exposition: the worker's metrics (tasks, RPCs, backend commands, spans),
   * then the supervisor's event delivery (it forwards the workers' events) and its own. With no worker ready (restarting) or none answering in
   * time, the supervisor's alone, tsshim_node_worker_up 0 telling why.
   */
  async metricsText(): Promise<string> {
    const w = this.worker;
    let worker: string | undefined;
    if (w?.ready) {
      const q = ++this.statusSeq;
      worker = await new Promise<string | undefined>((resolve) => {
        this.metricWaiters.set(q, resolve);
        w.channel.send({ t: 'metrics', q });
        setTimeout(() => {
          if (this.metricWaiters.delete(q)) resolve(undefined);
        }, WORKER_METRICS_TIMEOUT_MS).unref();
      });
    }
    if (worker === undefined) this.metrics.scrapeFailures.inc();
    return (worker ?? '') + (await eventRegistry.exposition()) + (await this.metrics.registry.exposition());
  }

  // --- sockets ---

  async listenControl(fd: number): Promise<void> {
    await this.control.listen({ fd });
    this.controlOwn = await socketIdentity(this.deps.paths.control);
  }

  serveNamespace(namespace: string): Promise<string> {
    if (this.closing) return Promise.reject(failedPrecondition('tsshim node daemon is shutting down'));
    let space = this.spaces.get(namespace);
    if (!space) {
      space = this.openSpace(namespace);
      this.spaces.set(namespace, space);
      space.catch(() => this.spaces.delete(namespace));
      return space.then((s) => s.address);
    }
    return space.then((s) => this.ensureSocketFile(s));
  }

  private async openSpace(namespace: string): Promise<Space> {
    const sock = namespaceSocket(this.deps.containerdAddress, namespace);
    const fd = await this.bindFresh(sock, undefined);
    if (fd === undefined) throw failedPrecondition(`${sock} is served already`);
    const server = await this.listenOn(fd, namespace);
    const space: Space = { namespace, sock, address: toAddress(sock), server, own: await socketIdentity(sock), rebinds: 0 };
    this.ready.push(space);
    this.watchSocketDir(sock);
    this.worker?.channel.send({ t: 'namespace', ns: namespace });
    this.deps.log.info({ namespace, socket: sock }, 'node daemon: serving namespace');
    return space;
  }

  /** Accept containerd's connections for `namespace` on a bound listening fd (closed on failure). */
  private async listenOn(fd: number, namespace: string): Promise<net.Server> {
    const server = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(namespace, socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      closeFd(fd);
      throw err;
    });
    server.on('error', (err) => this.deps.log.warn({ err: String(err), namespace }, 'node daemon: listen error'));
    return server;
  }

  /** Under the socket lock: a fresh listening socket at sock, unless `own` (ours) still serves there. */
  private bindFresh(sock: string, own: SocketIdentity | undefined): Promise<number | undefined> {
    return withSocketLock<number | undefined>(async () => {
      if (await isServing(sock)) {
        const now = await socketIdentity(sock);
        if (own && now && now.dev === own.dev && now.ino === own.ino) return undefined;
        throw failedPrecondition(`another process serves ${sock}: is a second tsshim node daemon running for ${this.deps.containerdAddress}?`);
      }
      await fsp.rm(sock, { force: true });
      return bindSocket(sock);
    }, { lockFile: this.deps.socketLock });
  }

  /**
   * The namespace's socket file must still be the one we listen on: programs that run in our bundles
   * (runc-v2 and Kata's shim as delegates) remove the socket named in a bundle's `address` file
   * when they exit, and containerd dials that file's address when it restarts. Bind it again.
   */
  private ensureSocketFile(s: Space): Promise<string> {
    const run = (s.healing ?? Promise.resolve('')).catch(() => '').then(() => this.healSocketFile(s));
    s.healing = run;
    return run;
  }

  private async healSocketFile(s: Space): Promise<string> {
    const now = await socketIdentity(s.sock);
    if (now && s.own && now.dev === s.own.dev && now.ino === s.own.ino) return s.address;
    const fd = await this.bindFresh(s.sock, s.own);
    if (fd === undefined) return s.address;
    const server = await this.listenOn(fd, s.namespace);
    const old = s.server;
    s.server = server;
    s.own = await socketIdentity(s.sock);
    s.rebinds += 1;
    old.close();
    this.deps.log.warn({ namespace: s.namespace, socket: s.sock, rebinds: s.rebinds }, 'node daemon: the namespace socket file was removed by someone else; bound it again');
    return s.address;
  }

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

  private accept(namespace: string, socket: net.Socket): void {
    try {
      this.deps.authorize(socket);
    } catch (err) {
      this.deps.log.warn({ err: String(err), namespace }, 'node daemon: connection refused');
      socket.destroy();
      return;
    }
    const conn = new ProxyConn(this.nextConn++, namespace, socket, (c) => this.conns.delete(c.id), (key) => this.settled(key));
    this.conns.set(conn.id, conn);
    if (this.worker?.ready) this.giveConn(this.worker, conn);
    socket.resume();
  }

  private giveConn(w: Worker, conn: ProxyConn): void {
    const fd = conn.attachWorker();
    const name = `conn:${conn.id}`;
    try {
      if (w.channel.sendFd(name, fd)) w.channel.send({ t: 'conn', n: conn.id, ns: conn.namespace });
    } finally {
      closeFd(fd);
    }
  }

  // --- the worker ---

  startWorker(): void {
    if (this.closing || this.worker) return;
    const [msgMine, msgTheirs] = socketPair('stream');
    const [fdMine, fdTheirs] = socketPair('seqpacket');
    let child: ChildProcess;
    try {
      const argv = this.deps.workerArgv();
      child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'inherit', msgTheirs, fdTheirs], cwd: this.deps.paths.dir, env: process.env });
    } finally {
      closeFd(msgTheirs);
      closeFd(fdTheirs);
    }
    const channel = new Channel(msgMine, fdMine);
    const w: Worker = { child, channel, ready: false, startedAt: Date.now(), commands: new Set() };
    this.worker = w;
    channel.on('message', (m) => this.onMessage(w, m));
    child.once('error', (err) => {
      this.deps.log.error({ err: String(err) }, 'node daemon: cannot start a worker');
      this.workerExited(w, null, null); // a spawn that failed emits no 'exit'
    });
    child.once('exit', (code, signal) => this.workerExited(w, code, signal));
    this.deps.log.info({ workerPid: child.pid, restarts: this.restarts }, 'node daemon: worker started');
  }

  private workerExited(w: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    w.channel.close();
    for (const [, resolve] of this.statusWaiters) resolve(undefined);
    this.statusWaiters.clear();
    for (const [, resolve] of this.metricWaiters) resolve(undefined);
    this.metricWaiters.clear();
    for (const c of this.conns.values()) {
      for (const payload of c.pendingCreates()) {
        if (this.interrupted.length < MAX_INTERRUPTED) this.interrupted.push({ ns: c.namespace, payload: Buffer.from(payload).toString('base64') });
      }
    }
    this.ending = this.endCommands(w).then(() => {
      for (const c of this.conns.values()) {
        this.metrics.unavailable.inc(undefined, c.inFlightUnreplayable);
        this.metrics.replayed.inc(undefined, c.inFlight - c.inFlightUnreplayable);
        c.workerDied();
      }
    });
    if (this.closing) return;
    this.restarts += 1;
    this.metrics.restarts.inc();
    const next = nextRestart(this.youngInARow, w.readyAt === undefined ? undefined : Date.now() - w.readyAt, w.replaced === true);
    this.youngInARow = next.youngInARow;
    const delay = next.delayMs;
    this.deps.log.error({ workerPid: w.child.pid, code, signal, restarts: this.restarts, restartInMs: delay }, 'node daemon: worker exited; starting another (containers, connections and stdio are kept here)');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.startWorker();
    }, delay);
  }

  /**
   * The backend commands a dead worker left running (now our children) are killed and waited for,
   * before their requests are answered: containerd's cleanup (`delete`) of an interrupted Create
   * must not race a `runc create` that goes on without the worker.
   */
  private async endCommands(w: Worker): Promise<void> {
    const pids = [...w.commands];
    w.commands.clear();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    const deadline = Date.now() + 5000;
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (pids.length) this.deps.log.warn({ commands: pids }, 'node daemon: ended the backend commands the dead worker left running');
  }

  private onMessage(w: Worker, m: Message): void {
    try {
      switch (m.t) {
        case 'cmd':
          if (m.running) w.commands.add(Number(m.pid));
          else w.commands.delete(Number(m.pid));
          break;
        case 'hello':
          this.handOver(w);
          break;
        case 'adopted':
          this.workerReady(w, m);
          break;
        case 'keep': {
          const key = String(m.key);
          const fd = w.channel.takeFd(key);
          const old = this.fds.get(key);
          if (old !== undefined) closeFd(old);
          this.fds.set(key, fd);
          break;
        }
        case 'drop': {
          const prefix = String(m.prefix);
          for (const [k, fd] of [...this.fds]) {
            if (!k.startsWith(prefix)) continue;
            closeFd(fd);
            this.fds.delete(k);
          }
          break;
        }
        case 'record': {
          const key = `${String(m.ns)}/${String(m.id)}`;
          if (m.record === undefined || m.record === null) this.records.delete(key);
          else {
            // a record saved without them (no task of that worker owns it yet) keeps the known bundle and handler
            const prev = this.records.get(key);
            this.records.set(key, { namespace: String(m.ns), id: String(m.id), bundle: String(m.bundle || prev?.bundle || ''), handler: String(m.handler || prev?.handler || ''), record: m.record });
          }
          break;
        }
        case 'ack': {
          const seq = Number(m.seq);
          const u = this.unacked.get(seq);
          if (u) {
            u.acked = true;
            if (u.holders.size === 0) this.unacked.delete(seq);
          }
          break;
        }
        case 'synced':
          for (const seq of (m.seqs as number[]) ?? []) {
            const u = this.unacked.get(Number(seq));
            if (u?.acked && u.holders.size === 0) this.unacked.delete(Number(seq));
          }
          break;
        case 'event':
          this.forwarder(String(m.ns)).queue(String(m.topic), String(m.task), Buffer.from(String(m.payload), 'base64'));
          break;
        case 'metrics-reply': {
          const resolve = this.metricWaiters.get(Number(m.q));
          this.metricWaiters.delete(Number(m.q));
          resolve?.(typeof m.text === 'string' ? m.text : undefined);
          break;
        }
        case 'status-reply': {
          const resolve = this.statusWaiters.get(Number(m.q));
          this.statusWaiters.delete(Number(m.q));
          resolve?.({ tasks: m.tasks as NodeStatus['tasks'], eventLoop: (m.eventLoop as EventLoopDelay | undefined) ?? null });
          break;
        }
        default:
          break;
      }
    } catch (err) {
      this.deps.log.error({ err: String(err), message: m.t }, 'node daemon: bad message from the worker');
    }
  }

  /** The namespace's event forwarder to containerd (one connection per namespace, as each pod shim has). */
  private forwarder(ns: string): EventForwarder {
    let f = this.forwarders.get(ns);
    if (!f) {
      f = new EventForwarder(this.deps.ttrpcAddress ?? '', ns, this.deps.log.child({ namespace: ns, component: 'events' }));
      this.forwarders.set(ns, f);
    }
    return f;
  }

  /**
   * A new worker said hello: namespaces, then every task to adopt (fds first), the Creates the last
   * worker left unanswered (it runs the backend's cleanup for them: a killed `runc create` leaves
   * state and a cgroup that containerd's Delete, answered NotFound, never reaches), then
   * `adopt-done`; all once the dead worker's commands are gone.
   */
  private handOver(w: Worker): void {
    void this.ending.then(() => {
      if (this.worker === w) this.sendHandOver(w);
    });
  }

  private sendHandOver(w: Worker): void {
    for (const s of this.ready) w.channel.send({ t: 'namespace', ns: s.namespace });
    for (const r of this.records.values()) {
      const prefix = `${r.namespace}/${r.id}/`;
      const keys: string[] = [];
      for (const [k, fd] of this.fds) {
        if (!k.startsWith(prefix)) continue;
        if (w.channel.sendFd(k, fd)) keys.push(k);
      }
      w.channel.send({ t: 'adopt', ns: r.namespace, id: r.id, bundle: r.bundle, handler: r.handler, record: r.record as Message, keys });
    }
    for (const c of this.interrupted) w.channel.send({ t: 'interrupted', ns: c.ns, method: 'Create', payload: c.payload });
    w.channel.send({ t: 'adopt-done' });
  }

  /** The worker adopted what it could: give it every connection, then the exits it has not seen. */
  private workerReady(w: Worker, m: Message): void {
    if (this.worker !== w) return;
    w.ready = true;
    this.interrupted = []; // cleaned up (or logged) by this worker
    this.metrics.workerStart.set(undefined, Math.round(w.startedAt / 1000));
    w.readyAt = Date.now();
    const failed = Array.isArray(m.failed) ? (m.failed as string[]) : [];
    if (failed.length) this.deps.log.error({ failed }, 'node daemon: the worker could not adopt these tasks');
    // Exits first: a request on a connection must find the exits of the gap already delivered
    // (the worker records an exit it never got as 255 only when a request finds the pid gone).
    for (const [seq, u] of this.unacked) this.sendExit(w, seq, u);
    for (const conn of this.conns.values()) this.giveConn(w, conn);
    this.deps.log.info({ workerPid: w.child.pid, tasks: this.records.size, connections: this.conns.size, exitsReplayed: this.unacked.size }, 'node daemon: worker ready');
  }

  private onExit(e: ExitEvent): void {
    if (this.worker && e.pid === this.worker.child.pid) return; // libuv reports it
    const seq = ++this.exitSeq;
    const u: Unacked = { e, acked: false, holders: new Set() };
    this.unacked.set(seq, u);
    if (this.unacked.size > MAX_UNACKED_EXITS) {
      const [oldest] = this.unacked.keys();
      const lost = this.unacked.get(oldest!)!;
      this.unacked.delete(oldest!);
      this.deps.log.error({ pid: lost.e.pid, status: lost.e.status }, `node daemon: more than ${MAX_UNACKED_EXITS} exits wait for a worker; the oldest is dropped`);
    }
    const w = this.worker;
    if (w?.ready) this.sendExit(w, seq, u);
  }

  /** An exit goes to the worker; the Create/Start/Exec requests in flight now may hold it until they are answered. */
  private sendExit(w: Worker, seq: number, u: Unacked): void {
    u.acked = false;
    u.holders.clear();
    for (const c of this.conns.values()) for (const k of c.unreplayableKeys()) u.holders.add(k);
    w.channel.send({ t: 'exit', seq, pid: u.e.pid, status: u.e.status, exitedAt: u.e.exitedAt.toISOString() });
  }

  /**
   * A request was answered: exits it might have held are settled once acknowledged, and once
   * everything the worker sent on the channel before the answer is here (the answer came on the
   * connection's socket, the exit's event comes on the channel): a `sync` round trip says so.
   */
  private settled(key: string): void {
    const w = this.worker;
    if (!w?.ready) return; // answered Unavailable for a dead worker: its exits go to the next one
    const done: number[] = [];
    for (const [seq, u] of this.unacked) {
      if (!u.holders.delete(key)) continue;
      if (u.acked && u.holders.size === 0) done.push(seq);
    }
    if (done.length) w.channel.send({ t: 'sync', seqs: done });
  }

  /** Upgrade: the worker is replaced (a rebuilt tsshim is what starts) once no request that cannot be replayed is in flight. */
  async reload(): Promise<{ oldWorkerPid: number | null; restarts: number }> {
    const w = this.worker;
    if (!w) return { oldWorkerPid: null, restarts: this.restarts };
    const deadline = Date.now() + 10_000;
    while ([...this.conns.values()].some((c) => c.inFlightUnreplayable > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    w.replaced = true;
    w.child.kill('SIGKILL');
    return { oldWorkerPid: w.child.pid ?? null, restarts: this.restarts + 1 };
  }

  /** resetEventLoop: the event-loop figures cover the window up to now; a new one starts (worker too). */
  async status(opts: { resetEventLoop?: boolean } = {}): Promise<NodeStatus> {
    const w = this.worker;
    let reply: StatusReply | undefined;
    if (w?.ready) {
      const q = ++this.statusSeq;
      reply = await new Promise<StatusReply | undefined>((resolve) => {
        this.statusWaiters.set(q, resolve);
        w.channel.send({ t: 'status', q, resetEventLoop: opts.resetEventLoop === true });
        setTimeout(() => {
          if (this.statusWaiters.delete(q)) resolve(undefined);
        }, 3000).unref();
      });
    }
    const supervisorLoop = this.eventLoop.snapshot(opts.resetEventLoop === true);
    const tasks = reply?.tasks ?? [...this.records.values()].map((r) => ({ namespace: r.namespace, id: r.id, handler: r.handler }));
    const namespaces: NodeStatus['namespaces'] = {};
    for (const s of this.ready) namespaces[s.namespace] = { address: s.address, tasks: 0, byHandler: {}, socketRebinds: s.rebinds };
    for (const t of tasks) {
      const n = (namespaces[t.namespace] ??= { address: '', tasks: 0, byHandler: {}, socketRebinds: 0 });
      n.tasks += 1;
      n.byHandler[t.handler] = (n.byHandler[t.handler] ?? 0) + 1;
    }
    return {
      mode: 'node',
      supervisorPid: process.pid,
      workerPid: w?.child.pid ?? null,
      workerReady: w?.ready ?? false,
      pid: process.pid,
      version: this.deps.version,
      containerdAddress: this.deps.containerdAddress,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      restarts: this.restarts,
      namespaces,
      tasks,
      eventLoop: { supervisor: supervisorLoop, worker: reply?.eventLoop ?? null },
    };
  }

  /** SIGTERM: stop serving; sockets unlinked (only our own files). Containers keep running. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.eventLoop.stop();
    this.watcher?.close();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const lock = { lockFile: this.deps.socketLock };
    await unlinkOwnSocket(this.deps.paths.control, this.controlOwn, lock);
    for (const s of this.ready) await unlinkOwnSocket(s.sock, s.own, lock);
    await fsp.rm(this.deps.paths.pidFile, { force: true });
    this.worker?.child.kill('SIGKILL');
    for (const c of [...this.conns.values()]) c.close();
    await Promise.allSettled([this.control.close(), ...this.ready.map((s) => new Promise<void>((r) => s.server.close(() => r())))]);
    for (const fd of this.fds.values()) closeFd(fd);
    this.fds.clear();
    // Events already handed over still go out (bounded, as a pod shim's Shutdown does).
    await Promise.allSettled([...this.forwarders.values()].map((f) => f.close()));
  }
}
