// A handler package (examples/, or one `tsshim new-handler` wrote) made buildable and loadable here
// without a registry: tsshim is not published, so node_modules/tsshim is a link to this repository
// (what `npm install` makes of the package's "tsshim": "file:..." devDependency), and typescript and
// @types/node are links to the repository's own (what `npm install` would fetch from npm). Then its
// `tsc` build, run with the repository's typescript.
import { existsSync, lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT, runCommand } from './proc.js';

function link(target: string, at: string): void {
  mkdirSync(dirname(at), { recursive: true });
  try {
    if (lstatSync(at).isSymbolicLink() && readlinkSync(at) === target) return;
    rmSync(at, { recursive: true, force: true });
  } catch {
    // not there
  }
  symlinkSync(target, at);
}

/** node_modules/{tsshim,typescript,@types/node} of `pkgDir` pointing at this repository's. */
export function linkPackageDeps(pkgDir: string): void {
  link(REPO_ROOT, join(pkgDir, 'node_modules', 'tsshim'));
  for (const dep of ['typescript', '@types/node']) {
    const target = join(REPO_ROOT, 'node_modules', dep);
    if (!existsSync(target)) throw new Error(`${target} missing: run npm ci in ${REPO_ROOT}`);
    link(target, join(pkgDir, 'node_modules', dep));
  }
}

/** `tsc -p <pkgDir>/tsconfig.json` with the repository's typescript; rejects with tsc's output when it fails. */
export async function buildPackage(pkgDir: string): Promise<void> {
  const r = await runCommand(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(pkgDir, 'tsconfig.json')], { timeoutMs: 180_000, cwd: pkgDir });
  if (r.exitCode !== 0) throw new Error(`tsc -p ${pkgDir} exited ${r.exitCode}:\n${r.stdout}${r.stderr}`);
}

/** `bin/tsshim <args>` of this repository. */
export function tsshimCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}) {
  return runCommand(process.execPath, [join(REPO_ROOT, 'bin', 'tsshim'), ...args], { timeoutMs: opts.timeoutMs ?? 60_000, env: opts.env ?? process.env, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
}
