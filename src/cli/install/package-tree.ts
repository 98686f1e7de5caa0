/**
 * The files tsshim needs at run time, copied out of the package it runs from (a git checkout
 * after `npm run build`, the installer image's /opt/tsshim, or an npm install): what `npm pack`
 * puts in the tarball (package.json `files`: bin/, dist/bundle/, dist/src/ without tests and maps,
 * ...) plus the production dependency closure of node_modules (dependencies and
 * optionalDependencies, resolved as Node resolves them; workspace links followed). Used by
 * `tsshim install` (a release under /opt/tsshim/releases) and by deploy/build-image.sh (the
 * image's /opt/tsshim): one list (package.json's), one copier.
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

/** Not needed to run, in an installed dependency: declarations, TypeScript sources, source maps, docs, native sources, tests. */
const NOT_RUN = /(\.d\.[cm]?ts|\.[cm]?ts|\.map|\.md|\.markdown|\.cc|\.hh|\.h|\.S|\.asm|\.inc|\.def|\.test\.js)$/;

/** An npm `files` glob as a RegExp over '/'-separated relative paths (`**`, `*`, `?`, `{a,b}`). */
function npmGlob(pattern: string): RegExp {
  const p = pattern.replace(/^\.\//, '').replace(/\/+$/, '');
  const lit = (x: string) => x.replace(/[.+^$()|[\]\\]/g, '\\$&');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*' && p[i + 1] === '*') {
      const slash = p[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '{' && p.indexOf('}', i) > i) {
      const close = p.indexOf('}', i);
      re += `(?:${p.slice(i + 1, close).split(',').map((x) => lit(x).replace(/\*/g, '[^/]*')).join('|')})`;
      i = close;
    } else re += lit(c);
  }
  return new RegExp(`^${re}$`);
}

/**
 * What `npm pack` would put in a package's tarball, from its package.json `files` (a path is in
 * when a pattern matches it or a directory above it, and no `!` pattern does), plus package.json,
 * README and LICENSE; without `files`, everything. Nested node_modules are left out (the
 * dependency closure brings what is needed).
 */
function npmFiles(root: string, dir: string, skip: (rel: string) => boolean = () => false): string[] {
  const pkg = readPackageJson(path.join(root, dir)) as PackageJson & { files?: string[] };
  const include = (pkg.files ?? []).filter((f) => !f.startsWith('!')).map(npmGlob);
  const exclude = (pkg.files ?? []).filter((f) => f.startsWith('!')).map((f) => npmGlob(f.slice(1)));
  const withParents = (rel: string) => rel.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  const picked = (rel: string) => {
    if (/^(package\.json|(readme|license|licence)(\..*)?)$/i.test(rel)) return true;
    if (!pkg.files) return true;
    const chain = withParents(rel);
    return chain.some((c) => include.some((r) => r.test(c))) && !chain.some((c) => exclude.some((r) => r.test(c)));
  };
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const ent of fs.readdirSync(path.join(root, dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      const st = fs.statSync(path.join(root, dir, r)); // follows links (workspace packages)
      if (st.isDirectory()) {
        if (ent.name !== 'node_modules' && ent.name !== '.git') walk(r);
      } else if (st.isFile() && picked(r) && !skip(r)) out.push(dir ? `${dir}/${r}` : r);
    }
  };
  walk('');
  return out;
}

/**
 * The files to copy, as paths relative to root: the package's own (its `files`, as npm packs it)
 * and its production dependency closure (a workspace link: that package's `files`; an installed
 * package: what it holds but what running never reads, NOT_RUN).
 */
export function packageFiles(root: string = PACKAGE_ROOT): string[] {
  const out = npmFiles(root, '');
  for (const f of ['package.json', 'bin/containerd-shim-tsshim-v2', 'bin/tsshim', 'dist/bundle/main.js', 'dist/src/cli/tsshim.js']) {
    if (!out.includes(f)) throw new Error(`${path.join(root, f)} is missing${f.startsWith('dist/') ? ': run npm run build first' : ': not a tsshim package'}`);
  }
  for (const dir of productionClosure(root)) {
    const rel = path.relative(root, dir);
    const workspace = fs.lstatSync(dir).isSymbolicLink();
    out.push(...npmFiles(root, rel, workspace ? undefined : (r) => NOT_RUN.test(r)));
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
