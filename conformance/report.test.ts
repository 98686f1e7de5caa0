// The report renderers and the verdict logic, on a fixed results object (no containerd): the
// HTML page is loaded in headless Chromium and its DOM, after the page's own script ran, is checked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { which } from '../src/composition/host.js';
import { RUNTIME_TYPE } from '../src/shim-api/runtime-type.js';
import { runCommand } from '../test/helpers/proc.js';
import { skipWithReason } from '../test/helpers/skip.js';
import { diffObservations } from './compare.js';
import { headline, renderHtml, renderMarkdown, renderText, writeReports } from './report.js';
import { exitCodeFor, judgeCell, summarize, type MatrixReport } from './runner.js';
import { NotRunError, UnsupportedError, type CellResult, type Scenario } from './types.js';

function cell(scenario: string, column: string, status: CellResult['status'], detail: string = status): CellResult {
  return { scenario, column, status, detail, durationMs: 12 };
}

/** 4 scenarios x 3 columns, every status at least once. */
function fixture(): MatrixReport {
  const cells: CellResult[] = [
    cell('exit-code-42', 'reference', 'pass'), cell('exit-code-42', 'runc', 'pass'), cell('exit-code-42', 'gvisor', 'pass'),
    cell('stats', 'reference', 'pass'), { ...cell('stats', 'runc', 'fail', 'differs from the reference: typeUrl'), diff: ['typeUrl: reference="a" column=(absent)'] }, cell('stats', 'gvisor', 'fail'),
    cell('update-memory', 'reference', 'pass'), cell('update-memory', 'runc', 'pass'), cell('update-memory', 'gvisor', 'not-supported', 'runsc does not support update: <not implemented>'),
    cell('checkpoint-restore', 'reference', 'broken'), cell('checkpoint-restore', 'runc', 'not-run', 'host limit: criu'), cell('checkpoint-restore', 'gvisor', 'not-run'),
  ];
  return {
    format: 'tsshim-conformance/1',
    generatedAt: '2026-01-02T03:04:05.000Z',
    durationMs: 61_000,
    host: { kernel: '6.1.0', cgroupMode: 'hybrid', cgroupDetail: 'v1 + v2', os: 'Debian GNU/Linux 12', node: 'v20.0.0', tsshim: '0.1.0', versions: { runc: 'runc version 1.1.5', runsc: 'runsc version 0.0~20221219.0' } },
    columns: [
      { id: 'reference', header: 'reference (io.containerd.runc.v2)', runtimeType: 'io.containerd.runc.v2', available: true },
      { id: 'runc', header: 'runc (tsshim, handler runc)', runtimeType: RUNTIME_TYPE, handlerToml: 'handler = "runc"\n', available: true },
      { id: 'gvisor', header: 'gvisor <ptrace>', runtimeType: RUNTIME_TYPE, available: true },
    ],
    scenarios: ['exit-code-42', 'stats', 'update-memory', 'checkpoint-restore'].map((id) => ({ id, group: 'g', title: `title of ${id}`, requires: [] })),
    cells,
    summary: summarize(cells),
    brokenScenarios: ['checkpoint-restore'],
  };
}

test('diffObservations: equal objects give nothing; leaves, absent keys and scalar arrays give one line each', () => {
  assert.equal(diffObservations({ a: 1, b: [1, 2], c: { d: 'x' } }, { a: 1, b: [1, 2], c: { d: 'x' } }), []);
  assert.equal(diffObservations({ a: 1, b: ['x', 'y'] }, { a: 2, b: ['y', 'x'] }), ['a: reference=1 column=2', 'b: reference=["x","y"] column=["y","x"]']);
  assert.equal(diffObservations({ a: { b: true } }, { a: {}, c: null }), ['a.b: reference=true column=(absent)', 'c: reference=(absent) column=null']);
});

const col = (id: string, declares: (op: string) => boolean = () => true, knownDifferences?: Record<string, string>) => ({ id: id as 'runc', declares, knownDifferences });
const scen = (over: Partial<Scenario> = {}): Pick<Scenario, 'id' | 'requires' | 'expect'> => ({ id: 's', expect: (o) => (o.x === 1 ? [] : ['x must be 1']), ...over });

test('judgeCell: reference pass/broken, column pass/fail by diff and expectations, declared differences accepted', () => {
  const base = { durationMs: 5 };
  const ref = judgeCell(col('reference'), scen(), { observation: { x: 1, y: 'a' } }, undefined, base);
  assert.is(ref.status, 'pass');
  assert.is(judgeCell(col('reference'), scen(), { observation: { x: 2 } }, undefined, base).status, 'broken');
  assert.is(judgeCell(col('reference'), scen(), { error: new Error('boom') }, undefined, base).status, 'broken');
  assert.is(judgeCell(col('runc'), scen(), { observation: { x: 1, y: 'a' } }, ref, base).status, 'pass');
  const diff = judgeCell(col('runc'), scen(), { observation: { x: 1, y: 'b' } }, ref, base);
  assert.is(diff.status, 'fail');
  assert.equal(diff.diff, ['y: reference="a" column="b"']);
  assert.is(judgeCell(col('runc'), scen(), { observation: { x: 3, y: 'a' } }, ref, base).status, 'fail');
  const known = judgeCell(col('gvisor', () => true, { 's:y': 'sandbox pids' }), scen(), { observation: { x: 1, y: 'b' } }, ref, base);
  assert.is(known.status, 'pass');
  assert.match(known.detail, /declared difference \(sandbox pids\)/);
  // Without a passing reference, only the scenario's own expectations count.
  const noRef = judgeCell(col('runc'), scen(), { observation: { x: 1, y: 'zzz' } }, { ...ref, status: 'broken' }, base);
  assert.is(noRef.status, 'pass');
  assert.match(noRef.detail, /no reference observation/);
});

test("judgeCell with gVisor's own shim as the peer: shared differences are gVisor's own, own ones fail, the peer itself only differs", () => {
  const base = { durationMs: 1 };
  const ref = judgeCell(col('reference'), scen(), { observation: { x: 1, y: 'a', z: 0 } }, undefined, base);
  const peerCol = { ...col('gvisor-ref'), peerReferenceFor: 'gvisor' as const };
  const peer = judgeCell(peerCol, scen(), { observation: { x: 1, y: 'b', z: 0 } }, ref, base);
  assert.is(peer.status, 'differs');
  assert.equal(peer.diff, ['y: reference="a" column="b"']);
  assert.is(judgeCell(peerCol, scen(), { error: new Error('hangs') }, ref, base).status, 'differs');
  assert.is(judgeCell(peerCol, scen(), { error: new NotRunError('no') }, ref, base).status, 'not-run');
  const gv = (declares: (op: string) => boolean = () => true) => ({ ...col('gvisor', declares), peerReference: 'gvisor-ref' as const });
  const shared = judgeCell(gv(), scen(), { observation: { x: 1, y: 'b', z: 0 } }, ref, base, peer);
  assert.is(shared.status, 'pass');
  assert.match(shared.detail, /^gVisor's own: .*y: reference="a" column="b".*same observation as gVisor's own shim/);
  const own = judgeCell(gv(), scen(), { observation: { x: 1, y: 'b', z: 9 } }, ref, base, peer);
  assert.is(own.status, 'fail');
  assert.equal(own.peerDiff, ['z: reference=0 column=9']);
  const better = judgeCell(gv(), scen(), { observation: { x: 1, y: 'a', z: 0 } }, ref, base, peer);
  assert.is(better.status, 'pass');
  assert.match(better.detail, /differs from gVisor's own shim: y/);
  const unsupported = judgeCell(gv((op) => op !== 'update'), scen({ requires: ['update'] }), { error: new UnsupportedError('no update', 'update') }, ref, base, peer);
  assert.is(unsupported.status, 'fail');
  assert.match(unsupported.detail, /but gVisor's own shim does it/);
  const peerCannot = judgeCell(peerCol, scen(), { error: new UnsupportedError('nope') }, ref, base);
  assert.is(judgeCell(gv((op) => op !== 'update'), scen({ requires: ['update'] }), { error: new UnsupportedError('no update', 'update') }, ref, base, peerCannot).status, 'not-supported');
});

test('judgeCell: NotRunError -> not-run; Unimplemented -> not-supported only when the handler does not declare the operation', () => {
  const base = { durationMs: 1 };
  assert.is(judgeCell(col('runc'), scen(), { error: new NotRunError('criu check fails') }, undefined, base).status, 'not-run');
  const ns = judgeCell(col('gvisor', (op) => op !== 'update'), scen({ requires: ['update'] }), { error: new UnsupportedError('runsc does not support update', 'update') }, undefined, base);
  assert.is(ns.status, 'not-supported');
  assert.match(ns.detail, /runsc does not support update/);
  const declared = judgeCell(col('runc'), scen({ requires: ['update'] }), { error: new UnsupportedError('nope', 'update') }, undefined, base);
  assert.is(declared.status, 'fail');
  assert.match(declared.detail, /although the handler declares \["update"\]/);
});

test('exitCodeFor: 1 for a fail or broken cell, 0 when only pass, not-run and not-supported', () => {
  const r = fixture();
  assert.is(exitCodeFor(r), 1);
  assert.is(exitCodeFor({ cells: r.cells.filter((c) => c.status !== 'fail' && c.status !== 'broken') }), 0);
  assert.equal(r.summary, { pass: 6, fail: 2, 'not-supported': 1, 'not-run': 2, broken: 1, differs: 0 });
});

test('renderText and renderMarkdown: one row per scenario, statuses, host facts and failure details', () => {
  const r = fixture();
  const text = renderText(r);
  const rows = text.split('\n').filter((l) => /^(exit-code-42|stats|update-memory|checkpoint-restore)\s/.test(l));
  assert.is(rows.length, 4);
  assert.match(rows[1]!, /^stats\s+pass\s+FAIL\s+FAIL$/);
  assert.match(rows[2]!, /not supported$/);
  // The headline counts per column, the reference apart from tsshim's own handlers and stand-ins.
  assert.match(text, /^reference \(io\.containerd\.runc\.v2, compared against, not tsshim\): reference 3 pass, 0 fail, 1 broken$/m);
  assert.match(text, /^tsshim's own handlers: runc 2 pass, 1 fail, 1 not run; gvisor 1 pass, 1 fail, 1 not supported, 1 not run$/m);
  assert.match(text, /^4 scenarios x 3 columns = 12 cells$/m);
  assert.not.match(text, /stand-ins/);
  const standIn = headline({ ...r, columns: r.columns.map((c) => (c.id === 'gvisor' ? { ...c, kind: 'stand-in' as const } : c)) });
  assert.match(standIn[1]!, /^tsshim's own handlers: runc 2 pass, 1 fail, 1 not run$/);
  assert.match(standIn[2]!, /^stand-ins \(tsshim handler in front of a substitute backend, not the real one\): gvisor 1 pass/);
  const unavailable = headline({ ...r, columns: r.columns.map((c) => (c.id === 'gvisor' ? { ...c, available: false, reason: 'runsc not installed' } : c)) });
  assert.match(unavailable[1]!, /gvisor not run \(runsc not installed\)$/);
  const md = renderMarkdown(r);
  assert.match(md, /\| kernel \(`uname -r`\) \| 6\.1\.0 \|/);
  assert.match(md, /\| `runc` \| runc version 1\.1\.5 \|/);
  assert.match(md, /## Failures\n\n- `stats` on \*\*runc\*\*: differs from the reference: typeUrl\n  - typeUrl: reference="a" column=\(absent\)/);
  assert.match(md, /## Broken scenarios/);
  assert.is(md.split('\n').filter((l) => l.startsWith('| `') && l.includes('(12 ms)')).length, 4, 'matrix rows');
});

const chromium = which('chromium') ?? which('chromium-browser');
if (!chromium) {
  skipWithReason(test, 'conformance.html in headless Chromium', 'chromium not installed (apt-get install chromium; scripts/setup.sh installs it unless TSSHIM_WITH_CHROMIUM=0)');
} else {
  test('conformance.html in headless Chromium: rows x columns cells with colour classes, counts and #open filled in by its script', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsshim-report-'));
    try {
      const r = fixture();
      const files = writeReports(r, dir);
      assert.is(files.html, join(dir, 'conformance.html'));
      assert.is(readFileSync(files.html, 'utf8'), renderHtml(r));
      assert.not.match(renderHtml(r), /<(link|script)[^>]+(src|href)=/, 'self-contained: no external scripts or stylesheets');
      const profile = join(dir, 'profile');
      const dump = async (url: string) => {
        const out = await runCommand(
          chromium,
          ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--dump-dom', url],
          { timeoutMs: 90_000 },
        );
        assert.is(out.exitCode, 0, out.stderr.slice(-2000));
        return out.stdout;
      };
      const dom = await dump(`file://${files.html}#open=stats/runc,update-memory/gvisor`);
      assert.match(dom, /<table id="matrix" data-ready="1">/, 'the page script ran to its end');
      const cells = [...dom.matchAll(/<td class="cell ([a-z-]+)( open)?" data-status="([a-z-]+)"/g)];
      assert.is(cells.length, r.scenarios.length * r.columns.length, 'rows x columns cells');
      assert.equal(cells.map((m) => m[1]), r.cells.map((c) => c.status), 'colour class = status, row-major');
      assert.ok(cells.every((m) => m[1] === m[3]));
      for (const status of ['pass', 'fail', 'not-supported', 'not-run', 'broken']) assert.ok(cells.some((m) => m[1] === status), `a ${status} cell`);
      assert.equal(cells.filter((m) => m[2]).map((m) => `${m[1]}`), ['fail', 'not-supported'], '#open expanded exactly the two named cells');
      assert.match(dom, /<span id="counts">reference: 3 pass, 1 broken; runc: 2 pass, 1 fail, 1 not-run; gvisor: 1 pass, 1 fail, 1 not-supported, 1 not-run<\/span>/, 'per-column counts computed by the page script');
      assert.match(dom, /<th[^>]*>gvisor &lt;ptrace&gt;<\/th>/, 'headers escaped');
      assert.match(dom, /title="[^"]*differs from the reference: typeUrl/, 'cell detail on hover');
      const css = /<style>([\s\S]*?)<\/style>/.exec(dom)?.[1] ?? '';
      for (const status of ['pass', 'fail', 'not-supported', 'not-run', 'broken']) assert.match(css, new RegExp(`td\\.${status}\\{background:#`), `colour for ${status}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('writeReports without an output directory: conformance-report.json, conformance.md, conformance.html in the cwd', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsshim-report-cwd-'));
  const cwd = process.cwd();
  try {
    process.chdir(dir);
    const files = writeReports(fixture());
    assert.equal(files, { json: join(dir, 'conformance-report.json'), markdown: join(dir, 'conformance.md'), html: join(dir, 'conformance.html') });
    const back = JSON.parse(readFileSync(files.json, 'utf8')) as MatrixReport;
    assert.is(back.cells.length, 12);
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
