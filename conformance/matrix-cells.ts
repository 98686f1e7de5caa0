// The matrix as uvu tests (matrix.test.ts in pod mode, matrix-node.test.ts in node mode): every
// scenario on every column this host can run, one test per cell. A cell must pass; not-run and
// not-supported cells are skipped with their reason; a scenario that fails on the reference
// fails the run as broken.
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';
import { skipWithReason } from '../test/helpers/skip.js';
import { selectColumns } from './columns.js';
import { renderText, writeReports } from './report.js';
import { runMatrix } from './runner.js';
import { selectScenarios } from './scenarios/index.js';
import type { ShimMode } from './types.js';

/** Runs the matrix (TSSHIM_CONFORMANCE_HANDLERS/SCENARIOS narrow it) and registers its cells on `test`. */
export async function registerMatrix(test: Test, shimMode: ShimMode, outDir: string): Promise<void> {
  const started = Date.now();
  const tag = shimMode === 'node' ? ' (node mode)' : '';
  const report = await runMatrix({
    columns: selectColumns(process.env.TSSHIM_CONFORMANCE_HANDLERS),
    scenarios: selectScenarios(process.env.TSSHIM_CONFORMANCE_SCENARIOS),
    log: (line) => console.log(`[matrix${tag}] ${line}`),
    shimMode,
  });
  const files = writeReports(report, outDir);
  console.log(renderText(report));
  console.log(`[matrix${tag}] ${((Date.now() - started) / 1000).toFixed(0)} s; reports: ${files.json}, ${files.markdown}, ${files.html}`);

  test(`the reference column ran: io.containerd.runc.v2 is available${tag}`, () => {
    const ref = report.columns.find((c) => c.id === 'reference');
    assert.ok(ref?.available, `reference not run: ${ref?.reason}`);
  });

  test(`no scenario is broken (fails on the reference)${tag}`, () => {
    assert.equal(
      report.cells.filter((c) => c.status === 'broken').map((c) => `${c.scenario}: ${c.detail}`),
      [],
    );
  });

  // A peer reference (gVisor's own shim) is a yardstick, not a tsshim verdict: its cells are in the
  // reports ("differs" where it is not runc-v2); the test only checks that it ran at all.
  const peerRefs = selectColumns(process.env.TSSHIM_CONFORMANCE_HANDLERS).filter((c) => c.peerReferenceFor !== undefined);
  for (const col of peerRefs) {
    const rep = report.columns.find((c) => c.id === col.id)!;
    if (!rep.available) {
      skipWithReason(test, `${col.id}: gVisor's own shim as the ${col.peerReferenceFor} yardstick${tag}`, `not run: ${rep.reason}`);
      continue;
    }
    const cells = report.cells.filter((c) => c.column === col.id);
    if (cells.every((c) => c.status === 'not-run')) {
      skipWithReason(test, `${col.id}: gVisor's own shim as the ${col.peerReferenceFor} yardstick${tag}`, `no selected scenario runs on it: ${[...new Set(cells.map((c) => c.detail))].join('; ')}`);
      continue;
    }
    test(`${col.id}: gVisor's own shim ran (some cell has an observation)${tag}`, () => {
      assert.ok(cells.some((c) => c.observation !== undefined), cells.map((c) => `${c.scenario}: ${c.status} ${c.detail}`).join('\n'));
    });
  }

  for (const cell of report.cells) {
    if (cell.column === 'reference' || peerRefs.some((c) => c.id === cell.column)) continue;
    const name = `${cell.scenario} [${cell.column}]${tag}`;
    if (cell.status === 'not-run' || cell.status === 'not-supported') {
      skipWithReason(test, name, `${cell.status}: ${cell.detail}`);
      continue;
    }
    test(name, () => {
      const extra = cell.diff?.length ? `\n${cell.diff.join('\n')}` : '';
      assert.ok(cell.status === 'pass', `${cell.status}: ${cell.detail}${extra}${cell.notes ? `\nnotes: ${JSON.stringify(cell.notes)}` : ''}`);
    });
  }
}
