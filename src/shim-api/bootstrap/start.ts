/**
 * The `start` subcommand. containerd reads our combined stdout+stderr as the
 * address, so: listen first, detach the daemon with no inherited stdio, print a
 * plain `unix://` address, never write to stderr. Kept free of heavy imports:
 * containerd runs this once per task.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { ShimFlags } from './flags.js';
import { fromAddress, groupOf, socketPath, toAddress, SOCKET_DIR } from './address.js';

export interface StartResult {
  address: string;
  /** false when an existing shim of the same group serves this task */
  spawned: boolean;
}

/** A one-line JSON log record into the bundle's `log` FIFO (containerd copies it to its log). */
export function logToBundle(bundle: string, level: 'info' | 'warn' | 'error', msg: string, extra: Record<string, unknown> = {}): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path.join(bundle, 'log'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    fs.writeSync(fd, JSON.stringify({ level, time: Date.now(), msg, ...extra }) + '\n');
  } catch {
    /* no reader: nothing to tell */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function readAnnotations(bundle: string): Record<string, string> {
  try {
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { annotations?: Record<string, string> };
    return spec.annotations ?? {};
  } catch {
    return {};
  }
}

/** Options on stdin: one serialized google.protobuf.Any, or nothing. Returns its type URL. */
export function readStdinOptions(bundle: string): string | undefined {
  let data: Buffer;
  try {
    data = fs.readFileSync(0);
  } catch {
    return undefined;
  }
  if (data.length === 0) return undefined;
  // field 1 (type_url) must come first as a length-delimited string
  if (data[0] !== 0x0a) {
    logToBundle(bundle, 'warn', 'malformed runtime options on start stdin: treated as no options', { bytes: data.length });
    return undefined;
  }
  let len = 0;
  let shift = 0;
  let i = 1;
  for (; i < data.length && i < 6; i++) {
    len |= (data[i]! & 0x7f) << shift;
    shift += 7;
    if ((data[i]! & 0x80) === 0) break;
  }
  const typeUrl = data.subarray(i + 1, i + 1 + len).toString('utf8');
  if (i + 1 + len > data.length || !/^[\w./-]+$/.test(typeUrl)) {
    logToBundle(bundle, 'warn', 'malformed runtime options on start stdin: treated as no options', { bytes: data.length });
    return undefined;
  }
  return typeUrl;
}

function canConnect(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function listen(p: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(p, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export async function start(flags: ShimFlags, shimScript: string): Promise<StartResult> {
  const bundle = process.cwd();
  if (!flags.namespace) throw new Error('shim namespace cannot be empty');
  if (!flags.id) throw new Error('shim id cannot be empty');
  readStdinOptions(bundle);
  const group = groupOf(flags.id, readAnnotations(bundle));
  const sock = socketPath(flags.address, flags.namespace, group);
  const address = toAddress(sock);
  fs.mkdirSync(SOCKET_DIR, { recursive: true, mode: 0o700 });

  let server: net.Server;
  try {
    server = await listen(sock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    if (await canConnect(sock)) {
      // The pod's shim is already serving: this task joins it.
      fs.writeFileSync(path.join(bundle, 'address'), address);
      return { address, spawned: false };
    }
    fs.rmSync(sock, { force: true }); // stale socket of a dead shim
    server = await listen(sock);
  }
  fs.chmodSync(sock, 0o600);

  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  let logFd: number | 'ignore' = 'ignore';
  try {
    logFd = fs.openSync(path.join(bundle, 'log'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    /* no log FIFO (not started by containerd): the daemon logs nowhere */
  }
  const args = [
    ...process.execArgv,
    shimScript,
    '-namespace', flags.namespace,
    '-id', flags.id,
    '-address', flags.address,
    '-socket', sock,
    ...(flags.publishBinary ? ['-publish-binary', flags.publishBinary] : []),
    ...(flags.debug ? ['-debug'] : []),
    'daemon',
  ];
  const child = spawn(process.execPath, args, {
    cwd: bundle,
    detached: true,
    stdio: ['ignore', 'ignore', logFd, fd],
    env: process.env,
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  child.unref();
  if (typeof logFd === 'number') fs.closeSync(logFd);
  // Do not close `server`: Node would unlink the socket path. Our copy of the fd goes
  // away when this process exits; the daemon's fd 3 keeps the socket listening.
  server.unref();
  adjustOomScore(child.pid!);
  fs.writeFileSync(path.join(bundle, 'address'), address);
  return { address, spawned: true };
}

/** The daemon gets containerd's oom_score_adj + 1, as runc-v2 does. */
function adjustOomScore(pid: number): void {
  try {
    const parent = Number.parseInt(fs.readFileSync(`/proc/${process.ppid}/oom_score_adj`, 'utf8'), 10) || 0;
    fs.writeFileSync(`/proc/${pid}/oom_score_adj`, String(Math.min(parent + 1, 1000)));
  } catch {
    /* best effort */
  }
}

export { fromAddress };
