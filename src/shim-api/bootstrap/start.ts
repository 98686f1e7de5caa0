/**
 * The `start` subcommand. containerd reads our combined stdout+stderr as the
 * address, so: listen first, detach the daemon with no inherited stdio, print a
 * plain `unix://` address, never write to stderr. Kept free of heavy imports:
 * containerd runs this once per task.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { ShimFlags } from './flags.js';
import { closeFd } from '../../sys/libc.js';
import { bindSocket, fromAddress, groupOf, isServing, socketPath, toAddress, withSocketLock, SOCKET_DIR } from './address.js';

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


export interface StartPlan {
  bundle: string;
  /** Socket path of the shim serving this task's group. */
  sock: string;
  /** `unix://<sock>`: what `start` prints and the bundle's `address` file holds. */
  address: string;
}

/** What every start does first: check the flags, read the options, pick the group's socket. */
export function planStart(flags: ShimFlags): StartPlan {
  const bundle = process.cwd();
  if (!flags.namespace) throw new Error('shim namespace cannot be empty');
  if (!flags.id) throw new Error('shim id cannot be empty');
  readStdinOptions(bundle);
  const group = groupOf(flags.id, readAnnotations(bundle));
  const sock = socketPath(flags.address, flags.namespace, group);
  fs.mkdirSync(SOCKET_DIR, { recursive: true, mode: 0o700 });
  return { bundle, sock, address: toAddress(sock) };
}

/**
 * Listens on the group's socket, under the socket lock: 'joined' when a live shim already
 * listens there (another start of the same pod won), else a dead shim's file is removed and
 * `listen` gets a fresh listening fd bound at sock (see address.ts, ADR 0013).
 */
export async function listenOrJoin(sock: string, listen: (fd: number) => Promise<unknown>, opts: { lockFile?: string } = {}): Promise<'listening' | 'joined'> {
  return withSocketLock(async () => {
    if (await isServing(sock)) return 'joined';
    await fsp.rm(sock, { force: true }); // a dead shim's file (nobody listens: ECONNREFUSED)
    const fd = await bindSocket(sock);
    try {
      await listen(fd);
    } catch (err) {
      closeFd(fd);
      await fsp.rm(sock, { force: true });
      throw err;
    }
    return 'listening';
  }, opts);
}

export function writeAddressFile(plan: StartPlan): void {
  fs.writeFileSync(path.join(plan.bundle, 'address'), plan.address);
}

/** The bundle's `log` FIFO for writing (containerd reads it), or undefined when there is none. */
export function openBundleLog(bundle: string): number | undefined {
  try {
    return fs.openSync(path.join(bundle, 'log'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined; // not started by containerd
  }
}

/**
 * The classic start: this process listens, hands the socket to a detached daemon process
 * (`daemon` subcommand, fd 3) and exits. The launcher's start (ADR 0008) instead becomes the
 * daemon itself (main.ts), saving one Node boot per task.
 */
export async function start(flags: ShimFlags, shimScript: string): Promise<StartResult> {
  const plan = planStart(flags);
  let fd: number | undefined;
  const state = await listenOrJoin(plan.sock, async (lfd) => {
    fd = lfd;
  });
  if (state === 'joined' || fd === undefined) {
    writeAddressFile(plan);
    return { address: plan.address, spawned: false };
  }
  const logFd = openBundleLog(plan.bundle);
  const args = [
    ...process.execArgv,
    shimScript,
    '-namespace', flags.namespace,
    '-id', flags.id,
    '-address', flags.address,
    '-socket', plan.sock,
    ...(flags.publishBinary ? ['-publish-binary', flags.publishBinary] : []),
    ...(flags.debug ? ['-debug'] : []),
    'daemon',
  ];
  const child = spawn(process.execPath, args, {
    cwd: plan.bundle,
    detached: true,
    stdio: ['ignore', 'ignore', logFd ?? 'ignore', fd],
    env: process.env,
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  child.unref();
  if (logFd !== undefined) fs.closeSync(logFd);
  closeFd(fd); // the daemon's fd 3 keeps the socket listening
  adjustOomScore(child.pid!, process.ppid);
  writeAddressFile(plan);
  return { address: plan.address, spawned: true };
}

/** The daemon gets containerd's oom_score_adj + 1, as runc-v2 does. */
export function adjustOomScore(pid: number, containerdPid: number): void {
  try {
    const parent = Number.parseInt(fs.readFileSync(`/proc/${containerdPid}/oom_score_adj`, 'utf8'), 10) || 0;
    fs.writeFileSync(`/proc/${pid}/oom_score_adj`, String(Math.min(parent + 1, 1000)));
  } catch {
    /* best effort */
  }
}

export { fromAddress };
