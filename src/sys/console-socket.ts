/**
 * Receiver for runc's `--console-socket`: runc (and crun, youki, runsc)
 * connects to this AF_UNIX socket and sends one message whose payload is the
 * pty name and whose ancillary data is SCM_RIGHTS with the pty master fd.
 *
 * Waiting never blocks the event loop nor a threadpool thread: both fds are
 * non-blocking and watched with a libuv poll handle (koffi.node.poll, i.e.
 * uv_poll_t on Node's own loop). close() stops the poll handle and rejects a
 * pending receive() at once.
 *
 * Using the received master from Node: wrap it with `new tty.ReadStream(fd)`
 * for reading and `new tty.WriteStream(dupFd(fd))` for writing (libuv keeps
 * one watcher per fd, so the two streams need distinct descriptors).
 * `new net.Socket({ fd })` does not work: Node only accepts pipes and TCP
 * sockets there (ERR_INVALID_FD_TYPE for a tty). When the slave side is gone,
 * reading the master fails with EIO: treat that as end of stream.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { acceptNonBlocking, closeFd, koffiModule, listenUnix, recvFd, SysError } from './libc.js';

interface PollHandle {
  close(): void;
}

/** uv_poll on fd for readability; cb gets (errorStatus) with 0 meaning readable/hang-up. */
function pollReadable(fd: number, cb: (status: number) => void): PollHandle {
  const k = koffiModule() as unknown as {
    node: { poll(fd: number, opts: { readable: boolean; disconnect: boolean }, cb: (...a: unknown[]) => void): PollHandle | null };
  };
  // koffi 3.3 calls back with (status, events); its .d.ts documents (events) only.
  const h = k.node.poll(fd, { readable: true, disconnect: true }, (...a: unknown[]) => {
    cb(typeof a[0] === 'number' ? a[0] : 0);
  });
  if (!h) throw new Error(`koffi.node.poll(${fd}) failed`);
  return h;
}

export class ConsoleSocket {
  private listenFd: number;
  private closed = false;
  private pending: { fail(err: Error): void } | undefined;

  private constructor(
    readonly path: string,
    private readonly dir: string,
    listenFd: number,
  ) {
    this.listenFd = listenFd;
  }

  /** A listening socket at <dir or os.tmpdir()>/tsshim-pty-<random>/pty.sock */
  static async create(dir?: string): Promise<ConsoleSocket> {
    const d = await mkdtemp(path.join(dir ?? tmpdir(), 'tsshim-pty-'));
    const p = path.join(d, 'pty.sock');
    try {
      return new ConsoleSocket(p, d, listenUnix(p, 1));
    } catch (e) {
      await rm(d, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Accept one connection and receive one SCM_RIGHTS fd (the pty master,
   * close-on-exec; the caller owns it). timeoutMs 0 or absent: no timeout.
   */
  receive(timeoutMs?: number): Promise<{ fd: number; name: string }> {
    if (this.closed) return Promise.reject(new Error(`console socket ${this.path} is closed`));
    if (this.pending) return Promise.reject(new Error(`console socket ${this.path}: a receive() is already pending`));
    return new Promise((resolve, reject) => {
      let poll: PollHandle | undefined;
      let conn = -1;
      let timer: NodeJS.Timeout | undefined;
      let done = false;

      const finish = (err: Error | null, value?: { fd: number; name: string }): void => {
        if (done) return;
        done = true;
        this.pending = undefined;
        if (timer) clearTimeout(timer);
        poll?.close(); // stops watching before the fd is closed
        poll = undefined;
        if (conn >= 0) {
          try {
            closeFd(conn);
          } catch {
            // nothing useful to do
          }
          conn = -1;
        }
        if (err) reject(err);
        else resolve(value!);
      };

      const watch = (fd: number, step: () => void): void => {
        poll?.close();
        poll = pollReadable(fd, (status) => {
          if (done) return;
          if (status < 0) {
            finish(new Error(`console socket ${this.path}: poll failed (uv status ${status})`));
            return;
          }
          step();
        });
      };

      const tryReceive = (): void => {
        try {
          const got = recvFd(conn);
          if (got) finish(null, got);
        } catch (e) {
          finish(wrap(this.path, e));
        }
      };

      const tryAccept = (): void => {
        try {
          const c = acceptNonBlocking(this.listenFd);
          if (c === null) return; // spurious wake-up: keep polling
          conn = c;
          watch(conn, tryReceive);
          tryReceive(); // the message may already be there
        } catch (e) {
          finish(wrap(this.path, e));
        }
      };

      this.pending = { fail: (err) => finish(err) };
      if (timeoutMs && timeoutMs > 0) {
        timer = setTimeout(() => {
          const err = new SysError('recvmsg', 110, 'ETIMEDOUT', `timed out after ${timeoutMs} ms waiting for the pty master on console socket ${this.path}`, this.path);
          finish(err);
        }, timeoutMs);
      }
      try {
        watch(this.listenFd, tryAccept);
      } catch (e) {
        finish(wrap(this.path, e));
        return;
      }
      tryAccept();
    });
  }

  /**
   * Close the listening socket (at once: a pending receive() rejects), then remove the socket
   * file and its directory off the event loop; the promise settles when they are gone (never rejects).
   */
  close(): Promise<void> {
    if (this.closed) return this.removed;
    this.closed = true;
    this.pending?.fail(new Error(`console socket ${this.path} was closed while waiting for the pty master`));
    try {
      closeFd(this.listenFd);
    } catch {
      // already gone
    }
    this.listenFd = -1;
    this.removed = rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
    return this.removed;
  }
  private removed: Promise<void> = Promise.resolve();
}

function wrap(sockPath: string, e: unknown): Error {
  if (e instanceof SysError) {
    return new SysError(e.syscall, e.errno, e.code, `console socket ${sockPath}: ${e.message}`, sockPath);
  }
  return e instanceof Error ? e : new Error(String(e));
}
