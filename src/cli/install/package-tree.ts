/**
 * The files tsshim needs at run time, copied out of the package it runs from (a git checkout
 * after `npm run build`, the installer image's /opt/tsshim, or an npm install): package.json,
 * bin/, dist/src (the CLI; no tests), dist/bundle (the shim) and the production dependency
 * closure of node_modules (dependencies + optionalDependencies, resolved as Node resolves them;
 * workspace links are followed). Used by `tsshim install` (a release under /opt/tsshim/releases)
 * and by deploy/build-image.sh (the image's /opt/tsshim): one list, one copier.
 *
 *   node dist/src/cli/install/package-tree.js --out DIR   # what build-image.sh runs
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The package root this module runs from (dist/src/cli/install/ -> four levels up). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../../', import.meta.url)).replace(/\/$/, '');

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function readPackageJson(dir: string): PackageJson {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** Node's lookup of `name` from a package directory: <dir>/node_modules/<name>, then each parent's. */
function resolvePackage(name: string, from: string, root: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === path.dirname(dir)) return undefined;
  }
}

/** Directories (as found under root, links not resolved) of the production dependency closure. */
export function productionClosure(root: string = PACKAGE_ROOT): string[] {
  const seen = new Map<string, string>(); // real path -> path under root
  const visit = (dir: string) => {
    const pkg = readPackageJson(dir);
    const deps = [
      ...Object.keys(pkg.dependencies ?? {}).map((n) => ({ n, optional: false })),
      ...Object.keys(pkg.optionalDependencies ?? {}).map((n) => ({ n, optional: true })),
    ];
    for (const { n, optional } of deps) {
      const found = resolvePackage(n, dir, root);
      if (!found) {
        if (optional) continue; // another platform's build, say
        throw new Error(`${n} (a dependency of ${pkg.name ?? dir}) is not installed under ${root}: run npm ci (or npm install --omit=dev) first`);
      }
      const real = fs.realpathSync(found);
      if (seen.has(real)) continue;
      seen.set(real, found);
      visit(found);
    }
  };
  visit(root);
  return [...seen.values()].sort();
}

const NOT_RUN = /(\.d\.[cm]?ts|\.[cm]?ts|\.map|\.md|\.markdown|\.cc|\.hh|\.h|\.S|\.asm|\.inc|\.def)$/;

/** The files to copy, as paths relative to root (links under node_modules followed). */
export function packageFiles(root: string = PACKAGE_ROOT): string[] {
  const out: string[] = [];
  const walk = (rel: string, skip: (rel: string, isDir: boolean) => boolean) => {
    const abs = path.join(root, rel);
    for (const ent of fs.readdirSync(abs, { withFileTypes: true })) {
      const r = path.join(rel, ent.name);
      const st = fs.statSync(path.join(root, r)); // follows links (workspace packages)
      if (skip(r, st.isDirectory())) continue;
      if (st.isDirectory()) walk(r, skip);
      else if (st.isFile()) out.push(r);
    }
  };
  for (const f of ['package.json', 'bin/containerd-shim-tsshim-v2', 'bin/tsshim']) {
    if (!fs.existsSync(path.join(root, f))) throw new Error(`${path.join(root, f)} is missing: not a tsshim package`);
    out.push(f);
  }
  for (const d of ['dist/src', 'dist/bundle']) {
    if (!fs.existsSync(path.join(root, d))) throw new Error(`${path.join(root, d)} is missing: run npm run build first`);
    walk(d, (r, isDir) => !isDir && /\.test\.js(\.map)?$/.test(r));
  }
  for (const dir of productionClosure(root)) {
    const rel = path.relative(root, dir);
    // Not needed to run: a package's node_modules/.bin (links to other packages' scripts), type
    // declarations, TypeScript sources, source maps, docs, native sources (prebuilt binaries are
    // kept). Half of the files: an install writes ~1,900 instead of ~3,900.
    walk(rel, (r, isDir) => (isDir ? path.basename(r) === '.bin' : NOT_RUN.test(r)));
  }
  return [...new Set(out)].sort();
}

export interface StagedTree {
  files: number;
  bytes: number;
  /** sha256 over every file's path, mode and content (node included): the release's identity. */
  hash: string;
}

/**
 * Copies the package's run-time files to dest (which must not exist), and `node` (a Node binary,
 * e.g. process.execPath) to dest/bin/node when given: the launcher runs that one before any
 * node on PATH. hashOnly: nothing is written, only the hash computed.
 */
export function stagePackage(dest: string, opts: { root?: string; node?: string; hashOnly?: boolean } = {}): StagedTree {
  const root = opts.root ?? PACKAGE_ROOT;
  const files = packageFiles(root).map((rel) => ({ rel, src: path.join(root, rel) }));
  if (opts.node) files.push({ rel: 'bin/node', src: opts.node });
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  if (!opts.hashOnly) fs.mkdirSync(dest, { mode: 0o755 });
  const hash = createHash('sha256');
  let bytes = 0;
  for (const { rel, src } of files) {
    const content = fs.readFileSync(src);
    const mode = fs.statSync(src).mode & 0o111 ? 0o755 : 0o644;
    if (!opts.hashOnly) {
      const to = path.join(dest, rel);
      fs.mkdirSync(path.dirname(to), { recursive: true, mode: 0o755 });
      fs.writeFileSync(to, content, { mode });
      fs.chmodSync(to, mode); // not narrowed by the umask
    }
    hash.update(`${rel}\0${mode.toString(8)}\0${content.length}\0`).update(content);
    bytes += content.length;
  }
  return { files: files.length, bytes, hash: hash.digest('hex') };
}

export function packageVersion(root: string = PACKAGE_ROOT): string {
  return readPackageJson(root).version ?? '0.0.0';
}

// `node package-tree.js --out DIR [--node PATH]`: deploy/build-image.sh stages the image's /opt/tsshim with this.
if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const at = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const out = at('--out');
  if (!out) {
    process.stderr.write('usage: node package-tree.js --out DIR [--node PATH]\n');
    process.exit(2);
  }
  const r = stagePackage(out, { node: at('--node') });
  process.stdout.write(`${out}: ${r.files} files, ${(r.bytes / 1048576).toFixed(1)} MiB, sha256 ${r.hash}\n`);
}
