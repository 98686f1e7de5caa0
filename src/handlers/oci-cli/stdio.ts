/**
 * A process's stdio as containerd's runc shim wires it: OS pipes towards the
 * runtime (never Node's socketpairs: `echo > /dev/stdout` fails on those), copy
 * loops towards the client's FIFOs, `file://` appends, `binary://` loggers, and
 * the pty master received over the console socket for terminals.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import { promisify } from 'node:util';
import tty from 'node:tty';
import path from 'node:path';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { dupFd as dup, pipe, setWinsize } from '../../sys/libc.js';
import { ConsoleSocket } from '../../sys/console-socket.js';
import { invalidArgument } from '../../shim-api/errors.js';

export interface StdioConfig {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

export interface StdioContext {
  containerId: string;
  namespace: string;
  ioUid?: number;
  ioGid?: number;
  log: Logger;
  /** spawn a tracked long-running child (binary:// loggers) */
  spawn: (file: string, args: string[], opts: import('node:child_process').SpawnOptions) => ChildProcess;
}

/**
 * Node mode (ADR 0018, custody.ts): the fds a running process needs, handed to the custody as they
 * are opened (under `<id>/<exec>/<role>`) and dropped once their copy is over, so a restarted
 * worker can take them back (`ProcessIO.adopt`) and no kept duplicate holds an EOF back.
 * Roles: stdin-fifo (client FIFO reader), stdin-holder (our writer on it, until CloseIO), stdin-pipe
 * (shim's write end towards the container), stdout-/stderr-pipe (shim's read ends), stdout-/stderr-sink
 * (client FIFO or file:// target), console-master (pty master; its output goes to stdout-sink).
 */
export interface FdKeeper {
  keep(role: string, fd: number): void;
  drop(rolePrefix: string): void;
}

type ChildFd = number | 'ignore';

const { O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK, O_APPEND, O_CREAT } = fs.constants;
const LOGGER_KILL_AFTER_MS = 12_000;

// Every open here goes through libuv's threadpool (never the event loop) and is non-blocking
// (O_NONBLOCK), so it cannot hold a threadpool thread either: a FIFO without a reader answers at once.
// (libuv adds O_CLOEXEC to every open.)
const openFd = promisify(fs.open) as (file: string, flags: number, mode?: number) => Promise<number>;
const fchown = promisify(fs.fchown);
const fstat = promisify(fs.fstat);

export class ProcessIO {
  /** The runtime's stdio (the container's ends); closed in the shim once the process exists. */
  readonly childFds: [ChildFd, ChildFd, ChildFd] = ['ignore', 'ignore', 'ignore'];
  consoleSocket?: ConsoleSocket;
  private readonly ownFds: number[] = [];
  private readonly childOwned: number[] = [];
  private readonly streams: Array<Readable | Writable | net.Socket> = [];
  /** output copies: Delete waits (bounded) for them to drain */
  private readonly copies: Promise<unknown>[] = [];
  private stdinHolder?: number;
  /** terminal: the stdout sink and stdin source, opened before the console arrives (attachConsole is synchronous) */
  private consoleSink?: Writable;
  private consoleStdin?: net.Socket;
  private master?: number;
  private logger?: ChildProcess;
  private closed = false;

  private constructor(
    readonly config: StdioConfig,
    private readonly ctx: StdioContext,
    /** node mode only; undefined once detached (a worker going away drops nothing) */
    private keeper?: FdKeeper,
  ) {}

  static async open(config: StdioConfig, ctx: StdioContext, keeper?: FdKeeper): Promise<ProcessIO> {
    const io = new ProcessIO(config, ctx, keeper);
    try {
      if (config.terminal) {
        io.consoleSocket = await ConsoleSocket.create();
        if (config.stdout) io.consoleSink = await io.openSink(config.stdout, 'stdout');
        if (config.stdin) io.consoleStdin = io.track(readSocket(await io.openFifoReader(config.stdin)));
      } else {
        await io.openPipes();
      }
      return io;
    } catch (err) {
      await io.close(0);
      throw err;
    }
  }

  /**
   * Node mode: the stdio of a process a previous worker started, rebuilt from the fds its custody
   * kept (roles as above; this process's own duplicates). Copies restart where the pipes stand:
   * output written meanwhile waited in them. A binary:// logger needs nothing: it is no child of
   * the worker's stdio, it keeps reading its pipes on its own (and is no longer signalled at close).
   */
  static async adopt(config: StdioConfig, ctx: StdioContext, keeper: FdKeeper, fds: ReadonlyMap<string, number>): Promise<ProcessIO> {
    const io = new ProcessIO(config, ctx, keeper);
    const left = new Map(fds);
    const take = (...roles: string[]): number[] | undefined => {
      if (!roles.every((r) => left.has(r))) return undefined;
      return roles.map((r) => {
        const fd = left.get(r)!;
        left.delete(r);
        return fd;
      });
    };
    try {
      io.stdinHolder = take('stdin-holder')?.[0];
      if (config.terminal) {
        const sink = take('stdout-sink');
        if (sink) io.consoleSink = await io.sinkOf(sink[0]!);
        const src = take('stdin-fifo');
        if (src) io.consoleStdin = io.track(readSocket(src[0]!));
        const master = take('console-master');
        if (master) io.attachConsole(master[0]!, false);
      } else {
        const stdin = take('stdin-fifo', 'stdin-pipe');
        if (stdin) io.copyStdin(stdin[0]!, stdin[1]!);
        for (const name of ['stdout', 'stderr'] as const) {
          const out = take(`${name}-pipe`, `${name}-sink`);
          if (out) io.copyOut(name, out[0]!, await io.sinkOf(out[1]!));
        }
      }
    } catch (err) {
      await io.close(0);
      throw err;
    } finally {
      // half a pair (its copy was over), or a role this version does not know: nothing will use it
      for (const [role, fd] of left) {
        safeClose(fd);
        io.drop(role);
      }
    }
    return io;
  }

  /** Close an fd nobody will use (adoption leftovers). */
  static release(fd: number): void {
    safeClose(fd);
  }

  private keep(role: string, fd: number): void {
    this.keeper?.keep(role, fd);
  }

  private drop(rolePrefix: string): void {
    this.keeper?.drop(rolePrefix);
  }

  get hasStdin(): boolean {
    return this.config.stdin !== '';
  }

  private track<T extends Readable | Writable | net.Socket>(s: T): T {
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EIO' && err.code !== 'EPIPE' && err.code !== 'ECONNRESET') {
        this.ctx.log.warn({ err: err.message, container: this.ctx.containerId }, 'stdio stream error');
      }
    });
    this.streams.push(s);
    return s;
  }

  private newPipe(): { read: number; write: number } {
    const [read, write] = pipe();
    return { read, write };
  }

  private async chown(fd: number): Promise<void> {
    if (this.ctx.ioUid !== undefined || this.ctx.ioGid !== undefined) {
      await fchown(fd, this.ctx.ioUid ?? 0, this.ctx.ioGid ?? 0);
    }
  }

  private async openPipes(): Promise<void> {
    const { stdin, stdout, stderr } = this.config;
    if (stdin) {
      const p = this.newPipe();
      this.childOwned.push(p.read);
      this.childFds[0] = p.read;
      let source: number;
      try {
        await this.chown(p.read);
        source = await this.openFifoReader(stdin);
      } catch (e) {
        safeClose(p.write);
        throw e;
      }
      this.keep('stdin-pipe', p.write);
      this.copyStdin(source, p.write);
    }
    const binaryOut = parseUri(stdout);
    if (binaryOut?.scheme === 'binary') {
      await this.startLogger(binaryOut);
      return;
    }
    const sameTarget = stdout !== '' && stdout === stderr;
    for (const [i, target] of [[1, stdout], [2, stderr]] as const) {
      if (!target) continue;
      if (i === 2 && sameTarget) {
        this.childFds[2] = this.childFds[1];
        continue;
      }
      const name = i === 1 ? 'stdout' : 'stderr';
      const sink = await this.openSink(target, name);
      const p = this.newPipe();
      this.childOwned.push(p.write);
      this.childFds[i] = p.write;
      this.keep(`${name}-pipe`, p.read);
      this.copyOut(name, p.read, sink);
      await this.chown(p.write);
    }
  }

  /** stdin: nobody waits for it (ctr may never close it); its end is the container's EOF, so nothing kept may outlive it. */
  private copyStdin(fifoFd: number, pipeFd: number): void {
    const sink = this.track(new net.Socket({ fd: pipeFd, readable: false, writable: true }));
    void copy(this.track(readSocket(fifoFd)), sink).then(() => this.drop('stdin-'));
  }

  /** An output copy; once over, the kept duplicates go too (the client's FIFO reader waits for its EOF). */
  private copyOut(name: 'stdout' | 'stderr', pipeFd: number, sink: Writable): void {
    const source = this.track(readSocket(pipeFd));
    this.copies.push(copy(source, sink).then(() => this.drop(`${name}-`)));
  }

  /**
   * An output target: a client FIFO (`fifo://` or a plain path) or a `file://` append target.
   * As runc-v2, the runtime gets a pipe and the shim copies into the target.
   */
  private async openSink(target: string, name: 'stdout' | 'stderr'): Promise<Writable> {
    const uri = parseUri(target);
    if (uri && uri.scheme !== 'fifo' && uri.scheme !== 'file') throw invalidArgument(`unsupported stdio URI scheme "${uri.scheme}" in ${target}`);
    const fd = uri?.scheme === 'file' ? await this.openFileSink(uri.path) : await openFd(uri ? uri.path : target, O_RDWR | O_NONBLOCK);
    // Client output FIFO, opened read-write: never blocks, never EPIPE when the client goes away.
    const sink = await this.sinkOf(fd);
    this.keep(`${name}-sink`, fd);
    return sink;
  }

  /** A stream writing to an opened sink: FIFOs and sockets through a libuv pipe handle, files appended. */
  private async sinkOf(fd: number): Promise<Writable> {
    let st: fs.Stats;
    try {
      st = await fstat(fd);
    } catch (e) {
      safeClose(fd);
      throw e;
    }
    if (st.isFIFO() || st.isSocket()) return this.track(new net.Socket({ fd, readable: false, writable: true }));
    return this.track(fs.createWriteStream('', { fd, flags: 'a' }));
  }

  /**
   * `file://`: created 0644 and appended to (handing the runtime the file itself let IoUid/IoGid
   * and runc's re-owning of the container's stdio chown the host file). Opened O_NONBLOCK: if the
   * path is a FIFO without a reader, runc-v2 blocks in open(2) (and its Create holds the shim's
   * lock, freezing every task it serves); here it is opened read-write instead, so output waits
   * in the FIFO for a reader (ADR 0013). FIFOs (and sockets) are written through a libuv pipe
   * handle, never with blocking writes on the threadpool.
   */
  private async openFileSink(filePath: string): Promise<number> {
    await fsp.mkdir(path.dirname(filePath), { recursive: true });
    try {
      return await openFd(filePath, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK, 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
      return openFd(filePath, O_RDWR | O_NONBLOCK); // a FIFO nobody reads yet
    }
  }

  /** Client stdin FIFO: non-blocking reader (returned) plus a write handle we hold until CloseIO (runc-v2's stdinCloser). */
  private async openFifoReader(fifoPath: string): Promise<number> {
    const fd = await openFd(fifoPath, O_RDONLY | O_NONBLOCK);
    // The write handle first, before the loop can read: with no writer at all the reader sees EOF
    // (and a stream would close it) before the client has opened its end.
    try {
      this.stdinHolder = await openFd(fifoPath, O_WRONLY | O_NONBLOCK);
    } catch (e) {
      safeClose(fd);
      throw e;
    }
    this.keep('stdin-fifo', fd);
    this.keep('stdin-holder', this.stdinHolder);
    return fd;
  }

  private async startLogger(uri: ParsedUri): Promise<void> {
    const out = this.newPipe();
    const err = this.newPipe();
    const ready = this.newPipe();
    const args = [...uri.query.entries()].flatMap(([k, v]) => (v ? [k, v] : [k]));
    const child = this.ctx.spawn(uri.path, args, {
      stdio: ['ignore', 'ignore', 'ignore', out.read, err.read, ready.write],
      env: { CONTAINER_ID: this.ctx.containerId, CONTAINER_NAMESPACE: this.ctx.namespace },
      detached: false,
    });
    this.logger = child;
    for (const fd of [out.read, err.read, ready.write]) fs.closeSync(fd);
    const readiness = this.track(new net.Socket({ fd: ready.read, readable: true, writable: false }));
    const spawnFailed = once(child, 'error').then(([e]) => {
      throw invalidArgument(`cannot start logging binary ${uri.path}: ${(e as Error).message}`);
    });
    // ready when the logger writes a byte or closes fd 5 (or exits)
    await Promise.race([
      new Promise<void>((resolve) => {
        readiness.once('data', () => resolve());
        readiness.once('end', () => resolve());
        readiness.once('close', () => resolve());
      }),
      spawnFailed,
    ]);
    readiness.destroy();
    this.childFds[1] = out.write;
    this.childFds[2] = err.write;
    this.childOwned.push(out.write, err.write);
  }

  /** Terminal: wire the pty master received from the runtime (`kept`: already in custody). */
  attachConsole(master: number, keep = true): void {
    this.master = master;
    if (keep) this.keep('console-master', master);
    const reader = this.track(new tty.ReadStream(master));
    if (this.consoleSink) {
      this.copies.push(copy(reader, this.consoleSink).then(() => this.drop('stdout-')));
    } else {
      reader.resume();
    }
    if (this.consoleStdin) {
      const writer = this.track(new tty.WriteStream(dup(master)));
      this.consoleStdin.pipe(writer, { end: false });
    }
  }

  /** After the runtime returned: the container holds its ends, the shim must not. */
  closeChildEnds(): void {
    for (const fd of this.childOwned.splice(0)) safeClose(fd);
  }

  /** CloseIO(stdin): drop the write handle we held on the client's stdin FIFO. */
  closeStdin(): void {
    if (this.stdinHolder !== undefined) {
      safeClose(this.stdinHolder);
      this.stdinHolder = undefined;
      this.drop('stdin-holder');
    }
  }

  resize(width: number, height: number): void {
    if (this.master !== undefined) setWinsize(this.master, height, width);
  }

  /**
   * Node mode, this worker going away (not the process): release our own fds only; the custody
   * keeps its duplicates and the logger keeps running, for the next worker.
   */
  async detach(): Promise<void> {
    this.keeper = undefined;
    this.logger = undefined;
    await this.close(0);
  }

  /** Wait up to `drainMs` for output copies to finish, then release everything (and the custody's duplicates). */
  async close(drainMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closeChildEnds();
    if (drainMs > 0 && this.copies.length > 0) {
      await Promise.race([Promise.allSettled(this.copies), new Promise((r) => setTimeout(r, drainMs).unref())]);
    }
    this.closeStdin();
    for (const s of this.streams) s.destroy();
    await this.consoleSocket?.close();
    for (const fd of this.ownFds) safeClose(fd);
    this.drop('');
    const logger = this.logger;
    if (logger && logger.exitCode === null) {
      logger.kill('SIGTERM');
      const t = setTimeout(() => logger.kill('SIGKILL'), LOGGER_KILL_AFTER_MS);
      t.unref();
      logger.once('exit', () => clearTimeout(t));
    }
  }
}

interface ParsedUri {
  scheme: string;
  path: string;
  query: URLSearchParams;
}

/** `binary:///bin/logger?k=v`, `file:///var/log/x`, `fifo:///...`; a plain path is not a URI. */
export function parseUri(s: string): ParsedUri | undefined {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s);
  if (!m) return undefined;
  const u = new URL(s);
  return { scheme: m[1]!.toLowerCase(), path: decodeURIComponent(u.pathname), query: u.searchParams };
}

/**
 * Copy until the source ends, then close the sink once its queue is flushed.
 * Not `sink.end()`: on a pipe or FIFO libuv's shutdown(2) fails with ENOTSOCK
 * and the fd would stay open, so the reader would never see EOF.
 */
function copy(source: Readable, sink: Writable): Promise<void> {
  source.pipe(sink, { end: false });
  // Not stream.finished(): on a read-only net.Socket it also waits for a writable side.
  return new Promise<void>((resolve) => {
    source.once('end', resolve);
    source.once('close', resolve);
    source.once('error', () => resolve());
  }).then(
      () =>
        new Promise<void>((resolve) => {
          const done = () => {
            sink.destroy();
            resolve();
          };
          if (sink.writableLength === 0 || sink.destroyed) done();
          else {
            sink.once('drain', done);
            sink.once('error', done);
          }
        }),
    );
}

function readSocket(fd: number): net.Socket {
  return new net.Socket({ fd, readable: true, writable: false });
}

function safeClose(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* already closed */
  }
}
