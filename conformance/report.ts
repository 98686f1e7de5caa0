// Renders a MatrixReport as a text table, Markdown, a self-contained HTML page and JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { summarize } from './judge.js';
import type { CellResult, CellStatus, MatrixReport } from './types.js';

const LABEL: Record<CellStatus, string> = { pass: 'pass', fail: 'FAIL', 'not-supported': 'not supported', 'not-run': 'not run', broken: 'BROKEN', differs: 'differs' };

/** A tsshim-gvisor pass whose difference from runc-v2 gVisor's own shim shares (judge.ts withPeer). */
const GVISOR_OWN = "gVisor's own";
const labelOf = (c: CellResult) => (c.status === 'pass' && c.detail.startsWith(`${GVISOR_OWN}:`) ? GVISOR_OWN : LABEL[c.status]);

function cellAt(r: MatrixReport, scenario: string, column: string): CellResult | undefined {
  return r.cells.find((c) => c.scenario === scenario && c.column === column);
}

const counts = (cells: CellResult[]) => {
  const s = summarize(cells);
  return (['pass', 'fail', 'not-supported', 'not-run', 'broken', 'differs'] as const).filter((k) => s[k] > 0 || k === 'pass' || k === 'fail').map((k) => `${s[k]} ${LABEL[k] === 'FAIL' ? 'fail' : LABEL[k] === 'BROKEN' ? 'broken' : LABEL[k]}`).join(', ');
};

/** A column's kind (reports written before `kind` existed: the reference by id, others tsshim). */
const kindOf = (c: MatrixReport['columns'][number]) => c.kind ?? (c.id === 'reference' ? 'reference' : 'tsshim');

/**
 * The headline, per column: the reference (its cells are observations, judged only by the
 * scenarios' own expectations), tsshim's own handlers, and stand-ins (not the real backend) apart.
 */
export function headline(r: MatrixReport): string[] {
  const line = (c: MatrixReport['columns'][number]) => {
    const mine = r.cells.filter((x) => x.column === c.id);
    return c.available ? `${c.id} ${counts(mine)}` : `${c.id} not run (${c.reason ?? 'unavailable'})`;
  };
  const group = (kind: string) => r.columns.filter((c) => kindOf(c) === kind).map(line);
  const out: string[] = [];
  if (r.shimMode === 'node') out.push("tsshim mode: node (every tsshim column served by the containerd's one node daemon, ADR 0018)");
  const ref = group('reference');
  if (ref.length) out.push(`reference (io.containerd.runc.v2, compared against, not tsshim): ${ref.join('; ')}`);
  const tested = group('handler');
  if (tested.length) out.push(`handlers under test (from handler config files, the kit): ${tested.join('; ')}`);
  if (!tested.length || group('tsshim').length) out.push(`tsshim's own handlers: ${group('tsshim').join('; ') || 'none'}`);
  const standIns = group('stand-in');
  if (standIns.length) out.push(`stand-ins (tsshim handler in front of a substitute backend, not the real one): ${standIns.join('; ')}`);
  const peers = group('peer-reference');
  if (peers.length) out.push(`gVisor's own shim (patched: oom_score_adj EPERM tolerated; second yardstick for gvisor, not tsshim; CRI scenarios only; "differs" = not like runc-v2): ${peers.join('; ')}`);
  out.push(`${r.scenarios.length} scenarios x ${r.columns.length} columns = ${r.cells.length} cells`);
  return out;
}


/** Fixed-width table for the terminal. */
export function renderText(r: MatrixReport): string {
  const cols = r.columns.map((c) => c.id);
  const w0 = Math.max(8, ...r.scenarios.map((s) => s.id.length));
  const cellText = (c: CellResult | undefined) => (c ? labelOf(c) : '?');
  const widths = cols.map((id) => Math.max(id.length, 13));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(i === 0 ? w0 : widths[i - 1]!)).join('  ').trimEnd();
  const out = [line(['scenario', ...cols]), line(['-'.repeat(w0), ...widths.map((w) => '-'.repeat(w))])];
  for (const s of r.scenarios) out.push(line([s.id, ...cols.map((c) => cellText(cellAt(r, s.id, c)))]));
  out.push('', ...headline(r));
  const bad = r.cells.filter((c) => c.status === 'fail' || c.status === 'broken');
  for (const c of bad) out.push(`${LABEL[c.status]} ${c.scenario} [${c.column}]: ${c.detail}`);
  return out.join('\n') + '\n';
}

const mdEscape = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Markdown page: date, host facts, columns, matrix, then the details of every non-pass cell. */
export function renderMarkdown(r: MatrixReport): string {
  const h = r.host;
  const out: string[] = [];
  out.push('# tsshim conformance matrix', '');
  out.push(`Generated ${r.generatedAt} by \`${r.command ?? 'npm run conformance'}\` (conformance/kit.ts) in ${(r.durationMs / 1000).toFixed(0)} s.`, '');
  for (const l of headline(r)) out.push(`- ${mdEscape(l)}`);
  out.push('');
  out.push('Every scenario runs first on the reference shim (`io.containerd.runc.v2`); a cell passes when the column\'s observation equals the reference\'s and meets the scenario\'s own expectations. "not supported" = the handler declares it lacks the operation and the shim answered Unimplemented; "not run" = the backend is not installed or the host cannot do it (reason quoted).', '');
  out.push('## Host', '');
  out.push(`| fact | value |`, `|---|---|`);
  out.push(`| OS | ${mdEscape(h.os)} |`, `| kernel (\`uname -r\`) | ${mdEscape(h.kernel)} |`, `| cgroups | ${mdEscape(h.cgroupMode)}: ${mdEscape(h.cgroupDetail)} |`);
  out.push(`| node | ${h.node} |`, `| tsshim | ${h.tsshim} |`);
  for (const [k, v] of Object.entries(h.versions)) out.push(`| \`${k}\` | ${mdEscape(v)} |`);
  out.push('', '## Columns', '', '| column | runtime type | handler config | status |', '|---|---|---|---|');
  for (const c of r.columns) {
    const cfg = c.handlerToml ? `\`${mdEscape(c.handlerToml.trim().split('\n').filter(Boolean).join('; '))}\`` : '(none: containerd-shim-runc-v2)';
    out.push(`| ${mdEscape(c.header)} | \`${c.runtimeType}\` | ${cfg} | ${c.available ? `runs${c.detail ? `: ${mdEscape(c.detail)}` : ''}` : `not run: ${mdEscape(c.reason ?? '')}`} |`);
  }
  out.push('', '## Matrix', '');
  out.push(`| scenario | ${r.columns.map((c) => mdEscape(c.header)).join(' | ')} |`);
  out.push(`|---|${r.columns.map(() => '---').join('|')}|`);
  for (const s of r.scenarios) {
    const cells = r.columns.map((c) => {
      const cell = cellAt(r, s.id, c.id);
      if (!cell) return '?';
      return cell.status === 'not-run' && cell.durationMs === 0 ? LABEL[cell.status] : `${labelOf(cell)} (${cell.durationMs} ms)`;
    });
    out.push(`| \`${s.id}\` | ${cells.join(' | ')} |`);
  }
  const section = (title: string, pick: (c: CellResult) => boolean) => {
    const cells = r.cells.filter(pick);
    if (cells.length === 0) return;
    out.push('', `## ${title}`, '');
    for (const c of cells) {
      out.push(`- \`${c.scenario}\` on **${c.column}**: ${mdEscape(c.detail)}`);
      for (const d of c.diff ?? []) if (!c.detail.includes(d)) out.push(`  - ${mdEscape(d)}`);
      if (c.notes && c.status !== 'pass') out.push(`  - notes: \`${mdEscape(JSON.stringify(c.notes)).slice(0, 600)}\``);
    }
  };
  section('Failures', (c) => c.status === 'fail');
  section('Broken scenarios (fail on the reference)', (c) => c.status === 'broken');
  section('Not supported', (c) => c.status === 'not-supported');
  section("gVisor's own shim (containerd-shim-runsc-v1, patched: oom_score_adj EPERM tolerated) where it differs from runc-v2", (c) => c.status === 'differs');
  section('Not run (scenario-level reasons)', (c) => c.status === 'not-run' && r.columns.find((x) => x.id === c.column)?.available === true);
  section('Passes with remarks', (c) => c.status === 'pass' && c.column !== 'reference' && c.detail !== 'same observation as the reference');
  out.push('', '## Scenarios', '', '| id | group | what is driven and observed | requires |', '|---|---|---|---|');
  for (const s of r.scenarios) out.push(`| \`${s.id}\` | ${s.group} | ${mdEscape(s.title)} | ${s.requires.join(', ')} |`);
  out.push('', 'Per-cell observations, notes and durations are in conformance.json; conformance.html shows each cell\'s detail on hover and click.', '');
  return out.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function cellDetail(c: CellResult): string {
  const parts = [`${LABEL[c.status]} in ${c.durationMs} ms`, c.detail];
  if (c.diff?.length) parts.push('diff from the reference:\n' + c.diff.join('\n'));
  if (c.peerDiff?.length) parts.push("diff from gVisor's own shim:\n" + c.peerDiff.join('\n'));
  if (c.observation) parts.push('observation: ' + JSON.stringify(c.observation, null, 1));
  if (c.notes) parts.push('notes: ' + JSON.stringify(c.notes, null, 1));
  return parts.join('\n');
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3;text-align:left}
td.cell{cursor:pointer;min-width:8em}
td.pass{background:#c8ecc9}td.fail{background:#f6b3b3}td.broken{background:#e28ad9}
td.not-supported{background:#fde7a6}td.not-run{background:#e4e4e4;color:#555}td.differs{background:#cfe0f7}
td.cell .detail{display:none;white-space:pre-wrap;font:12px monospace;max-width:40em}
td.cell.open .detail{display:block}
.ms{color:#555;font-size:11px}
.legend span{display:inline-block;padding:2px 8px;margin-right:6px}
#counts{font-weight:bold}
code{background:#f3f3f3;padding:0 2px}
`;

const JS = `
(function(){
  var table=document.getElementById('matrix');
  var cells=table.querySelectorAll('td.cell');
  var per={},cols=[];
  cells.forEach(function(td){
    var col=(td.dataset.key||'?/?').split('/').pop();
    if(!per[col]){per[col]={};cols.push(col);}
    per[col][td.dataset.status]=(per[col][td.dataset.status]||0)+1;
    td.addEventListener('click',function(){td.classList.toggle('open');});
  });
  var order=['pass','fail','not-supported','not-run','broken','differs'];
  document.getElementById('counts').textContent=cols.map(function(c){return c+': '+order.filter(function(k){return per[c][k];}).map(function(k){return per[c][k]+' '+k;}).join(', ');}).join('; ');
  var m=/open=([^&]+)/.exec(location.hash);
  if(m){decodeURIComponent(m[1]).split(',').forEach(function(key){
    var td=table.querySelector('td.cell[data-key="'+key.replace(/"/g,'')+'"]');if(td)td.classList.add('open');});}
  table.setAttribute('data-ready','1');
})();
`;

/** One self-contained page (inline CSS and JS): the matrix coloured by result, detail on hover and click. */
export function renderHtml(r: MatrixReport): string {
  const h = r.host;
  const rows = r.scenarios.map((s) => {
    const tds = r.columns.map((c) => {
      const cell = cellAt(r, s.id, c.id);
      if (!cell) return '<td class="cell not-run" data-status="not-run">?</td>';
      const detail = cellDetail(cell);
      const ms = cell.status === 'not-run' && cell.durationMs === 0 ? '' : ` <span class="ms">${cell.durationMs} ms</span>`;
      return `<td class="cell ${cell.status}" data-status="${cell.status}" data-key="${esc(`${s.id}/${c.id}`)}" title="${esc(detail.slice(0, 1500))}">${esc(labelOf(cell))}${ms}<div class="detail">${esc(detail)}</div></td>`;
    });
    return `<tr><th title="${esc(s.title)}"><code>${esc(s.id)}</code><br><span class="ms">${esc(s.group)}</span></th>${tds.join('')}</tr>`;
  });
  const hostRows = [
    ['OS', h.os],
    ['kernel', h.kernel],
    ['cgroups', `${h.cgroupMode}: ${h.cgroupDetail}`],
    ['node', h.node],
    ['tsshim', h.tsshim],
    ...Object.entries(h.versions),
  ]
    .map(([k, v]) => `<tr><th>${esc(k!)}</th><td>${esc(v!)}</td></tr>`)
    .join('');
  const colHeads = r.columns
    .map((c) => `<th title="${esc(c.available ? (c.handlerToml ?? c.runtimeType) : `not run: ${c.reason}`)}">${esc(c.header)}${c.available ? '' : `<br><span class="ms">not run: ${esc(c.reason ?? '')}</span>`}</th>`)
    .join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tsshim conformance matrix</title><style>${CSS}</style></head>
<body>
<h1>tsshim conformance matrix</h1>
<p>Generated ${esc(r.generatedAt)} in ${(r.durationMs / 1000).toFixed(0)} s.</p>
<ul id="headline">${headline(r).map((l) => `<li>${esc(l)}</li>`).join('')}</ul>
<p>Per column: <span id="counts">${esc(headline(r).join('. '))}</span></p>
<p class="legend"><span class="pass" style="background:#c8ecc9">pass</span><span style="background:#f6b3b3">fail</span><span style="background:#fde7a6">not supported</span><span style="background:#e4e4e4">not run</span><span style="background:#e28ad9">broken scenario</span> Hover a cell for its detail, click to expand it.</p>
<table id="matrix"><thead><tr><th>scenario</th>${colHeads}</tr></thead><tbody>
${rows.join('\n')}
</tbody></table>
<h2>Host</h2><table>${hostRows}</table>
<script>${JS}</script>
</body></html>
`;
}

export interface WrittenReports {
  json: string;
  markdown: string;
  html: string;
}

/**
 * Writes the three files. Into `outDir` as conformance.json / .md / .html, or, without outDir,
 * into the current directory as conformance-report.json, conformance.md, conformance.html.
 */
export function writeReports(r: MatrixReport, outDir?: string): WrittenReports {
  const dir = outDir ?? process.cwd();
  mkdirSync(dir, { recursive: true });
  const files: WrittenReports = {
    json: join(dir, outDir ? 'conformance.json' : 'conformance-report.json'),
    markdown: join(dir, 'conformance.md'),
    html: join(dir, 'conformance.html'),
  };
  writeFileSync(files.json, JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
  writeFileSync(files.markdown, renderMarkdown(r));
  writeFileSync(files.html, renderHtml(r));
  return files;
}
