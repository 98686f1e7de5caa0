// Parity tests (tsshim vs io.containerd.runc.v2): one scenario function run once per runtime on
// the same private containerd, each run asserting the scenario's expectations, then a third test
// asserting both runtimes' observations are equal.
import { readFileSync, readdirSync } from 'node:fs';
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServiceError } from '@grpc/grpc-js';
import { TSSHIM, RUNC_V2 } from './tasks.js';
import { SHIM_BINARY } from '../../src/shim-api/runtime-type.js';
import { findProcesses, runCommand, type RunResult } from './proc.js';
import type { PrivateContainerd } from './containerd.js';

export const RUNTIMES = [TSSHIM, RUNC_V2] as const;
export type Runtime = (typeof RUNTIMES)[number];

export interface ParityCtx {
  cd: PrivateContainerd;
  image: string;
}

/**
 * Registers `[<runtime>] <name>` for both runtimes and `[parity] <name>`, which asserts that the
 * observations the two runs returned are deep-equal. `fn` asserts the absolute expectations
 * itself and returns what must match across runtimes (ids, pids and paths already normalised).
 */
export function parity<C extends ParityCtx, O>(t: Test<C>, name: string, fn: (runtime: Runtime, ctx: C) => Promise<O>): void {
  const seen = new Map<Runtime, O>();
  for (const runtime of RUNTIMES) {
    t(`[${runtime}] ${name}`, async (ctx) => {
      seen.set(runtime, await fn(runtime, ctx));
    });
  }
  t(`[parity] ${name}`, () => {
    assert.ok(seen.has(TSSHIM) && seen.has(RUNC_V2), `both runtimes produced an observation (have: ${[...seen.keys()].join(', ') || 'none'})`);
    assert.equal(seen.get(TSSHIM), seen.get(RUNC_V2), 'tsshim observation (actual) equals io.containerd.runc.v2 observation (expected)');
  });
}

/** Single-quotes a word for sh. */
export const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The full ctr argv (with address and namespace) for a command line run through a shell. */
export function ctrArgv(cd: PrivateContainerd, args: string[]): string[] {
  return ['ctr', '--address', cd.address, '-n', cd.namespace, ...args];
}

/**
 * Runs `shellCmd` with a pseudo-terminal on its stdin/stdout (util-linux `script`), on a 40x120
 * terminal: ctr -t needs a console and sends its size to the task.
 */
export function underTerminal(shellCmd: string, timeoutMs = 60_000): Promise<RunResult> {
  return runCommand('script', ['-qfec', `stty rows 40 cols 120; ${shellCmd}`, '/dev/null'], { timeoutMs });
}

/** The long-running shim daemon (not a `start`/`delete` invocation) launched for the first task `id` of this containerd. */
export function shimDaemons(cd: PrivateContainerd, ids: string[]): Array<{ pid: number; binary: string }> {
  return findProcesses((argv) => {
    const i = argv.indexOf('-id');
    const a = argv.indexOf('-address');
    return i >= 0 && ids.includes(argv[i + 1] ?? '') && a >= 0 && argv[a + 1] === cd.address && !argv.includes('start') && !argv.includes('delete');
  }).map((p) => ({ pid: p.pid, binary: (p.argv.find((x) => /containerd-shim-/.test(x)) ?? p.argv[0] ?? '').split('/').pop()! }));
}

export const shimBinary = (runtime: Runtime): string => (runtime === TSSHIM ? SHIM_BINARY : 'containerd-shim-runc-v2');

/** Process state letter from /proc/<pid>/stat ('R', 'S', 'Z', ...), undefined when gone. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** Direct children of pid over all its threads (/proc/<pid>/task/<tid>/children). */
export function childrenOf(pid: number): number[] {
  const out = new Set<number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) out.add(Number(c));
    } catch {
      /* thread exited */
    }
  }
  return [...out];
}

export const zombieChildren = (pid: number): number[] => childrenOf(pid).filter((c) => procState(c) === 'Z');

export const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** The cgroup v1 path of a pid for a controller, from /proc/<pid>/cgroup. */
export function cgroupOf(pid: number, controller: string): string | undefined {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, ctrls, path] = line.split(':');
    if (ctrls !== undefined && ctrls.split(',').includes(controller)) return path;
  }
  return undefined;
}

const CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
];

/** Replaces every occurrence of each key with its value (ids -> <id>, paths -> <bundle>...). */
export function normalise(text: string, replace: Record<string, string>): string {
  let out = text;
  for (const [k, v] of Object.entries(replace).sort((a, b) => b[0].length - a[0].length)) if (k) out = out.split(k).join(v);
  return out;
}

/** `OK` or `<StatusName>: <details>` of a gRPC call, with the replacements applied. */
export async function grpcOutcome(p: Promise<unknown>, replace: Record<string, string> = {}): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    const se = e as ServiceError;
    if (typeof se?.code !== 'number') throw e;
    return normalise(`${CODE_NAMES[se.code] ?? se.code}: ${se.details}`, replace);
  }
}

/** ctr's stderr with the logrus decoration and `ctr: ` prefix removed and replacements applied. */
export function ctrMessage(stderr: string, replace: Record<string, string> = {}): string {
  const text = stderr
    .trim()
    .split('\n')
    .map((l) => {
      const m = /level=(\w+) msg="((?:[^"\\]|\\.)*)"/.exec(l);
      return m ? `${m[1]}: ${m[2]!.replace(/\\"/g, '"')}` : l.replace(/^ctr: /, '');
    })
    .join('\n');
  return normalise(text, replace);
}
