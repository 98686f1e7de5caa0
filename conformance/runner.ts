// Runs scenarios x columns on private containerds and judges each cell against the reference.
//
// Order: every scenario on the reference column first (its observations are what the others are
// compared with), then column by column, one cell at a time, on one shared private containerd
// (plus one CRI-enabled containerd, started on the first CRI scenario).
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connectContainerd, type ContainerdClient } from '../src/client/containerd.js';
import { connectCri } from '../src/client/cri.js';
import { importTestImage, startContainerd, uniqueId, type PrivateContainerd } from '../test/helpers/containerd.js';
import { CRI_NAMESPACE, criConfig, importCriImages, type CriRuntimeEntry } from '../test/helpers/cri.js';
import { runCommand } from '../test/helpers/proc.js';
import { writeHandlerConfigs, type Availability, type Column, type ColumnId } from './columns.js';
import { diffObservations } from './compare.js';
import { gatherHostFacts, type HostFactsReport } from './hostfacts.js';
import {
  NotRunError,
  UnsupportedError,
  type CellResult,
  type CellStatus,
  type CriContext,
  type CtrDriver,
  type CtrRunOptions,
  type Json,
  type Observation,
  type Scenario,
  type ScenarioContext,
} from './types.js';

export interface ColumnReport {
  id: ColumnId;
  header: string;
  runtimeType: string;
  handlerToml?: string;
  available: boolean;
  /** Why the column did not run (availability probe). */
  reason?: string;
  detail?: string;
}

export interface ScenarioReport {
  id: string;
  group: string;
  title: string;
  requires: string[];
}

export interface MatrixReport {
  format: 'tsshim-conformance/1';
  generatedAt: string;
  durationMs: number;
  host: HostFactsReport;
  columns: ColumnReport[];
  scenarios: ScenarioReport[];
  /** Row-major: for each scenario, one cell per column in `columns` order. */
  cells: CellResult[];
  summary: Record<CellStatus, number>;
  /** Scenarios that failed on the reference column. */
  brokenScenarios: string[];
}

export interface MatrixOptions {
  columns: Column[];
  scenarios: Scenario[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

const DEFAULT_TIMEOUT_MS = 90_000;

/** 1 when any cell failed or any scenario is broken on the reference; not-run/not-supported do not count. */
export function exitCodeFor(report: Pick<MatrixReport, 'cells'>): 0 | 1 {
  return report.cells.some((c) => c.status === 'fail' || c.status === 'broken') ? 1 : 0;
}

export function summarize(cells: CellResult[]): Record<CellStatus, number> {
  const s: Record<CellStatus, number> = { pass: 0, fail: 0, 'not-supported': 0, 'not-run': 0, broken: 0 };
  for (const c of cells) s[c.status]++;
  return s;
}

class Env {
  cd!: PrivateContainerd;
  client!: ContainerdClient;
  image!: string;
  private criEnv: Promise<{ cd: PrivateContainerd; client: Awaited<ReturnType<typeof connectCri>>; handlers: Map<ColumnId, string>; logRoot: string }> | undefined;
  readonly createdIds = new Set<string>();

  constructor(
    readonly tmp: string,
    readonly configs: Map<ColumnId, { ctr?: string; cri?: string }>,
    readonly runnable: Column[],
  ) {}

  async start(): Promise<void> {
    this.cd = await startContainerd({ name: 'conformance' });
    this.image = await importTestImage(this.cd);
    this.client = await connectContainerd(this.cd.address, this.cd.namespace);
  }

  cri(): Promise<{ cd: PrivateContainerd; client: Awaited<ReturnType<typeof connectCri>>; handlers: Map<ColumnId, string>; logRoot: string }> {
    this.criEnv ??= (async () => {
      const handlers = new Map<ColumnId, string>();
      const runtimes: Record<string, CriRuntimeEntry> = {};
      for (const c of this.runnable) {
        if (c.id === 'reference') {
          handlers.set(c.id, 'runc'); // criConfig's built-in io.containerd.runc.v2 entry
          continue;
        }
        const name = `conformance-${c.id}`;
        runtimes[name] = { runtimeType: c.runtimeType, configPath: this.configs.get(c.id)?.cri };
        handlers.set(c.id, name);
      }
      const cd = await startContainerd({ name: 'conf-cri', extraConfig: criConfig(runtimes, { cniDir: join(this.tmp, 'cni') }) });
      try {
        await importCriImages(cd);
        const client = await connectCri(cd.address);
        const logRoot = join(this.tmp, 'pods');
        mkdirSync(logRoot, { recursive: true });
        return { cd, client, handlers, logRoot };
      } catch (e) {
        await cd.stop();
        throw e;
      }
    })();
    return this.criEnv;
  }

  async stop(): Promise<void> {
    this.client?.close();
    if (this.criEnv) {
      const c = await this.criEnv.catch(() => undefined);
      c?.client.close();
      await c?.cd.stop();
    }
    await this.cd?.stop();
    // runsc containers of a failed gVisor cell are ours to remove (the helper removes runc ones).
    for (const ns of [this.cd?.namespace, CRI_NAMESPACE]) {
      if (!ns) continue;
      const root = join('/run/containerd/runsc', ns);
      let files: string[] = [];
      try {
        files = readdirSync(root);
      } catch {
        continue;
      }
      for (const id of this.createdIds) {
        if (files.some((f) => f.startsWith(id + '_') || f === id)) {
          await runCommand('runsc', ['--root', root, 'delete', '-force', id], { timeoutMs: 20_000 }).catch(() => undefined);
        }
      }
    }
  }
}

function ctrDriver(env: Env, column: Column, spawned: Set<ChildProcess>): CtrDriver {
  const cd = env.cd;
  const cfg = env.configs.get(column.id)?.ctr;
  const runtimeFlags = ['--runtime', column.runtimeType, ...(cfg ? ['--runtime-config-path', cfg] : [])];
  const runArgs = (id: string, cmd: string[], o: CtrRunOptions = {}) => [
    'run',
    ...(o.rm ? ['--rm'] : []),
    ...(o.detach ? ['-d'] : []),
    ...(o.tty ? ['-t'] : []),
    ...(o.flags ?? []),
    ...runtimeFlags,
    env.image,
    id,
    ...cmd,
  ];
  return {
    runtimeFlags,
    raw: (args, opts = {}) => cd.ctr(args, { input: opts.input, timeoutMs: opts.timeoutMs ?? 60_000 }),
    run: (id, cmd, o = {}) => cd.ctr(runArgs(id, cmd, o), { input: o.input, timeoutMs: o.timeoutMs ?? 60_000 }),
    runArgv: (id, cmd, o = {}) => ['ctr', '--address', cd.address, '-n', cd.namespace, ...runArgs(id, cmd, o)],
    createContainer: (id, cmd, o = {}) =>
      cd.ctr(['containers', 'create', ...(o.tty ? ['-t'] : []), ...(o.flags ?? []), ...runtimeFlags, env.image, id, ...cmd], { timeoutMs: 60_000 }),
    spawn: (args) => {
      const child = cd.ctrSpawn(args);
      spawned.add(child);
      return child;
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const firstLine = (s: string) => s.split('\n')[0]!.slice(0, 400);

async function runCell(env: Env, column: Column, scenario: Scenario, reference: CellResult | undefined): Promise<CellResult> {
  const t0 = Date.now();
  const ids: string[] = [];
  const deferred: Array<() => unknown | Promise<unknown>> = [];
  const notes: { [k: string]: Json } = {};
  const spawned = new Set<ChildProcess>();
  const tmp = mkdtempSync(join(env.tmp, `${column.id}-${scenario.id}-`.slice(0, 60)));
  const ctx: ScenarioContext = {
    column,
    cd: env.cd,
    ctr: ctrDriver(env, column, spawned),
    client: env.client,
    image: env.image,
    tmp,
    cri: async (): Promise<CriContext> => {
      const c = await env.cri();
      return { cd: c.cd, client: c.client, runtimeHandler: c.handlers.get(column.id)!, logRoot: c.logRoot };
    },
    uniqueId: (prefix = 'c') => {
      const id = uniqueId(`${prefix}-${column.id}`.slice(0, 20));
      ids.push(id);
      env.createdIds.add(id);
      return id;
    },
    own: (id) => {
      env.createdIds.add(id);
    },
    note: (k, v) => {
      notes[k] = v;
    },
    defer: (fn) => {
      deferred.push(fn);
    },
  };

  let observation: Observation | undefined;
  let error: unknown;
  try {
    observation = await withTimeout(scenario.run(ctx), scenario.timeoutMs ?? DEFAULT_TIMEOUT_MS, scenario.id);
  } catch (e) {
    error = e;
  }
  // Clean up whatever the scenario left: deferred actions, spawned ctr, then the containers it named.
  for (const fn of deferred.reverse()) await withTimeout(Promise.resolve().then(fn), 30_000, 'cleanup').catch(() => undefined);
  for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const id of ids) {
    const listed = (await env.cd.ctr(['containers', 'ls', '-q'], { timeoutMs: 10_000 }).catch(() => ({ stdout: '' }))).stdout.split('\n').includes(id);
    if (!listed) continue;
    await env.cd.ctr(['task', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 10_000 }).catch(() => undefined);
    await env.cd.ctr(['task', 'rm', '-f', id], { timeoutMs: 30_000 }).catch(() => undefined);
    await env.cd.ctr(['containers', 'rm', id], { timeoutMs: 30_000 }).catch(() => undefined);
  }
  rmSync(tmp, { recursive: true, force: true });
  const base = { durationMs: Date.now() - t0, notes };
  return judgeCell(column, scenario, error !== undefined ? { error } : { observation: observation! }, reference, base);
}

export type CellOutcome = { observation: Observation } | { error: unknown };

/**
 * The verdict on one cell (pure): not-run / not-supported from the scenario's exceptions; for the
 * reference, pass or broken by the scenario's own expectations; for other columns, fail when the
 * expectations fail or the observation differs from a passing reference's (differences the column
 * declares are reported but accepted).
 */
export function judgeCell(
  column: Pick<Column, 'id' | 'declares' | 'knownDifferences'>,
  scenario: Pick<Scenario, 'id' | 'requires' | 'expect'>,
  outcome: CellOutcome,
  reference: CellResult | undefined,
  base: { durationMs: number; notes?: { [k: string]: Json } },
): CellResult {
  const head = { scenario: scenario.id, column: column.id, durationMs: base.durationMs, ...(base.notes && Object.keys(base.notes).length ? { notes: base.notes } : {}) };
  const isRef = column.id === 'reference';
  const failStatus: CellStatus = isRef ? 'broken' : 'fail';
  const undeclared = (scenario.requires ?? []).filter((op) => !column.declares(op));

  if ('error' in outcome) {
    const error = outcome.error;
    if (error instanceof NotRunError) return { ...head, status: 'not-run', detail: error.message };
    if (error instanceof UnsupportedError) {
      const cap = error.capability ?? undeclared[0];
      if (cap !== undefined && !column.declares(cap)) {
        return { ...head, status: 'not-supported', detail: `handler declares no "${cap}"; the shim answered Unimplemented: ${error.message}` };
      }
      const declared = scenario.requires?.length ? `although the handler declares ${JSON.stringify(scenario.requires)}` : '(no optional operation involved)';
      return { ...head, status: failStatus, detail: `${isRef ? 'broken scenario: ' : ''}the shim answered Unimplemented ${declared}: ${error.message}` };
    }
    const msg = (error as Error)?.message ?? String(error);
    return { ...head, status: failStatus, detail: `${isRef ? 'broken scenario: ' : ''}error: ${firstLine(msg)}`, problems: [msg.slice(0, 2000)] };
  }

  const obs = outcome.observation;
  const problems = scenario.expect?.(obs) ?? [];
  if (isRef) {
    return problems.length
      ? { ...head, status: 'broken', detail: `broken scenario: the reference fails its expectations: ${problems.join('; ')}`, problems, observation: obs }
      : { ...head, status: 'pass', detail: 'reference observation', observation: obs };
  }
  const refOk = reference?.status === 'pass' && reference.observation !== undefined;
  const diff = refOk ? diffObservations(reference!.observation!, obs) : [];
  const known = column.knownDifferences ?? {};
  const reasonOf = (line: string) => known[`${scenario.id}:${line.slice(0, line.indexOf(': reference='))}`];
  const unexplained = diff.filter((d) => reasonOf(d) === undefined);
  if (problems.length || unexplained.length) {
    const parts = [...problems, ...unexplained.map((d) => `differs from the reference: ${d}`)];
    return { ...head, status: 'fail', detail: parts.join('; ').slice(0, 1000), ...(diff.length ? { diff } : {}), ...(problems.length ? { problems } : {}), observation: obs };
  }
  const extras: string[] = [];
  for (const d of diff) extras.push(`declared difference (${reasonOf(d)}): ${d}`);
  if (!refOk) extras.push(`no reference observation (reference ${reference?.status ?? 'absent'}): judged by the scenario's own expectations`);
  if (undeclared.length) extras.push(`works although the handler does not declare ${JSON.stringify(undeclared)}`);
  return {
    ...head,
    status: 'pass',
    detail: extras.length ? extras.join('; ') : 'same observation as the reference',
    ...(diff.length ? { diff } : {}),
    observation: obs,
  };
}

/** Runs the matrix. The reference column is always run (first); columns that cannot run here are not-run cells. */
export async function runMatrix(opts: MatrixOptions): Promise<MatrixReport> {
  const t0 = Date.now();
  const log = opts.log ?? (() => undefined);
  const columns = [...opts.columns].sort((a, b) => (a.id === 'reference' ? -1 : b.id === 'reference' ? 1 : 0));
  if (columns[0]?.id !== 'reference') throw new Error('runMatrix: the reference column is required');
  const host = await gatherHostFacts();
  const availability = new Map<ColumnId, Availability>();
  for (const c of columns) {
    const a = await c.probe();
    availability.set(c.id, a);
    log(`column ${c.id}: ${a.run ? `runs${a.detail ? ` (${a.detail})` : ''}` : `not run: ${a.reason}`}`);
  }
  const runnable = columns.filter((c) => availability.get(c.id)!.run);
  const tmp = mkdtempSync('/tmp/tsshim-conformance-');
  const configs = writeHandlerConfigs(join(tmp, 'handlers'), columns);
  const env = new Env(tmp, configs, runnable);
  const results = new Map<string, CellResult>(); // `${scenario}/${column}`
  try {
    if (runnable.length > 0) await env.start();
    for (const column of columns) {
      const a = availability.get(column.id)!;
      for (const s of opts.scenarios) {
        let cell: CellResult;
        if (!a.run) {
          cell = { scenario: s.id, column: column.id, status: 'not-run', detail: a.reason, durationMs: 0 };
        } else {
          cell = await runCell(env, column, s, results.get(`${s.id}/reference`));
          log(`[${column.id}] ${s.id}: ${cell.status} (${cell.durationMs} ms)${cell.status === 'pass' ? '' : ` ${cell.detail.slice(0, 300)}`}`);
        }
        results.set(`${s.id}/${column.id}`, cell);
      }
    }
  } finally {
    await env.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  const cells: CellResult[] = [];
  for (const s of opts.scenarios) for (const c of columns) cells.push(results.get(`${s.id}/${c.id}`)!);
  return {
    format: 'tsshim-conformance/1',
    generatedAt: new Date().toISOString(),
    durationMs: Date.now() - t0,
    host,
    columns: columns.map((c) => {
      const a = availability.get(c.id)!;
      return {
        id: c.id,
        header: c.header,
        runtimeType: c.runtimeType,
        ...(c.handlerToml ? { handlerToml: c.handlerToml } : {}),
        available: a.run,
        ...(a.run ? (a.detail ? { detail: a.detail } : {}) : { reason: a.reason }),
      };
    }),
    scenarios: opts.scenarios.map((s) => ({ id: s.id, group: s.group, title: s.title, requires: [...(s.requires ?? [])] })),
    cells,
    summary: summarize(cells),
    brokenScenarios: cells.filter((c) => c.status === 'broken').map((c) => c.scenario),
  };
}
