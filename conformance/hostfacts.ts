// Facts about the machine a matrix was produced on, for the report header.
import { readFileSync } from 'node:fs';
import { cgroupFacts } from '../src/composition/host.js';
import { version as tsshimVersion } from '../src/version.js';
import { runCommand } from '../test/helpers/proc.js';

export interface HostFactsReport {
  kernel: string;
  cgroupMode: string;
  cgroupDetail: string;
  os: string;
  node: string;
  tsshim: string;
  /** binary -> first line of `<binary> --version` (or why it is missing). */
  versions: Record<string, string>;
}

async function firstLine(cmd: string, args: string[], lines = 1): Promise<string> {
  try {
    const r = await runCommand(cmd, args, { timeoutMs: 10_000 });
    const line = (r.stdout + '\n' + r.stderr).split('\n').map((l) => l.trim()).filter(Boolean).slice(0, lines).join(' ');
    return r.exitCode === 0 ? line : `exit ${r.exitCode}: ${line}`;
  } catch (e) {
    return `not installed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
}

export async function gatherHostFacts(): Promise<HostFactsReport> {
  const cg = cgroupFacts();
  let os = 'unknown';
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    /* keep unknown */
  }
  const [kernel, containerd, runc, runsc, crun, youki, criu, shimRunc] = await Promise.all([
    firstLine('uname', ['-r']),
    firstLine('containerd', ['--version']),
    firstLine('runc', ['--version']),
    firstLine('runsc', ['--version']),
    firstLine('crun', ['--version']),
    firstLine('youki', ['--version']),
    firstLine('criu', ['--version']),
    firstLine('containerd-shim-runc-v2', ['-v'], 2),
  ]);
  return {
    kernel,
    cgroupMode: cg.mode,
    cgroupDetail:
      cg.mode === 'hybrid'
        ? `v1 controllers (${cg.v1Controllers.join(',')}) + v2 at ${cg.unifiedPath} (${cg.unifiedControllers.join(',') || 'no controllers'})`
        : cg.mode,
    os,
    node: process.version,
    tsshim: tsshimVersion(),
    versions: { containerd, 'containerd-shim-runc-v2': shimRunc, runc, runsc, crun, youki, criu },
  };
}
