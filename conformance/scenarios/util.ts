// Helpers shared by the scenarios: gRPC status names, Unimplemented detection, polling.
import type { ServiceError } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { TSSHIM, collectEvents, shimBinaryOf, shimDaemons, taskStatus, type EventLine } from '../../test/helpers/tasks.js';
import { cgroupOf, isAlive, runCommand, sleep, waitFor } from '../../test/helpers/proc.js';
import { namespaceSocket, nodePaths } from '../../src/shim-api/bootstrap/node.js';
import { SHIM_BINARY } from '../../src/shim-api/runtime-type.js';
import type { RunResult } from '../../test/helpers/proc.js';
import { NotRunError, UnsupportedError, type Capability, type Json, type ScenarioContext } from '../types.js';

export { cgroupOf, sleep, waitFor };

const CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
];

export function isServiceError(e: unknown): e is ServiceError {
  return typeof e === 'object' && e !== null && typeof (e as ServiceError).code === 'number' && 'details' in e;
}

/** gRPC status name of an error ('NotFound'...), or 'Error: <message>' for anything else. */
export function codeName(e: unknown): string {
  if (isServiceError(e)) return CODE_NAMES[e.code] ?? `code ${e.code}`;
  return `Error: ${(e as Error)?.message ?? String(e)}`;
}

/** Replaces every occurrence of each key with its value (ids -> <id>, paths -> <bundle>...), longest key first. */
export function normalise(text: string, replace: Record<string, string>): string {
  let out = text;
  for (const [k, v] of Object.entries(replace).sort((a, b) => b[0].length - a[0].length)) if (k) out = out.split(k).join(v);
  return out;
}

/** Outcome of a gRPC call as a comparable value: 'OK' or `<status name>: <details>` with the replacements applied. */
export async function outcome(p: Promise<unknown>, replace: Record<string, string> = {}): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return isServiceError(e) ? normalise(`${codeName(e)}: ${e.details}`, replace) : codeName(e);
  }
}

/** The status name of an outcome() ('OK', 'NotFound', ...). */
export const classOf = (o: unknown): string => String(o).split(':')[0]!;

/** Re-throws an Unimplemented gRPC error as UnsupportedError (with the shim's message). */
export function unsupportedIfUnimplemented(e: unknown, cap?: Capability): never {
  if (isServiceError(e) && e.code === 12) throw new UnsupportedError(e.details || e.message, cap);
  throw e;
}

/** Awaits a gRPC call, turning Unimplemented into UnsupportedError. */
export async function grpcOrUnsupported<T>(p: Promise<T>, cap?: Capability): Promise<T> {
  try {
    return await p;
  } catch (e) {
    return unsupportedIfUnimplemented(e, cap);
  }
}

/** ctr reports an Unimplemented answer as "...: not implemented" on stderr. */
export function ctrUnsupported(r: RunResult, cap?: Capability): void {
  if (r.exitCode !== 0 && /not implemented/i.test(r.stderr)) throw new UnsupportedError(r.stderr.trim().replace(/^ctr: /, ''), cap);
}

/** Fails with ctr's own output when it exited non-zero. */
export function ok(r: RunResult, what: string): RunResult {
  if (r.exitCode !== 0) throw new Error(`${what}: exit ${r.exitCode}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  return r;
}

/** ctr's stderr without logrus decoration: `time=".." level=warning msg="x"` -> `warning: x`; ids replaced by <id>, or the replacements applied. */
export function ctrMessage(stderr: string, ...ids: Array<string | Record<string, string>>): string {
  const out = stderr
    .trim()
    .split('\n')
    .map((l) => {
      const m = /level=(\w+) msg="((?:[^"\\]|\\.)*)"/.exec(l);
      return m ? `${m[1]}: ${m[2]!.replace(/\\"/g, '"')}` : l.replace(/^ctr: /, '');
    })
    .join('\n');
  const replace: Record<string, string> = {};
  for (const r of ids) Object.assign(replace, typeof r === 'string' ? { [r]: '<id>' } : r);
  return normalise(out, replace);
}

export async function status(ctx: ScenarioContext, id: string): Promise<string> {
  return (await taskStatus(ctx.cd, id))?.status ?? '(not listed)';
}

export async function waitStatus(ctx: ScenarioContext, id: string, want: string, timeoutMs = 15_000): Promise<string> {
  let last = '';
  await waitFor(async () => (last = await status(ctx, id)) === want, timeoutMs, 100);
  return last;
}

/** Starts `ctr run -d <id> sleep 300` and returns the task's pid from `ctr task ls`. */
export async function runSleeper(ctx: ScenarioContext, id: string, opts: { flags?: string[]; tty?: boolean; cmd?: string[] } = {}): Promise<number> {
  ok(await ctx.ctr.run(id, opts.cmd ?? ['sleep', '300'], { detach: true, flags: opts.flags, tty: opts.tty }), `ctr run -d ${id}`);
  const row = await taskStatus(ctx.cd, id);
  if (!row) throw new Error(`task ${id} not listed after ctr run -d`);
  return row.pid;
}

/** `ctr events` for the cell; stopped by the runner at the latest. */
export async function events(ctx: ScenarioContext): Promise<{ stop(): Promise<EventLine[]>; lines(): EventLine[] }> {
  const ev = collectEvents(ctx.cd);
  let stopped: Promise<EventLine[]> | undefined;
  const stop = () => (stopped ??= ev.stop());
  ctx.defer(stop);
  await ev.ready;
  return { stop, lines: ev.lines };
}

/** Task topics of one container, in arrival order, as `topic` or `topic(<exec id>)`. */
export function topicsOf(lines: EventLine[], containerId: string, withExecId = false): string[] {
  return lines
    .filter((e) => e.topic.startsWith('/tasks/') && e.body.container_id === containerId)
    .map((e) => {
      if (!withExecId) return e.topic;
      const exec = (e.body.exec_id ?? (e.topic === '/tasks/exit' && e.body.id !== containerId ? e.body.id : undefined)) as Json | undefined;
      return exec ? `${e.topic}(${String(exec)})` : e.topic;
    });
}

let criuVerdict: Promise<string | undefined> | undefined;
/** undefined when `criu check` passes, else its error output (quoted in not-run reasons). */
export function criuProblem(): Promise<string | undefined> {
  criuVerdict ??= runCommand('criu', ['check'], { timeoutMs: 30_000 })
    .then((r) => (r.exitCode === 0 ? undefined : (r.stderr + r.stdout).trim().split('\n').filter(Boolean).slice(-3).join(' | ')))
    .catch((e: Error) => `criu check could not run: ${e.message}`);
  return criuVerdict;
}

export async function requireCriu(): Promise<void> {
  const p = await criuProblem();
  if (p) throw new NotRunError(`host limit: \`criu check\` fails: ${p}`);
}


/**
 * The shim daemons serving these tasks in this column: tsshim's node daemon of the containerd in
 * node mode (ADR 0018; it is no task's own process), else the daemons started for them.
 */
export function servingDaemons(ctx: ScenarioContext, ids: string[]): Array<{ pid: number; binary: string }> {
  if (ctx.shimMode === 'node' && ctx.column.runtimeType === TSSHIM) {
    let pid = NaN;
    try {
      pid = Number(readFileSync(nodePaths(ctx.cd.address).pidFile, 'utf8').trim());
    } catch {
      /* no daemon */
    }
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? [{ pid, binary: SHIM_BINARY }] : [];
  }
  return shimDaemons(ctx.cd, ids).filter((d) => d.binary === shimBinaryOf(ctx.column.runtimeType));
}

/** In node mode a tsshim task's socket is its namespace's, served on after the task is gone. */
export function isNodeNamespaceSocket(ctx: ScenarioContext, socket: string | undefined): boolean {
  return ctx.shimMode === 'node' && ctx.column.runtimeType === TSSHIM && socket === namespaceSocket(ctx.cd.address, ctx.cd.namespace);
}
