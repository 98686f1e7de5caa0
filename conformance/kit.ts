// The conformance runner's command line, shared by `npm run conformance` (conformance/cli.ts) and
// `tsshim conformance` (src/cli/tsshim.ts reaches it at run time in dist/conformance): the kit a
// handler's author runs against any handler config (--handler-config FILE), with the reference
// io.containerd.runc.v2 column beside it (docs/handlers/sdk.md, "The kit").
//
//   [--handlers runc,gvisor,...] [--handler-config FILE]... [--scenarios substr[,substr]] [--shim-mode pod|node] [--out DIR] [--list] [--quiet]
//
// Runs the scenarios on every selected column (the reference always, first), prints the matrix,
// writes conformance-report.json, conformance.md and conformance.html (into --out as
// conformance.json/.md/.html). Exit 1 when a cell fails or a scenario is broken on the reference,
// 2 on bad usage or a handler config whose handler cannot be loaded.
import { parseArgs } from 'node:util';
import { COLUMN_IDS, columnFromHandlerConfig, selectColumns, type Column } from './columns.js';
import { renderText, writeReports } from './report.js';
import { exitCodeFor, runMatrix } from './runner.js';
import { SCENARIOS, selectScenarios } from './scenarios/index.js';

const usage = (cmd: string) =>
  `usage: ${cmd} [--handler-config FILE]... [--handlers ${COLUMN_IDS.join(',')}] [--scenarios <substring>[,<substring>]] [--shim-mode pod|node] [--out <dir>] [--list] [--quiet]\n` +
  '  --handler-config FILE  a column for the handler FILE selects (handler = "module:..." or a built-in with its options);\n' +
  '                         with it, only the reference column runs beside it unless --handlers names more';

/** Runs the conformance command line; resolves to the exit code. `cmd` names the command in usage and in the report. */
export async function runConformanceCli(argv: string[], cmd = 'npm run conformance --'): Promise<number> {
  const USAGE = usage(cmd);
  let values: { handlers?: string; 'handler-config'?: string[]; scenarios?: string; 'shim-mode'?: string; out?: string; list?: boolean; quiet?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        handlers: { type: 'string' },
        'handler-config': { type: 'string', multiple: true },
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
  let columns: Column[];
  let scenarios;
  const configFiles = values['handler-config'] ?? [];
  try {
    columns = selectColumns(configFiles.length && !values.handlers ? 'reference' : values.handlers);
    scenarios = selectScenarios(values.scenarios);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  for (const file of configFiles) {
    try {
      const c = await columnFromHandlerConfig(file);
      if (columns.some((x) => x.id === c.id)) throw new Error(`two columns named "${c.id}": give each handler config its own handler`);
      columns.push(c);
    } catch (e) {
      process.stderr.write(`conformance: --handler-config ${file}: ${(e as Error).message}\n`);
      return 2;
    }
  }
  const log = values.quiet ? undefined : (l: string) => process.stderr.write(l + '\n');
  const shimMode = values['shim-mode'] ?? 'pod';
  if (shimMode !== 'pod' && shimMode !== 'node') {
    process.stderr.write(`--shim-mode must be pod or node\n${USAGE}\n`);
    return 2;
  }
  const command = [cmd.replace(/ --$/, ''), ...(cmd.endsWith(' --') ? ['--'] : []), ...argv].join(' ');
  const report = await runMatrix({ columns, scenarios, log, shimMode, command });
  process.stdout.write(renderText(report));
  const files = writeReports(report, values.out);
  process.stdout.write(`wrote ${files.json}, ${files.markdown}, ${files.html}\n`);
  if (report.brokenScenarios.length) process.stdout.write(`broken scenarios (fail on the reference): ${report.brokenScenarios.join(', ')}\n`);
  return exitCodeFor(report);
}
