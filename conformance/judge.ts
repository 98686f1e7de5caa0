// The verdicts (pure): one cell against the reference, the summary, the exit code.
import type { Column } from './columns.js';
import { diffObservations } from './compare.js';
import { NotRunError, UnsupportedError, type CellResult, type CellStatus, type Json, type MatrixReport, type Observation, type Scenario } from './types.js';

/** 1 when any cell failed or any scenario is broken on the reference; not-run/not-supported do not count. */
export function exitCodeFor(report: Pick<MatrixReport, 'cells'>): 0 | 1 {
  return report.cells.some((c) => c.status === 'fail' || c.status === 'broken') ? 1 : 0;
}

export function summarize(cells: CellResult[]): Record<CellStatus, number> {
  const s: Record<CellStatus, number> = { pass: 0, fail: 0, 'not-supported': 0, 'not-run': 0, broken: 0, differs: 0 };
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
  column: Pick<Column, 'id' | 'declares' | 'knownDifferences' | 'peerReferenceFor' | 'peerReference'>,
  scenario: Pick<Scenario, 'id' | 'requires' | 'expect'>,
  outcome: CellOutcome,
  reference: CellResult | undefined,
  base: { durationMs: number; notes?: { [k: string]: Json } },
  peer?: CellResult,
): CellResult {
  const head = { scenario: scenario.id, column: column.id, durationMs: base.durationMs, ...(base.notes && Object.keys(base.notes).length ? { notes: base.notes } : {}) };
  if (column.peerReferenceFor !== undefined) return judgePeerReference(head, scenario, outcome, reference);
  const cell = judgeAgainstReference(head, column, scenario, outcome, reference);
  return column.peerReference !== undefined ? withPeer(cell, column, scenario, outcome, peer) : cell;
}

type Head = Pick<CellResult, 'scenario' | 'column' | 'durationMs' | 'notes'>;

/**
 * A peer reference (gVisor's own shim) is an observation, not a verdict on tsshim: "pass" when it
 * behaves like runc-v2, "differs" (with the diff, the problems or its error) when it does not.
 */
function judgePeerReference(head: Head, scenario: Pick<Scenario, 'expect'>, outcome: CellOutcome, reference: CellResult | undefined): CellResult {
  if ('error' in outcome) {
    const error = outcome.error;
    if (error instanceof NotRunError) return { ...head, status: 'not-run', detail: error.message };
    const msg = (error as Error)?.message ?? String(error);
    const what = error instanceof UnsupportedError ? 'answered Unimplemented' : 'error';
    return { ...head, status: 'differs', detail: `gVisor's own shim ${what}: ${firstLine(msg)}`, problems: [msg.slice(0, 2000)] };
  }
  const obs = outcome.observation;
  const problems = scenario.expect?.(obs) ?? [];
  const refOk = reference?.status === 'pass' && reference.observation !== undefined;
  const diff = refOk ? diffObservations(reference!.observation!, obs) : [];
  if (problems.length || diff.length) {
    const parts = [...problems, ...diff.map((d) => `differs from runc-v2: ${d}`)];
    return { ...head, status: 'differs', detail: `gVisor's own shim: ${parts.join('; ')}`.slice(0, 1000), ...(diff.length ? { diff } : {}), ...(problems.length ? { problems } : {}), observation: obs };
  }
  return { ...head, status: 'pass', detail: refOk ? 'same observation as the reference' : `no reference observation (reference ${reference?.status ?? 'absent'}): judged by the scenario's own expectations`, observation: obs };
}

/** The path of a `path: reference=.. column=..` diff line. */
const pathOf = (line: string) => line.slice(0, line.indexOf(': reference='));
const within = (a: string, b: string) => a === b || a.startsWith(`${b}.`) || a.startsWith(`${b}[`) || b === '(root)';

/**
 * The second yardstick: a difference from runc-v2 that gVisor's own shim shows too (same value at
 * that path) is gVisor's own, not a tsshim failure; an operation tsshim calls unsupported that
 * gVisor's own shim carries out is a failure. The cell always says how it compares with the peer.
 */
function withPeer(
  cell: CellResult,
  column: Pick<Column, 'knownDifferences'>,
  scenario: Pick<Scenario, 'id' | 'expect'>,
  outcome: CellOutcome,
  peer: CellResult | undefined,
): CellResult {
  const known = column.knownDifferences ?? {};
  const scenarioId = scenario.id;
  if (cell.status === 'not-run' || !peer || peer.status === 'not-run') return cell;
  const peerObs = peer.observation;
  if ('error' in outcome) {
    if (cell.status === 'not-supported' && peerObs !== undefined && (peer.problems ?? []).length === 0) {
      return { ...cell, status: 'fail', detail: `${cell.detail}; but gVisor's own shim does it (${peer.status === 'pass' ? 'same observation as runc-v2' : peer.detail})`.slice(0, 1000) };
    }
    return { ...cell, detail: `${cell.detail}; gVisor's own shim: ${peer.status === 'pass' ? 'same observation as runc-v2' : peer.detail}`.slice(0, 1000) };
  }
  const obs = outcome.observation;
  if (peerObs === undefined) {
    return { ...cell, detail: `${cell.detail}; gVisor's own shim has no observation (${peer.detail})`.slice(0, 1000) };
  }
  const peerDiff = diffObservations(peerObs, obs);
  const vsPeer = peerDiff.length ? `differs from gVisor's own shim: ${peerDiff.join('; ')}` : "same observation as gVisor's own shim";
  if (cell.status !== 'fail') return { ...cell, detail: `${cell.detail}; ${vsPeer}`.slice(0, 1000), ...(peerDiff.length ? { peerDiff } : {}) };
  // Which of the failure's parts gVisor's own shim shares.
  const peerProblems = new Set(peer.problems ?? []);
  const ownProblems = (scenario.expect?.(obs) ?? []).filter((p) => !peerProblems.has(p));
  const diff = cell.diff ?? [];
  const sharedDiff = diff.filter((d) => !peerDiff.some((p) => within(pathOf(p), pathOf(d)) || within(pathOf(d), pathOf(p))));
  const ownDiff = diff.filter((d) => !sharedDiff.includes(d) && known[`${scenarioId}:${pathOf(d)}`] === undefined);
  if (ownProblems.length === 0 && ownDiff.length === 0) {
    const shared = [...(cell.problems ?? []), ...sharedDiff];
    return {
      ...cell,
      status: 'pass',
      detail: `gVisor's own: containerd-shim-runsc-v1 differs from runc-v2 the same way: ${shared.join('; ')}; ${vsPeer}`.slice(0, 1000),
      ...(peerDiff.length ? { peerDiff } : {}),
    };
  }
  return { ...cell, detail: `${cell.detail}; ${vsPeer}`.slice(0, 1000), ...(peerDiff.length ? { peerDiff } : {}) };
}

function judgeAgainstReference(
  head: Head,
  column: Pick<Column, 'id' | 'declares' | 'knownDifferences'>,
  scenario: Pick<Scenario, 'id' | 'requires' | 'expect'>,
  outcome: CellOutcome,
  reference: CellResult | undefined,
): CellResult {
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
