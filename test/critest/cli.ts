// npm run critest -- [--containerd 2,1.6] [--handlers runc,tsshim-runc,...] [--focus REGEX] [--out docs] [--no-write] [--logs DIR]
// See run.ts for what runs where; results go to docs/critest.json and docs/critest.md. A --focus run
// is recorded as a focused re-run (its own section), never in place of a full row.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CONTAINERD_VERSIONS, containerdUnavailable, peerVersionStamp, type ContainerdVersion } from '../helpers/containerd-version.js';
import { REPO_ROOT } from '../helpers/proc.js';
import {
  CRITEST_BIN,
  CRITEST_DIR,
  HANDLERS,
  critestVersion,
  gitCommit,
  parseGinkgoReport,
  renderDocs,
  runCritest,
  running,
  startCriContainerd,
  writeDocs,
  type RunEntry,
  type SpecResult,
} from './run.js';

const USAGE = `usage: npm run critest -- [--containerd ${CONTAINERD_VERSIONS.join(',')}] [--handlers ${HANDLERS.map((h) => h.name).join(',')}] [--focus REGEX] [--out DIR] [--no-write] [--logs DIR] [--render-only]`;

let interrupted: string | undefined;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      containerd: { type: 'string' },
      handlers: { type: 'string' },
      focus: { type: 'string' },
      out: { type: 'string' },
      logs: { type: 'string' },
      'no-write': { type: 'boolean' },
      'render-only': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values['render-only']) {
    process.stdout.write(`wrote ${renderDocs(values.out ?? join(REPO_ROOT, 'docs'))}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('critest: needs root (private containerd, CNI)\n');
    return 2;
  }
  const versions = (values.containerd ?? '2,1.6').split(',').map((s) => s.trim()) as ContainerdVersion[];
  for (const v of versions) if (!CONTAINERD_VERSIONS.includes(v)) throw new Error(`--containerd: unknown version ${v}\n${USAGE}`);
  const handlers = values.handlers ? values.handlers.split(',').map((n) => {
    const h = HANDLERS.find((x) => x.name === n.trim());
    if (!h) throw new Error(`--handlers: unknown handler ${n}\n${USAGE}`);
    return h;
  }) : HANDLERS;
  if (!existsSync(join(CRITEST_DIR, 'VERSION')) || !existsSync(CRITEST_BIN)) {
    process.stderr.write(`critest is not built (${CRITEST_BIN}; run scripts/setup.sh)\n`);
    return 2;
  }
  const logs = values.logs ?? '/tmp/tsshim-critest';
  mkdirSync(logs, { recursive: true });
  const log = (l: string) => process.stderr.write(l + '\n');
  const commit = await gitCommit();
  const critest = await critestVersion();
  const entries: RunEntry[] = [];
  let failedRuns = 0;
  for (const version of versions) {
    const why = containerdUnavailable(version);
    const containerdVersion = version === '1.6' ? '1.6 (Debian)' : `${peerVersionStamp(version)?.replace(/^containerd\s+/, '').split(' ')[0] ?? version}`;
    const base = { containerd: version, containerdVersion, critest, commit, focus: values.focus, passed: 0, failed: 0, skipped: 0, specs: [] as SpecResult[], seconds: 0 };
    if (why) {
      for (const h of handlers) entries.push({ ...base, handler: h.name, label: h.label, standIn: !!h.standIn, date: new Date().toISOString(), notRun: why });
      log(`[critest] containerd ${version}: not run: ${why}`);
      continue;
    }
    const run = await startCriContainerd(version, log);
    // Interrupted: stop critest; the loop ends, the finally below tears everything down (pods,
    // shims, mounts, CNI) and nothing is recorded for the interrupted run. (Replaces the
    // containerd helper's own signal handler, which only kills the daemon.)
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.removeAllListeners(sig);
      process.once(sig, () => {
        log(`[critest] ${sig}: stopping critest, then tearing down containerd ${version}`);
        interrupted = sig;
        running.child?.kill('SIGKILL');
      });
    }
    try {
      const v = (await run.cd.ctr(['version'])).stdout;
      const server = /Server:[\s\S]*?Version:\s+(\S+)/.exec(v)?.[1];
      if (server) base.containerdVersion = version === '1.6' ? `${server} (Debian)` : server;
      for (const h of handlers) {
        if (interrupted) break;
        const date = new Date().toISOString();
        const na = h.unavailable?.(version);
        if (na) {
          entries.push({ ...base, handler: h.name, label: h.label, standIn: !!h.standIn, date, notRun: na });
          log(`[critest] containerd ${version}, ${h.name}: not run: ${na}`);
          continue;
        }
        const logFile = join(logs, `critest-${version}-${h.name}.log`);
        const reportFile = join(logs, `critest-${version}-${h.name}.json`);
        rmSync(reportFile, { force: true });
        log(`[critest] containerd ${version}, ${h.name}: running (log ${logFile})`);
        const r = await runCritest(run.cd, h.name, logFile, reportFile, values.focus);
        if (interrupted) break;
        let specs: SpecResult[];
        try {
          specs = parseGinkgoReport(readFileSync(reportFile, 'utf8'), !!values.focus);
        } catch (e) {
          specs = [{ name: 'critest run', state: 'failed', message: `no ginkgo report (exit ${r.exitCode}): ${(e as Error).message}; log tail: ${readFileSync(logFile, 'utf8').slice(-1500)}` }];
        }
        const count = (s: SpecResult['state']) => specs.filter((x) => x.state === s).length;
        const entry: RunEntry = { ...base, handler: h.name, label: h.label, standIn: !!h.standIn, date, seconds: r.seconds, passed: count('passed'), failed: count('failed'), skipped: count('skipped'), specs };
        entries.push(entry);
        if (entry.failed) failedRuns++;
        log(`[critest] containerd ${version}, ${h.name}: ${entry.passed} passed, ${entry.failed} failed, ${entry.skipped} skipped in ${r.seconds} s`);
        for (const f of specs.filter((s) => s.state === 'failed')) log(`    FAIL ${f.name}: ${(f.message ?? '').split('\n')[0]}`);
        if (!values['no-write']) writeDocs(values.out ?? join(REPO_ROOT, 'docs'), entries);
      }
    } finally {
      await run.cleanup();
    }
    if (interrupted) return 130;
  }
  if (!values['no-write']) {
    const files = writeDocs(values.out ?? join(REPO_ROOT, 'docs'), entries);
    process.stdout.write(`wrote ${files.json}, ${files.md}\n`);
  }
  for (const e of entries) {
    process.stdout.write(`containerd ${e.containerdVersion.padEnd(16)} ${e.handler.padEnd(14)} ${e.notRun ? `not run: ${e.notRun}` : `${e.passed} passed, ${e.failed} failed, ${e.skipped} skipped, ${e.seconds} s`}\n`);
  }
  return failedRuns ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`critest: ${(e as Error).stack ?? e}\n`);
    process.exit(2);
  },
);
