// The verdicts (pure): one cell against the reference, the summary, the exit code.
import type { Column } from './columns.js';
import { diffObservations } from './compare.js';
import { NotRunError, UnsupportedError, type CellResult, type CellStatus, type Json, type MatrixReport, type Observation, type Scenario } from './types.js';

/** 1 when any cell failed or any scenario is broken on the reference; not-run/not-supported do not count. */
export function exitCodeFor(report: Pick<MatrixReport, 'cells'>): 0 | 1 {
  return report.cells.some((c) => c.status === 'fail' || c.status === 'broken') ? 1 : 0;
}

export function summarize(cells: CellResult[]): Record<CellStatus, number> {
  const s: Record<CellStatus, number> = { pass: 0, fail: 0, 'not-supported': 0, 'not-run': 0, broken: 0 };
  for (const c of cells) s[c.status]++;
  return s;
}

export type CellOutcome = { observation: Observation } | { error: unknown };

const firstLine = (s: string) => s.split('\n')[0]!.slice(0, 400);

/**
 * The verdict on one cell: not-run / not-supported from the scenario's exceptions; for the
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
