/**
 * A shim v2 binary we delegate to (Kata's containerd-shim-kata-v2, or any shim
 * v2): its `start` and `delete` subcommands, run with containerd's bootstrap
 * contract, and a ttrpc client to the address it prints.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Client } from '../../ttrpc/index.js';
import { ShimError } from '../../shim-api/errors.js';
import type { HandlerContext } from '../../shim-api/handler.js';
import { task } from '../../shim-api/pb.js';

export interface DelegateConfig {
  /** binary name on PATH or absolute path, e.g. containerd-shim-kata-v2 */
  binary: string;
}

function bootstrapArgs(ctx: HandlerContext, id: string): string[] {
  return [
    '-namespace', ctx.namespace,
    '-address', ctx.shim.containerdAddress,
    '-publish-binary', ctx.shim.publishBinary,
    '-id', id,
    ...(ctx.shim.debug ? ['-debug'] : []),
  ];
}

function delegateEnv(ctx: HandlerContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  // The delegate publishes its own events straight to containerd.
  if (ctx.shim.ttrpcAddress) env.TTRPC_ADDRESS = ctx.shim.ttrpcAddress;
  return env;
}

function notInstalled(binary: string, err: unknown): ShimError {
  return new ShimError(
    'FailedPrecondition',
    `delegate shim "${binary}" not found: install it (Kata: containerd-shim-kata-v2) or set "shim" in the kata handler config (${(err as Error).message})`,
  );
}

/** `<delegate> ... start` in the bundle; returns the socket path it serves. */
export async function startDelegate(cfg: DelegateConfig, ctx: HandlerContext, bundle: string, id: string, options?: Uint8Array): Promise<string> {
  let r;
  try {
    r = await ctx.os.run(cfg.binary, [...bootstrapArgs(ctx, id), 'start'], {
      cwd: bundle,
      env: delegateEnv(ctx),
      input: options ?? '',
      timeoutMs: 60_000,
    });
  } catch (err) {
    throw notInstalled(cfg.binary, err);
  }
  const out = (r.stdout + r.stderr).trim();
  if (r.exitCode !== 0) throw new ShimError('Unknown', `delegate ${cfg.binary} start failed: ${out}: exit status ${r.exitCode}`);
  return parseAddress(out, cfg.binary);
}

/** A plain address (unix:// or abstract) or containerd's JSON bootstrap answer. */
export function parseAddress(out: string, binary = 'delegate'): string {
  let address = out;
  if (out.startsWith('{')) {
    const j = JSON.parse(out) as { version?: number; address?: string; protocol?: string };
    if (j.protocol && j.protocol !== 'ttrpc') throw new ShimError('FailedPrecondition', `${binary} speaks ${j.protocol}; only ttrpc delegates are supported`);
    if ((j.version ?? 2) > 2) throw new ShimError('FailedPrecondition', `${binary} announced task API version ${j.version}; tsshim delegates containerd.task.v2 only`);
    address = j.address ?? '';
  }
  if (address.startsWith('unix://')) return address.slice('unix://'.length);
  if (address && !address.includes('://')) return `\0${address}`; // abstract socket, as containerd dials it
  throw new ShimError('Unknown', `${binary} printed no usable address: ${JSON.stringify(out.slice(0, 200))}`);
}

/** `<delegate> ... -bundle B delete`: its DeleteResponse. */
export async function deleteDelegate(cfg: DelegateConfig, ctx: HandlerContext, bundle: string, id: string): Promise<task.DeleteResponse> {
  const r = await runForBytes(ctx, cfg.binary, [...bootstrapArgs(ctx, id), '-bundle', bundle, 'delete'], bundle);
  if (r.exitCode !== 0) throw new ShimError('Unknown', `delegate ${cfg.binary} delete failed: ${r.stderr.trim()}: exit status ${r.exitCode}`);
  return task.DeleteResponse.decode(r.stdout);
}

/** The delete answer is binary protobuf: collect stdout as bytes. */
function runForBytes(ctx: HandlerContext, binary: string, args: string[], cwd: string): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = ctx.os.spawn(binary, args, { cwd, env: delegateEnv(ctx), stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(notInstalled(binary, e));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ exitCode: code ?? 128 + (signal ? 9 : 0), stdout: Buffer.concat(out), stderr: err });
    });
  });
}

export async function dial(socket: string): Promise<Client> {
  try {
    return await Client.connect(socket, { connectTimeoutMs: 10_000 });
  } catch (err) {
    throw new ShimError('Unavailable', `cannot reach delegate shim at ${socket.replace(/^\0/, '@')}: ${(err as Error).message}`);
  }
}

const DELEGATE_FILE = 'tsshim-delegate-address';

/** Remember the delegate's socket, and put our own address back into `<bundle>/address`. */
export async function recordDelegate(bundle: string, socket: string, ownAddress: string): Promise<void> {
  await fsp.writeFile(path.join(bundle, DELEGATE_FILE), socket, { mode: 0o600 });
  if (ownAddress) await fsp.writeFile(path.join(bundle, 'address'), ownAddress);
}

export async function delegateSocket(bundle: string): Promise<string | undefined> {
  try {
    return (await fsp.readFile(path.join(bundle, DELEGATE_FILE), 'utf8')) || undefined;
  } catch {
    return undefined;
  }
}
