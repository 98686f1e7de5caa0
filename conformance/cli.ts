// npm run conformance -- [--handlers runc,gvisor,kata,youki,crun,reference] [--scenarios substr[,substr]] [--shim-mode pod|node] [--out docs/]
//
// Runs the scenarios on every selected column (the reference always, first), prints the matrix,
// writes conformance-report.json, conformance.md and conformance.html (into --out as
// conformance.json/.md/.html). Exit 1 when a cell fails or a scenario is broken on the reference.
import { parseArgs } from 'node:util';
import { COLUMN_IDS, selectColumns } from './columns.js';
import { renderText, writeReports } from './report.js';
import { exitCodeFor, runMatrix } from './runner.js';
import { SCENARIOS, selectScenarios } from './scenarios/index.js';

const USAGE = `usage: npm run conformance -- [--handlers ${COLUMN_IDS.join(',')}] [--scenarios <substring>[,<substring>]] [--shim-mode pod|node] [--out <dir>] [--list] [--quiet]`;

async function main(): Promise<number> {
  let values: { handlers?: string; scenarios?: string; 'shim-mode'?: string; out?: string; list?: boolean; quiet?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        handlers: { type: 'string' },
        scenarios: { type: 'string' },
        'shim-mode': { type: 'string' },
        out: { type: 'string' },
        list: { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.id.padEnd(28)} ${s.group.padEnd(12)} ${s.title}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('conformance: needs root (private containerd, runc, runsc)\n');
    return 2;
  }
  let columns;
  let scenarios;
  try {
    columns = selectColumns(values.handlers);
    scenarios = selectScenarios(values.scenarios);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const log = values.quiet ? undefined : (l: string) => process.stderr.write(l + '\n');
  const shimMode = values['shim-mode'] ?? 'pod';
  if (shimMode !== 'pod' && shimMode !== 'node') {
    process.stderr.write(`--shim-mode must be pod or node\n${USAGE}\n`);
    return 2;
  }
  const report = await runMatrix({ columns, scenarios, log, shimMode });
  process.stdout.write(renderText(report));
  const files = writeReports(report, values.out);
  process.stdout.write(`wrote ${files.json}, ${files.markdown}, ${files.html}\n`);
  if (report.brokenScenarios.length) process.stdout.write(`broken scenarios (fail on the reference): ${report.brokenScenarios.join(', ')}\n`);
  return exitCodeFor(report);
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`conformance: ${e.stack ?? e.message}\n`);
    process.exit(2);
  },
);
