// Runs scenarios x columns on private containerds and judges each cell against the reference.
//
// Order: every scenario on the reference column first (its observations are what the others are
// compared with), then column by column, one cell at a time; a peer reference (gVisor's own shim)
// runs before the column it is the yardstick of (COLUMN_IDS order). Where cells run: env.ts; verdicts:
// judge.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { TSSHIM } from '../test/helpers/tasks.js';
import { join } from 'node:path';
import { writeHandlerConfigs, type Availability, type Column, type ColumnId } from './columns.js';
import { MatrixEnv, openCell, withTimeout } from './env.js';
import { gatherHostFacts } from './hostfacts.js';
import { judgeCell, summarize } from './judge.js';
import type { CellResult, MatrixReport, Observation, Scenario, ShimMode } from './types.js';

export { exitCodeFor, judgeCell, summarize, type CellOutcome } from './judge.js';
export type { ColumnReport, MatrixReport, ScenarioReport } from './types.js';

export interface MatrixOptions {
  columns: Column[];
  scenarios: Scenario[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** tsshim's [shim] mode for every tsshim column (default pod). */
  shimMode?: ShimMode;
  /** The command line that asked for the run, for the report. */
  command?: string;
}

const DEFAULT_TIMEOUT_MS = 90_000;

async function runCell(env: MatrixEnv, column: Column, scenario: Scenario, reference: CellResult | undefined, peer: CellResult | undefined): Promise<CellResult> {
  const t0 = Date.now();
  const cell = openCell(env, column, scenario.id);
  let observation: Observation | undefined;
  let error: unknown;
  try {
    observation = await withTimeout(scenario.run(cell.ctx), scenario.timeoutMs ?? DEFAULT_TIMEOUT_MS, scenario.id);
  } catch (e) {
    error = e;
  }
  await cell.cleanup();
  const base = { durationMs: Date.now() - t0, notes: cell.notes };
  return judgeCell(column, scenario, error !== undefined ? { error } : { observation: observation! }, reference, base, peer);
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
  const shimMode = opts.shimMode ?? 'pod';
  if (shimMode === 'node') for (let i = 0; i < columns.length; i++) columns[i] = withNodeModeDifferences(columns[i]!);
  const env = new MatrixEnv(tmp, configs, runnable, shimMode);
  const results = new Map<string, CellResult>(); // `${scenario}/${column}`
  try {
    if (runnable.length > 0) await env.start();
    for (const column of columns) {
      const a = availability.get(column.id)!;
      for (const s of opts.scenarios) {
        let cell: CellResult;
        const cellWhy = a.run ? column.cellUnavailable?.(s) : undefined;
        if (!a.run) {
          cell = { scenario: s.id, column: column.id, status: 'not-run', detail: a.reason, durationMs: 0 };
        } else if (cellWhy) {
          cell = { scenario: s.id, column: column.id, status: 'not-run', detail: cellWhy, durationMs: 0 };
        } else {
          const peer = column.peerReference ? results.get(`${s.id}/${column.peerReference}`) : undefined;
          cell = await runCell(env, column, s, results.get(`${s.id}/reference`), peer);
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
    ...(opts.command ? { command: opts.command } : {}),
    shimMode,
    durationMs: Date.now() - t0,
    host,
    columns: columns.map((c) => {
      const a = availability.get(c.id)!;
      return {
        id: c.id,
        kind: c.kind,
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

/** What node mode changes by design (ADR 0018), declared for tsshim's columns. */
export const NODE_MODE_DIFFERENCES: Readonly<Record<string, string>> = {
  'grouping:daemonGoneAfterBoth': "node mode: the containerd's one daemon serves on after a group's last task (ADR 0018)",
  'grouping:nodeDaemon': "node mode: the group is served by the containerd's node daemon (ADR 0018)",
};

function withNodeModeDifferences(c: Column): Column {
  if (c.runtimeType !== TSSHIM) return c;
  return { ...c, knownDifferences: { ...(c.knownDifferences ?? {}), ...NODE_MODE_DIFFERENCES } };
}
