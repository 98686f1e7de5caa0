/**
 * A shim v2 binary we delegate to (Kata's containerd-shim-kata-v2, or any shim
 * v2): its `start` and `delete` subcommands, run with containerd's bootstrap
 * contract, and a ttrpc client to the address it prints.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'ttrpc-ts';
import { ShimError } from '../../shim-api/errors.js';
import type { HandlerContext } from '../../shim-api/handler.js';
import { Any, bootstrap, introspection, SERVICE, task } from '../../shim-api/pb.js';

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

/** How the delegate was started and what it serves: its socket and task service (v2, or v3). */
export interface DelegateEndpoint {
  socket: string;
  /** SERVICE.Task (containerd.task.v2.Task) or, for a delegate announcing version 3, SERVICE.TaskV3. */
  service: string;
  /** The task API version the delegate announced (2 for a plain address). */
  version: number;
  /** The start protocol it accepted: 'legacy' (options Any on stdin) or 'bootstrap' (BootstrapParams). */
  protocol: StartProtocol;
}

/**
 * containerd's two start protocols. 'legacy': stdin is the runtime options Any (or nothing), the
 * answer a plain address or JSON (containerd 1.x, 2.0-2.2 shims, Kata 3.x). 'bootstrap' (containerd
 * >= 2.3, PR 12786): stdin is a BootstrapParams protobuf with the options as an extension, the
 * answer a BootstrapResult protobuf; a shim built against that pkg/shim refuses the legacy stdin.
 */
export type StartProtocol = 'legacy' | 'bootstrap';

/** What a shim built against containerd >= 2.3's pkg/shim says when started the legacy way (pkg/shim/compat.go). */
const DEPRECATED_API = /started through the deprecated API/;

/** The protocol each delegate binary accepted, so that only its first start pays for a refusal. */
const accepted = new Map<string, StartProtocol>();

/** BootstrapParams bytes, as containerd 2.3+ writes them to a shim's stdin (core/runtime/v2/command.go). */
export function bootstrapParams(ctx: HandlerContext, id: string, options?: Any): Uint8Array {
  return bootstrap.BootstrapParams.encode(
    bootstrap.BootstrapParams.fromPartial({
      instanceId: id,
      namespace: ctx.namespace,
      logLevel: ctx.shim.debug ? bootstrap.LogLevel.LOG_LEVEL_DEBUG : bootstrap.LogLevel.LOG_LEVEL_INFO,
      containerdTtrpcAddress: ctx.shim.ttrpcAddress,
      containerdGrpcAddress: ctx.shim.containerdAddress,
      containerdBinary: ctx.shim.publishBinary,
      extensions: options ? [{ value: options }] : [],
    }),
  ).finish();
}

/**
 * `<delegate> ... start` in the bundle. The legacy protocol first (every shim before containerd
 * 2.3, Kata's among them); a delegate that refuses it as "the deprecated API" is started again with
 * BootstrapParams, as containerd 2.3+ starts it. The answer is parsed as containerd 2.x parses it.
 */
export async function startDelegate(cfg: DelegateConfig, ctx: HandlerContext, bundle: string, id: string, options?: Any): Promise<DelegateEndpoint> {
  const first = accepted.get(cfg.binary) ?? 'legacy';
  let protocol: StartProtocol = first;
  let r = await runStart(cfg, ctx, bundle, id, protocol, options);
  if (r.exitCode !== 0 && protocol === 'legacy' && DEPRECATED_API.test(r.stdout.toString() + r.stderr)) {
    ctx.log.info({ delegate: cfg.binary }, 'delegate refuses the legacy start protocol: starting it with BootstrapParams (containerd >= 2.3)');
    protocol = 'bootstrap';
    r = await runStart(cfg, ctx, bundle, id, protocol, options);
  }
  if (r.exitCode !== 0) {
    const out = `${r.stdout.toString()}${r.stderr}`.trim();
    throw new ShimError('Unknown', `delegate ${cfg.binary} start failed: ${out}: exit status ${r.exitCode}`);
  }
  accepted.set(cfg.binary, protocol);
  return { ...parseStartAnswer(r.stdout, cfg.binary), protocol };
}

function runStart(cfg: DelegateConfig, ctx: HandlerContext, bundle: string, id: string, protocol: StartProtocol, options?: Any) {
  const input = protocol === 'bootstrap' ? bootstrapParams(ctx, id, options) : options ? Any.encode(options).finish() : undefined;
  return runForBytes(ctx, cfg.binary, [...bootstrapArgs(ctx, id), 'start'], bundle, { input, timeoutMs: 60_000 });
}

/**
 * A start answer, read as containerd 2.x reads it (parseStartResponse): JSON
 * `{"version":2|3,"address":...,"protocol":"ttrpc"}`, a BootstrapResult protobuf, or a plain
 * address (version 2, ttrpc). Version 3 means the delegate serves containerd.task.v3.Task.
 */
export function parseStartAnswer(out: Uint8Array, binary = 'delegate'): Omit<DelegateEndpoint, 'protocol'> {
  const text = Buffer.from(out).toString('utf8').trim();
  let version = 2;
  let protocol = 'ttrpc';
  let address = text;
  if (text.startsWith('{')) {
    let j: { version?: number; address?: string; protocol?: string };
    try {
      j = JSON.parse(text) as typeof j;
    } catch {
      throw new ShimError('Unknown', `${binary} printed no usable start answer: ${JSON.stringify(text.slice(0, 200))}`);
    }
    version = j.version ?? 2;
    protocol = j.protocol || 'ttrpc';
    address = j.address ?? '';
  } else {
    const r = decodeResult(out);
    if (r) {
      version = r.version || 2;
      protocol = r.protocol || 'ttrpc';
      address = r.address;
    }
  }
  if (protocol !== 'ttrpc') throw new ShimError('FailedPrecondition', `${binary} speaks ${protocol}; only ttrpc delegates are supported`);
  if (version !== 2 && version !== 3) throw new ShimError('FailedPrecondition', `${binary} announced task API version ${version}; tsshim delegates containerd.task.v2 and v3`);
  return { socket: socketOf(address, binary, text), service: version === 3 ? SERVICE.TaskV3 : SERVICE.Task, version };
}

/** A BootstrapResult, or undefined when the bytes are not one (a plain `unix://...` never decodes: '/' is wire type 7). */
function decodeResult(out: Uint8Array): bootstrap.BootstrapResult | undefined {
  try {
    const r = bootstrap.BootstrapResult.decode(out);
    return r.address !== '' && !/[\0-\x1f]/.test(r.address) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** A plain address (unix:// or abstract) as a socket path for our client. */
export function parseAddress(out: string, binary = 'delegate'): string {
  return parseStartAnswer(Buffer.from(out), binary).socket;
}

function socketOf(address: string, binary: string, said: string): string {
  if (address.startsWith('unix://')) return address.slice('unix://'.length);
  if (address && !address.includes('://')) return `\0${address}`; // abstract socket, as containerd dials it
  throw new ShimError('Unknown', `${binary} printed no usable address: ${JSON.stringify(said.slice(0, 200))}`);
}

/**
 * `<delegate> -info` with its runtime options on stdin: its RuntimeInfo, or undefined when it has
 * no -info (shims before containerd 2.0, Kata 3.x: "flag provided but not defined") or fails.
 */
export async function delegateInfo(cfg: DelegateConfig, ctx: HandlerContext, options?: Any): Promise<introspection.RuntimeInfo | undefined> {
  const r = await runForBytes(ctx, cfg.binary, ['-info'], process.cwd(), { input: options ? Any.encode(options).finish() : undefined, timeoutMs: 10_000 });
  if (r.exitCode !== 0) {
    ctx.log.debug({ delegate: cfg.binary, exitCode: r.exitCode, stderr: r.stderr.slice(0, 500) }, 'delegate -info failed');
    return undefined;
  }
  try {
    return introspection.RuntimeInfo.decode(r.stdout);
  } catch (err) {
    ctx.log.warn({ delegate: cfg.binary, err: (err as Error).message }, 'delegate -info printed no RuntimeInfo');
    return undefined;
  }
}

/** `<delegate> ... -bundle B delete`: its DeleteResponse. */
export async function deleteDelegate(cfg: DelegateConfig, ctx: HandlerContext, bundle: string, id: string): Promise<task.DeleteResponse> {
  const r = await runForBytes(ctx, cfg.binary, [...bootstrapArgs(ctx, id), '-bundle', bundle, 'delete'], bundle);
  if (r.exitCode !== 0) throw new ShimError('Unknown', `delegate ${cfg.binary} delete failed: ${r.stderr.trim()}: exit status ${r.exitCode}`);
  return task.DeleteResponse.decode(r.stdout);
}

/** Output that is protobuf (start's BootstrapResult, delete's DeleteResponse, -info's RuntimeInfo): stdout as bytes, bounded. */
function runForBytes(
  ctx: HandlerContext,
  binary: string,
  args: string[],
  cwd: string,
  o: { input?: Uint8Array; timeoutMs?: number } = {},
): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
  const MAX = 1 << 20;
  return new Promise((resolve, reject) => {
    const child = ctx.os.spawn(binary, args, { cwd, env: delegateEnv(ctx), stdio: [o.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 10_000);
    child.stdout!.on('data', (b: Buffer) => {
      if (outBytes + b.length <= MAX) out.push(b);
      outBytes += b.length;
    });
    child.stderr!.on('data', (b: Buffer) => {
      if (err.length < MAX) err += b.toString();
    });
    if (o.input && child.stdin) {
      child.stdin.on('error', () => undefined); // a delegate that exits without reading its stdin
      child.stdin.end(Buffer.from(o.input));
    }
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

/**
 * Remember the delegate's socket and task service (JSON; a bundle of an older tsshim holds the bare
 * socket path, read as task v2), and put our own address back into `<bundle>/address`.
 */
export async function recordDelegate(bundle: string, ep: Pick<DelegateEndpoint, 'socket' | 'service'>, ownAddress: string): Promise<void> {
  await fsp.writeFile(path.join(bundle, DELEGATE_FILE), JSON.stringify({ socket: ep.socket, service: ep.service }), { mode: 0o600 });
  if (ownAddress) await fsp.writeFile(path.join(bundle, 'address'), ownAddress);
}

export async function recordedDelegate(bundle: string): Promise<Pick<DelegateEndpoint, 'socket' | 'service'> | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(bundle, DELEGATE_FILE), 'utf8');
  } catch {
    return undefined;
  }
  if (!text) return undefined;
  if (!text.startsWith('{')) return { socket: text, service: SERVICE.Task };
  try {
    const j = JSON.parse(text) as { socket?: unknown; service?: unknown };
    if (typeof j.socket !== 'string' || !j.socket) return undefined;
    return { socket: j.socket, service: j.service === SERVICE.TaskV3 ? SERVICE.TaskV3 : SERVICE.Task };
  } catch {
    return undefined;
  }
}
