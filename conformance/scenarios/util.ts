// Helpers shared by the scenarios: gRPC status names, Unimplemented detection, polling.
import { readFileSync } from 'node:fs';
import type { ServiceError } from '@grpc/grpc-js';
import { collectEvents, taskStatus, type EventLine } from '../../test/helpers/tasks.js';
import { runCommand, sleep, waitFor } from '../../test/helpers/proc.js';
import type { RunResult } from '../../test/helpers/proc.js';
import { NotRunError, UnsupportedError, type Capability, type Json, type ScenarioContext } from '../types.js';

export { sleep, waitFor };

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

/** Outcome of a gRPC call as a comparable value: 'OK' or the status name. */
export async function outcome(p: Promise<unknown>, ctx?: ScenarioContext, noteKey?: string): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    if (ctx && noteKey) ctx.note(noteKey, isServiceError(e) ? e.details : (e as Error).message);
    return codeName(e);
  }
}

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

/** ctr's stderr without logrus decoration: `time=".." level=warning msg="x"` -> `warning: x`; ids replaced by <id>. */
export function ctrMessage(stderr: string, ...ids: string[]): string {
  let out = stderr
    .trim()
    .split('\n')
    .map((l) => {
      const m = /level=(\w+) msg="((?:[^"\\]|\\.)*)"/.exec(l);
      return m ? `${m[1]}: ${m[2]!.replace(/\\"/g, '"')}` : l.replace(/^ctr: /, '');
    })
    .join('\n');
  for (const id of ids) out = out.split(id).join('<id>');
  return out;
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

/** The cgroup v1 path of a pid for a controller, from /proc/<pid>/cgroup. */
export function cgroupOf(pid: number, controller: string): string | undefined {
  const text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  for (const line of text.split('\n')) {
    const [, ctrls, path] = line.split(':');
    if (ctrls !== undefined && ctrls.split(',').includes(controller)) return path;
  }
  return undefined;
}
