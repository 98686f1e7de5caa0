/**
 * Handler packages (ADR 0023): `handler = "module:<specifier>"` in a handler config names a module
 * whose default export is a HandlerDefinition written with `tsshim/handler`. Here it is found,
 * loaded (lazily: at the first Create that needs it, or when doctor / the kit asks) and checked the
 * way built-in definitions are (shape, type name, API version: definitionProblems), plus what only
 * a module can get wrong (a type or runtime entry that is a built-in's).
 *
 * Resolution, like Node's for an ES module import, without running anything:
 *   - an absolute path, or one relative to the config file's directory ("./x.js", "../x"): that
 *     file, or that directory's package entry;
 *   - a package name ("@acme/tsshim-handler-foo", "pkg/sub"): node_modules/<name> in the config
 *     file's directory and each parent, then the global node_modules (the one tsshim is installed
 *     in, $npm_config_prefix/lib/node_modules, <node's prefix>/lib/node_modules); its entry from
 *     package.json "exports" (conditions node, import, default) or "main", else index.js.
 * Failures are ShimErrors, so Create answers with a status (errors.ts maps it) and the shim serves
 * on: not found or failing to import = FailedPrecondition, not a valid definition = InvalidArgument.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { HandlerConfig, HandlerModuleRef } from '../shim-api/handler.js';
import { definitionProblems, type HandlerDefinition } from '../shim-api/definition.js';
import { failedPrecondition, invalidArgument } from '../shim-api/errors.js';
import { MODULE_PREFIX } from './config.js';

const CONDITIONS = ['node', 'import', 'default'];

const exists = async (p: string) => fsp.stat(p).then((s) => s, () => undefined);

/** The directory holding tsshim's own package.json (the repository or the installed package). */
async function ownPackageRoot(): Promise<string | undefined> {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(await fsp.readFile(path.join(d, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'tsshim') return d;
    } catch {
      // not here
    }
    const up = path.dirname(d);
    if (up === d) return undefined;
    d = up;
  }
}

/** The global node_modules directories, most specific first (no npm run: `npm root -g` costs a Node boot). */
export async function globalModuleDirs(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const out: string[] = [];
  const own = await ownPackageRoot();
  // Installed as a package (npm install -g): its handler packages sit beside it.
  if (own) {
    const parent = path.dirname(own);
    if (path.basename(parent) === 'node_modules') out.push(parent);
  }
  const prefix = env.npm_config_prefix || env.NPM_CONFIG_PREFIX;
  if (prefix) out.push(path.join(prefix, 'lib', 'node_modules'));
  out.push(path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules'));
  return [...new Set(out)];
}

function packageName(specifier: string): { name: string; subpath: string } | undefined {
  const parts = specifier.split('/');
  const n = specifier.startsWith('@') ? 2 : 1;
  if (parts.length < n || parts.slice(0, n).some((p) => p === '' || p === '.' || p === '..')) return undefined;
  const name = parts.slice(0, n).join('/');
  if (!/^(@[a-z0-9._~-]+\/)?[a-z0-9._~-]+$/i.test(name)) return undefined;
  const rest = parts.slice(n).join('/');
  return { name, subpath: rest ? `./${rest}` : '.' };
}

type ExportsTarget = string | null | ExportsTarget[] | { [k: string]: ExportsTarget };

/** A conditional exports target: undefined = no condition matched, null = excluded. */
function target(t: ExportsTarget | undefined, star?: string): string | null | undefined {
  if (t === undefined) return undefined;
  if (t === null) return null;
  if (typeof t === 'string') return star === undefined ? t : t.split('*').join(star);
  if (Array.isArray(t)) {
    for (const x of t) {
      const r = target(x, star);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(t)) {
    if (k === 'default' || CONDITIONS.includes(k)) {
      const r = target(v, star);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

/** The file `subpath` ("." or "./x") of the package in `dir` names, per its package.json. */
async function packageEntry(dir: string, subpath: string, what: string): Promise<string> {
  let pkg: { exports?: ExportsTarget; main?: string } = {};
  const pj = path.join(dir, 'package.json');
  if (await exists(pj)) {
    try {
      pkg = JSON.parse(await fsp.readFile(pj, 'utf8')) as typeof pkg;
    } catch (err) {
      throw invalidArgument(`${what}: ${pj} is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (pkg.exports !== undefined && pkg.exports !== null) {
    const e = pkg.exports;
    const map: Record<string, ExportsTarget> =
      typeof e === 'string' || Array.isArray(e) || !Object.keys(e).some((k) => k.startsWith('.')) ? { '.': e } : (e as Record<string, ExportsTarget>);
    let r: string | null | undefined;
    if (Object.hasOwn(map, subpath)) r = target(map[subpath]);
    else {
      for (const [k, v] of Object.entries(map)) {
        const star = k.indexOf('*');
        if (star < 0) continue;
        const pre = k.slice(0, star);
        const post = k.slice(star + 1);
        if (subpath.startsWith(pre) && subpath.endsWith(post) && subpath.length >= k.length - 1) {
          r = target(v, subpath.slice(pre.length, subpath.length - post.length));
          break;
        }
      }
    }
    if (typeof r !== 'string' || !r.startsWith('./')) {
      throw failedPrecondition(`${what}: ${pj} "exports" has no ${subpath === '.' ? 'main entry' : `entry ${subpath}`} for the conditions ${CONDITIONS.join(', ')}`);
    }
    return path.join(dir, r);
  }
  if (subpath !== '.') return path.join(dir, subpath);
  if (typeof pkg.main === 'string' && pkg.main) {
    const m = path.join(dir, pkg.main);
    for (const c of [m, `${m}.js`, path.join(m, 'index.js')]) if ((await exists(c))?.isFile()) return c;
    return m;
  }
  return path.join(dir, 'index.js');
}

/** A file, or a directory's package entry; the file must exist. */
async function fileOrPackage(p: string, what: string): Promise<string | undefined> {
  const st = await exists(p);
  if (!st) return undefined;
  if (st.isDirectory()) {
    const entry = await packageEntry(p, '.', what);
    return (await exists(entry))?.isFile() ? entry : undefined;
  }
  return p;
}

/** The absolute file a module reference names; FailedPrecondition, saying where it looked, when none. */
export async function resolveHandlerModule(ref: HandlerModuleRef, source: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const spec = ref.specifier;
  const what = `handler module "${spec}" (named in ${source})`;
  if (path.isAbsolute(spec) || spec.startsWith('./') || spec.startsWith('../')) {
    if (!path.isAbsolute(spec) && !ref.base) throw invalidArgument(`${what}: a relative path needs the config file's directory; use an absolute path`);
    const file = path.resolve(ref.base ?? '/', spec);
    const got = await fileOrPackage(file, what);
    if (!got) throw failedPrecondition(`${what} not found: ${file} does not exist (or is a directory without a package entry); fix "handler" in ${source}`);
    return got;
  }
  const pkg = packageName(spec);
  if (!pkg) throw invalidArgument(`${what}: "${spec}" is neither a path nor a package name`);
  const dirs: string[] = [];
  if (ref.base) {
    for (let d = path.resolve(ref.base); ; d = path.dirname(d)) {
      if (path.basename(d) !== 'node_modules') dirs.push(path.join(d, 'node_modules'));
      if (path.dirname(d) === d) break;
    }
  }
  for (const g of await globalModuleDirs(env)) if (!dirs.includes(g)) dirs.push(g);
  for (const nm of dirs) {
    const dir = path.join(nm, pkg.name);
    if (!(await exists(dir))?.isDirectory()) continue;
    const entry = await packageEntry(dir, pkg.subpath, what);
    if (!(await exists(entry))?.isFile()) throw failedPrecondition(`${what}: package ${dir} names ${entry}, which does not exist (not built? run its build)`);
    return entry;
  }
  throw failedPrecondition(`${what} not found: no ${pkg.name} in ${dirs.join(', ')}; install it (npm install -g ${pkg.name}, or npm install in ${ref.base ?? 'the config directory'}) or fix "handler" in ${source}`);
}

/** The definition a module's namespace carries: its default export (a CommonJS module's exports, or their `default`). */
function exportedDefinition(ns: Record<string, unknown>): unknown {
  let d = ns.default;
  if (d && typeof d === 'object' && 'default' in d && !('type' in d)) d = (d as { default: unknown }).default;
  return d;
}

export interface LoadedHandlerModule {
  definition: HandlerDefinition;
  /** The file it was loaded from. */
  path: string;
}

const loaded = new Map<string, Promise<LoadedHandlerModule>>();

/**
 * Load and check the definition of the module at `file` (once per file per process: a later call
 * gets the same definition; a failed load is not kept, so a module installed later is found).
 */
export function loadHandlerModuleFile(file: string, what: string, builtins: readonly HandlerDefinition[]): Promise<LoadedHandlerModule> {
  let p = loaded.get(file);
  if (!p) {
    p = (async () => {
      let ns: Record<string, unknown>;
      try {
        ns = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw failedPrecondition(`${what} failed to load: ${e?.code && !String(e.message).includes(e.code) ? `${e.code}: ` : ''}${e?.message ?? String(err)}`);
      }
      const def = exportedDefinition(ns);
      if (def === undefined) {
        const names = Object.keys(ns).filter((k) => k !== 'default');
        throw invalidArgument(`${what} has no default export: export a handler definition as the module's default (export default defineHandler({ ... }) from 'tsshim/handler'); its exports: ${names.length ? names.join(', ') : 'none'}`);
      }
      const problems = definitionProblems(def);
      // Another API version: its other differences are what that version is; say only that.
      const version = problems.find((x) => x.startsWith('apiVersion '));
      if (version) throw invalidArgument(`${what}: ${version}`);
      if (problems.length) throw invalidArgument(`${what}: its default export is not a valid handler definition: ${problems.join('; ')}`);
      const d = def as HandlerDefinition;
      const clash = builtins.find((b) => b.type === d.type || b.runtimeEntry === d.runtimeEntry);
      if (clash) {
        throw invalidArgument(
          `${what} declares handler type "${d.type}" (runtime entry ${d.runtimeEntry}), which is tsshim's built-in ${clash.type} (${clash.runtimeEntry}): a package's type and runtime entry must differ from ${builtins.map((b) => b.type).join(', ')}`,
        );
      }
      return { definition: d, path: file };
    })();
    loaded.set(file, p);
    p.catch(() => loaded.delete(file));
  }
  return p;
}

/** Resolve (unless the config already records the file) and load a config's module. */
export async function loadHandlerModule(ref: HandlerModuleRef, source: string, builtins: readonly HandlerDefinition[]): Promise<LoadedHandlerModule> {
  const file = ref.path ?? (await resolveHandlerModule(ref, source));
  return loadHandlerModuleFile(file, `handler module "${ref.specifier}" (${file}, named in ${source})`, builtins);
}

export interface BoundHandler {
  definition: HandlerDefinition;
  /** The config as the handler's factory gets it: a package's own type and name, its module's file recorded. */
  config: HandlerConfig;
}

/**
 * The definition a config selects, built-in or from a module, and the config the factory gets.
 * Unknown built-in types are FailedPrecondition naming the known ones.
 */
export async function bindHandler(config: HandlerConfig, source: string, builtins: readonly HandlerDefinition[]): Promise<BoundHandler> {
  if (!config.module) {
    const definition = builtins.find((d) => d.type === config.type);
    if (!definition) {
      throw failedPrecondition(
        `unknown tsshim handler "${config.type}" (from ${source}): known handlers are ${builtins.map((d) => d.type).join(', ')}, or "${MODULE_PREFIX}<package or path>" for a handler package; fix "handler" in that config`,
      );
    }
    return { definition, config };
  }
  const m = await loadHandlerModule(config.module, source, builtins);
  const unnamed = config.name === config.type || config.name === `${MODULE_PREFIX}${config.module.specifier}`;
  return {
    definition: m.definition,
    config: { ...config, type: m.definition.type, name: unnamed ? m.definition.type : config.name, module: { ...config.module, path: m.path } },
  };
}
