// `npm run soak` (after `npm run build`): long-running reliability figures, each a named
// section measured on tsshim and on containerd-shim-runc-v2 in the same run (issue 11.8).
//
//   node dist/bench/soak.js [--short] [--only fuzz,...] [--json out.json]
//
// Sections (tsshim and runc-v2 in each; only tsshim's problems are failures):
//   group        N containers in one shim group, M execs: the shim back to its baseline (soak-group.ts)
//   restart      containerd SIGKILLed during Start and during an exec (soak-faults.ts)
//   kill-create  the backend SIGKILLed in the middle of create (soak-faults.ts)
//   hang         a backend hung in create: bounded, clear error, the group served (soak-faults.ts)
//   fuzz         fuzzed ttrpc frames against the shim socket (soak-fuzz.ts)
//
// --short is the CI form (smaller counts, same checks; a few minutes). A section returns its
// figures and a list of failures; the exit status is 1 when any section failed. A failure is a
// defect (crash, leak, lost exit, unbounded hang), never a duration. Add a section: write a
// `SoakSection` and list it in SECTIONS.
import { writeFileSync } from 'node:fs';
import { fuzzSection } from './soak-fuzz.js';
import { groupSection } from './soak-group.js';
import { hangSection, killCreateSection, restartSection } from './soak-faults.js';

export interface SoakOptions {
  short: boolean;
}

export interface SoakResult {
  /** Figures per runtime (or any shape the section documents). */
  figures: Record<string, unknown>;
  /** Empty when every check held. */
  failures: string[];
}

export interface SoakSection {
  name: string;
  description: string;
  run(opts: SoakOptions): Promise<SoakResult>;
}

const SECTIONS: SoakSection[] = [groupSection, restartSection, killCreateSection, hangSection, fuzzSection];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const short = args.includes('--short');
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? '').split(',').filter(Boolean)) : undefined;
  const jsonAt = args.indexOf('--json');
  const jsonOut = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
  const unknown = only ? [...only].filter((n) => !SECTIONS.some((s) => s.name === n)) : [];
  if (unknown.length) {
    console.error(`unknown section(s): ${unknown.join(', ')}; known: ${SECTIONS.map((s) => s.name).join(', ')}`);
    process.exit(2);
  }
  const report: Record<string, SoakResult & { seconds: number }> = {};
  let failed = 0;
  for (const s of SECTIONS) {
    if (only && !only.has(s.name)) continue;
    console.log(`\n=== soak: ${s.name}${short ? ' (short)' : ''}: ${s.description}`);
    const t0 = Date.now();
    let r: SoakResult;
    try {
      r = await s.run({ short });
    } catch (err) {
      r = { figures: {}, failures: [`section threw: ${(err as Error).stack ?? String(err)}`] };
    }
    const seconds = Math.round((Date.now() - t0) / 100) / 10;
    report[s.name] = { ...r, seconds };
    console.log(JSON.stringify(r.figures, null, 2));
    for (const f of r.failures) console.log(`FAIL ${s.name}: ${f}`);
    console.log(`--- ${s.name}: ${r.failures.length === 0 ? 'ok' : `${r.failures.length} failure(s)`} in ${seconds} s`);
    if (r.failures.length) failed++;
  }
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ short, date: new Date().toISOString(), sections: report }, null, 2) + '\n');
  console.log(`\nsoak: ${Object.keys(report).length - failed} section(s) ok, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

await main();
