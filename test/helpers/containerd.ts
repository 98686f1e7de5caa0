// A private, real containerd per test file (or per demo/bench/conformance run).
//
// Everything lives under /run/tsshim-test/<name>-<hex>/ (short, because unix socket paths are
// limited to 107 bytes): root/, state/, opt/, config.toml, containerd.log, c.sock, c.sock.ttrpc.
// containerd's PATH starts with <repo>/bin so containerd-shim-tsshim-v2 is found there.
//
// The pieces: containerd-binaries.ts (which containerd/ctr), containerd-config.ts (config.toml),
// containerd-process.ts (the daemon: start, ctr, restart, stop), teardown.ts (cleanup shared with
// the conformance runner).
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerdBinaries } from './containerd-binaries.js';
import { applySelectedContainerdPath, binariesFor, selectedContainerd, type ContainerdVersion } from './containerd-version.js';
import { renderConfig } from './containerd-config.js';
import { Instance, type PrivateContainerd } from './containerd-process.js';
import { TEST_IMAGE, buildTestImageArchive } from './image.js';
import { REPO_ROOT } from './proc.js';

export { TEST_IMAGE, REPO_ROOT };
export { containerdBinaries, type ContainerdBinaries } from './containerd-binaries.js';
export { deepMerge, renderConfig } from './containerd-config.js';
export type { CtrOptions, PrivateContainerd } from './containerd-process.js';
export { mountsUnder } from './teardown.js';

applySelectedContainerdPath(); // TSSHIM_CONTAINERD: see containerd-version.ts

export const DEFAULT_NAMESPACE = 'tsshim-test';
export const TEST_BASE_DIR = '/run/tsshim-test';

export interface StartOptions {
  /** Short label used in the directory name. */
  name?: string;
  /** TOML deep-merged over the generated config (tables merge, values replace). Mentioning the CRI plugin enables it. */
  extraConfig?: string;
  /** `[debug] level = "debug"` (also when env TSSHIM_TEST_DEBUG=1). */
  debug?: boolean;
  /** Default namespace for ctr(); default 'tsshim-test'. */
  namespace?: string;
  /** containerd and ctr to run (default: binariesFor(containerd)). */
  binaries?: ContainerdBinaries;
  /** containerd version (binaries and config layout); default TSSHIM_CONTAINERD, else 1.6 (containerd-version.ts). */
  containerd?: ContainerdVersion;
  /** Directories put first on containerd's PATH, before <repo>/bin (e.g. an npm-installed tsshim's bin). */
  pathFirst?: string[];
}

/** `prefix-<8 hex>`: containerd-shim-runc-v2 keeps runc state in /run/containerd/runc/<ns> whatever containerd's dirs are, so ids must be unique across instances. */
export function uniqueId(prefix = 't'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

function shortLabel(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 16) || 'cd';
}

/** Starts a private containerd and waits until `ctr version` answers. */
export async function startContainerd(opts: StartOptions = {}): Promise<PrivateContainerd> {
  if (process.getuid?.() !== 0) throw new Error('startContainerd needs root');
  const dir = join(TEST_BASE_DIR, `${shortLabel(opts.name ?? 'cd')}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const inst = new Instance(dir, opts.namespace ?? DEFAULT_NAMESPACE, opts.binaries ?? binariesFor(opts.containerd), opts.pathFirst);
  const containerd = opts.containerd ?? selectedContainerd();
  writeFileSync(inst.configFile, renderConfig(dir, { extraConfig: opts.extraConfig, debug: opts.debug ?? process.env.TSSHIM_TEST_DEBUG === '1', containerd }));
  try {
    await inst.launch();
  } catch (e) {
    await inst.stop();
    throw e;
  }
  return inst;
}

/** Builds (cached) the busybox OCI archive, imports and unpacks it; returns TEST_IMAGE. */
export async function importTestImage(cd: PrivateContainerd, opts: { namespace?: string } = {}): Promise<string> {
  const archive = await buildTestImageArchive();
  const r = await cd.ctr(['images', 'import', archive], { timeoutMs: 180_000, namespace: opts.namespace });
  if (r.exitCode !== 0) throw new Error(`ctr images import ${archive} exited ${r.exitCode}: ${r.stderr.trim()}`);
  const ls = await cd.ctr(['images', 'ls', '-q'], { namespace: opts.namespace });
  if (!ls.stdout.split('\n').includes(TEST_IMAGE)) {
    throw new Error(`after import, ${TEST_IMAGE} is not listed; ctr images ls -q said:\n${ls.stdout}\nimport said:\n${r.stdout}${r.stderr}`);
  }
  return TEST_IMAGE;
}
