/**
 * The channel between node mode's supervisor and its worker (ADR 0018): JSON messages, one per
 * line, on a stream socketpair; file descriptors on a second, SOCK_SEQPACKET socketpair, one fd
 * per packet, named. An fd always goes out before the message that mentions it, so the receiver
 * finds it queued when the message arrives (both sockets connect the same two processes).
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { closeFd, recvFd, sendFd } from '../../sys/libc.js';

/** Longest message line accepted (records are small; a bigger line is a bug or an attack). */
export const MAX_LINE = 4 << 20;

export type Message = { t: string } & Record<string, unknown>;

export class Channel extends EventEmitter<{ message: [Message]; close: [] }> {
  private buf = '';
  private closed = false;
  readonly socket: net.Socket;

  constructor(
    msgFd: number,
    private readonly fdSock: number,
  ) {
    super();
    this.socket = new net.Socket({ fd: msgFd, readable: true, writable: true });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => this.onData(chunk));
    this.socket.on('error', () => undefined); // 'close' follows
    this.socket.on('close', () => this.shut());
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.length === 0) continue;
      let m: Message;
      try {
        m = JSON.parse(line) as Message;
      } catch {
        continue; // never from our peer
      }
      this.emit('message', m);
    }
    if (this.buf.length > MAX_LINE) this.close();
  }

  send(m: Message): void {
    if (this.closed) return;
    this.socket.write(JSON.stringify(m) + '\n');
  }

  /** Send `fd` (a copy goes; ours stays open) named `name`; then a message that mentions it. */
  sendFd(name: string, fd: number): boolean {
    if (this.closed) return false;
    try {
      sendFd(this.fdSock, fd, name);
      return true;
    } catch {
      return false;
    }
  }

  /** The next fd queued on the fd socket; it must carry `name` (else it is closed and this throws). */
  takeFd(name: string): number {
    const got = recvFd(this.fdSock);
    if (!got) throw new Error(`node channel: no fd queued for ${name}`);
    if (got.name !== name) {
      closeFd(got.fd);
      throw new Error(`node channel: fd for ${got.name} arrived where ${name} was expected`);
    }
    return got.fd;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private shut(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      closeFd(this.fdSock);
    } catch {
      /* closed */
    }
    this.emit('close');
  }

  close(): void {
    this.socket.destroy();
    this.shut();
  }
}
