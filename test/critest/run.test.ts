// The critest runner's bookkeeping (no critest run): a focused run counts only the focused specs,
// is kept beside the full rows (never in their place), and the differences list points at it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseGinkgoReport, peerVerdict, renderMarkdown, writeDocs, type RunEntry, type SpecResult } from './run.js';

const spec = (leaf: string, State: string, message?: string) => ({
  ContainerHierarchyTexts: ['[k8s.io] Container Mount Readonly'],
  LeafNodeText: leaf,
  LeafNodeType: 'It',
  State,
  ...(message ? { Failure: { Message: message } } : {}),
});

const report = JSON.stringify([
  { SpecReports: [spec('rro', 'passed'), spec('outside the focus', 'skipped'), spec('skipped by critest itself', 'skipped', 'runtime does not implement recursive readonly mounts')] },
]);

test('a focused report leaves out the specs outside the focus; a full one keeps them', () => {
  assert.equal(parseGinkgoReport(report, true).map((s) => [s.name.replace('[k8s.io] Container Mount Readonly ', ''), s.state]), [
    ['rro', 'passed'],
    ['skipped by critest itself', 'skipped'],
  ]);
  assert.is(parseGinkgoReport(report).length, 3);
});

test('writeDocs: a focused run goes to reruns, the full row stays, the difference points at the re-run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsshim-critest-docs-'));
  const name = '[k8s.io] Container Mount Readonly rro';
  const base = { containerd: '2' as const, containerdVersion: '2.4.2', label: 'l', standIn: false, critest: 'v1.37.0', commit: 'c1', seconds: 1, failed: 0 };
  const full = (handler: string, state: 'passed' | 'skipped'): RunEntry => ({ ...base, handler, date: '2026-12-02T04:00:00Z', passed: state === 'passed' ? 1 : 0, skipped: state === 'skipped' ? 1 : 0, specs: [{ name, state }] });
  try {
    writeDocs(dir, [full('runc', 'passed'), full('tsshim-runc', 'skipped')]);
    const rerun: RunEntry = { ...full('tsshim-runc', 'passed'), date: '2026-12-02T11:00:00Z', commit: 'c2', focus: 'Container Mount Readonly' };
    writeDocs(dir, [rerun]);
    const j = JSON.parse(readFileSync(join(dir, 'critest.json'), 'utf8')) as { runs: RunEntry[]; reruns: RunEntry[] };
    assert.is(j.runs.length, 2, 'full rows kept');
    assert.is(j.runs.find((r) => r.handler === 'tsshim-runc')!.specs[0]!.state, 'skipped', 'the full row is not overwritten');
    assert.is(j.reruns.length, 1);
    const md = readFileSync(join(dir, 'critest.md'), 'utf8');
    assert.match(md, `${name} (focused re-run 2026-12-02T11:00 at c2: passed)`);
    assert.match(md, '## Focused re-runs');
    // The same focus again replaces the earlier re-run, nothing else.
    writeDocs(dir, [{ ...rerun, commit: 'c3' }]);
    const j2 = JSON.parse(readFileSync(join(dir, 'critest.json'), 'utf8')) as { reruns: RunEntry[] };
    assert.equal(j2.reruns.map((r) => r.commit), ['c3']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a tsshim-gvisor failure is gVisor's own only when runsc-v1 fails the same spec at the same assertion", () => {
  const base = { containerd: '2' as const, containerdVersion: '2.4.2', label: 'l', standIn: false, critest: 'v1.37.0', commit: 'c1', seconds: 1, date: '2026-12-02T04:00:00Z', skipped: 0 };
  const row = (handler: string, specs: SpecResult[]): RunEntry => ({ ...base, handler, specs, passed: specs.filter((x) => x.state === 'passed').length, failed: specs.filter((x) => x.state === 'failed').length });
  const fail = (name: string, location: string, message = 'm'): SpecResult => ({ name, state: 'failed', location, message });
  const pass = (name: string): SpecResult => ({ name, state: 'passed' });
  const runc = row('runc', [pass('A'), pass('B'), pass('C')]);
  const gv = row('tsshim-gvisor', [fail('A', 'x.go:1', 'tsshim says A'), fail('B', 'x.go:2'), fail('C', 'x.go:3')]);
  const ref = row('runsc-v1', [fail('A', 'x.go:1', 'runsc-v1 says A'), fail('B', 'x.go:9'), pass('C')]);
  const entries = [runc, gv, ref];
  assert.equal(gv.specs.map((x) => peerVerdict(entries, [], gv, x)?.kind), ['same', 'differently', 'peer-passes']);
  assert.is(peerVerdict(entries, [], runc, pass('A')), undefined, 'only a handler with a peer gets a verdict');
  assert.equal(peerVerdict([runc, gv], [], gv, gv.specs[0]!), undefined, 'no peer row, no verdict');
  const md = renderMarkdown(entries);
  assert.match(md, "## Differences that are gVisor's own (same failure under gVisor's own shim)");
  assert.match(md, "1 of 3 are gVisor's own");
  assert.match(md, "- **A** (x.go:1): gVisor's own. tsshim-gvisor: tsshim says A; runsc-v1: runsc-v1 says A.");
  assert.match(md, 'runsc-v1 says A');
  assert.match(md, "**not gVisor's own**: runsc-v1 passes it");
  assert.match(md, 'at another assertion** (x.go:9');
  assert.match(md, "A [gVisor's own: same failure under gVisor's own shim, see below]");
  // Same assertion, another cause (a note says so): the verdict is withheld, never granted by a note.
  const userns = '[k8s.io] Security Context UserNamespaces when Host idmap mount support is needed runtime should support NamespaceMode_POD';
  const gv2 = row('tsshim-gvisor', [fail(userns, 'util.go:241')]);
  const ref2 = row('runsc-v1', [fail(userns, 'util.go:241')]);
  assert.is(peerVerdict([gv2, ref2], [], gv2, gv2.specs[0]!)?.kind, 'same-assertion-other-cause');
});

test.run();
