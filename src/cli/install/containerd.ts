/**
 * containerd's side of `tsshim install`: which containerd the host runs, which config it reads,
 * and the drop-in file that carries tsshim's runtime entries into it.
 *
 * How drop-ins merge (checked against the real binaries, see docs/adr/0022-cluster-installer.md):
 * every containerd since 1.5 reads `imports = [...]` (globs allowed, relative to the importing
 * file) after the main file, in order. containerd 2.x deep-merges an imported file's plugin tables
 * into what it has; 1.6 and 1.7 REPLACE a plugin's whole table with the imported file's (the
 * upstream fix was not backported to 1.7). So for 1.x the drop-in restates the operator's CRI
 * table, as loaded from the main file and its imports, with tsshim's runtimes added; for 2.x it
 * holds tsshim's runtimes alone. containerd 2.x's generated default config imports
 * /etc/containerd/conf.d/*.toml; no containerd imports anything its config file does not name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { parseContainerdVersion, runtimeEntries, type ContainerdVersion } from '../generate.js';
import type { HandlerDefinition } from '../../shim-api/definition.js';
import type { HostRoot } from './host.js';
import { configVersion } from './toml-edit.js';

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

export const CRI_V2 = 'io.containerd.grpc.v1.cri';
export const CRI_V3_RUNTIME = 'io.containerd.cri.v1.runtime';
export const DEFAULT_CONTAINERD_CONFIG = '/etc/containerd/config.toml';
/** The drop-in's default place: the directory containerd 2.x's default config imports. */
export const DEFAULT_DROP_IN = '/etc/containerd/conf.d/tsshim.toml';
/** Where containerd is looked for on the host, in order. */
export const CONTAINERD_BINARIES = ['/usr/local/bin/containerd', '/usr/bin/containerd', '/usr/sbin/containerd', '/bin/containerd', '/opt/bin/containerd'];

/** 1.6 and 1.7 replace a plugin's table with an imported file's; 2.x merges. */
export const replacesPluginTables = (v: ContainerdVersion) => v !== '2';

export interface Detected {
  version: ContainerdVersion;
  /** How it was found, for the log and the manifest. */
  source: string;
  /** The host's containerd binary (host path), when one answered `--version`. */
  binary?: string;
}

/**
 * The containerd generation: --containerd-version, else the host's `containerd --version`, else
 * a `version = 3` config (2.x); a version-2 config alone does not tell 1.x from 2.x.
 */
export function detectContainerd(host: HostRoot, mainText: string | undefined, flag: string | undefined): Detected {
  const cfgVersion = mainText === undefined ? undefined : configVersion(mainText);
  if (cfgVersion !== undefined && (cfgVersion < 2 || cfgVersion > 4)) {
    throw new Error(`the containerd config has version = ${cfgVersion}: tsshim install handles config versions 2 (containerd 1.6/1.7/2.x), 3 (2.x) and 4 (2.4+)`);
  }
  if (mainText !== undefined && cfgVersion === undefined) {
    throw new Error('the containerd config has no `version` key, which containerd reads as the version-1 layout (plugins."cri"): add `version = 2` (its tables then need the full plugin ids) and run tsshim install again');
  }
  let binary: string | undefined;
  let found: Detected | undefined;
  const problems: string[] = [];
  for (const b of CONTAINERD_BINARIES) {
    if (!host.has(b)) continue;
    const r = host.run(b, ['--version'], 30_000);
    // "containerd github.com/containerd/containerd 1.6.20~ds1 ...", "containerd github.com/containerd/containerd/v2 v2.4.2 <commit>"
    const v = r.status === 0 ? parseContainerdVersion(r.stdout.trim().split(/\s+/)[2] ?? '') : undefined;
    if (v) {
      binary = b;
      found = { version: v, source: `${b} --version: ${r.stdout.trim()}`, binary };
      break;
    }
    problems.push(`${r.argv.join(' ')}: ${r.status === 0 ? `unrecognised "${r.stdout.trim()}"` : (r.stderr.trim() || `exit ${r.status}`)}`);
  }
  if (flag) {
    const v = parseContainerdVersion(flag);
    if (!v) throw new Error(`--containerd-version must be 1.6, 1.7 or 2, got "${flag}"`);
    if (found && found.version !== v) throw new Error(`--containerd-version ${flag}, but ${found.source}`);
    found = { version: v, source: `--containerd-version ${flag}`, binary };
  }
  if (!found && cfgVersion !== undefined && cfgVersion >= 3) found = { version: '2', source: `config version = ${cfgVersion} (containerd 2.x)` };
  if (!found) {
    throw new Error(
      `cannot tell which containerd this host runs: ${problems.length ? problems.join('; ') : `no containerd binary at ${CONTAINERD_BINARIES.join(', ')} under the host root`}` +
        `${cfgVersion === 2 ? ', and a version-2 config is read by 1.6, 1.7 and 2.x alike' : ''}: pass --containerd-version 1.6|1.7|2`,
    );
  }
  if (found.version !== '2' && cfgVersion !== undefined && cfgVersion >= 3) throw new Error(`containerd ${found.version} (${found.source}) cannot read the version-${cfgVersion} config it is given`);
  return found;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
}

/**
 * containerd's resolveImports: relative to the importing file's directory; `*` and `?` globs (per
 * path component, sorted). `alsoMatch` (the drop-in about to be written) counts as present.
 */
export function resolveImports(host: HostRoot, parentSeen: string, imports: string[], alsoMatch?: string): string[] {
  const out: string[] = [];
  for (const raw of imports) {
    const p = path.resolve(path.dirname(parentSeen), raw);
    if (!/[*?[]/.test(p)) {
      out.push(p);
      continue;
    }
    let matches = ['/'];
    for (const part of p.split('/').filter(Boolean)) {
      if (!/[*?[]/.test(part)) {
        matches = matches.map((m) => path.join(m, part));
        continue;
      }
      const re = globToRegExp(part);
      matches = matches.flatMap((m) => {
        try {
          return fs.readdirSync(host.fromSeen(m)).filter((n) => re.test(n)).sort().map((n) => path.join(m, n));
        } catch {
          return [];
        }
      });
    }
    const found = matches.filter((m) => fs.existsSync(host.fromSeen(m)));
    if (alsoMatch && !found.includes(alsoMatch) && importsCover(host, parentSeen, [raw], alsoMatch)) found.push(alsoMatch);
    out.push(...found.sort());
  }
  return out;
}

/** True when an import list (of the file at parentSeen) takes in the file at targetSeen. */
export function importsCover(host: HostRoot, parentSeen: string, imports: string[], targetSeen: string): boolean {
  return imports.some((raw) => {
    const p = path.resolve(path.dirname(parentSeen), raw);
    if (p === targetSeen) return true;
    if (!/[*?[]/.test(p)) return false;
    const a = p.split('/');
    const b = targetSeen.split('/');
    return a.length === b.length && a.every((part, i) => globToRegExp(part).test(b[i]!));
  });
}

export interface LoadedConfig {
  /** Files in containerd's load order (seen paths), the drop-in left out. */
  files: string[];
  /** The CRI table containerd 1.x ends up with from them (the last file's that has one). */
  cri: Table;
  /** Files after the drop-in (in load order) that bring a CRI table: on 1.x they would replace tsshim's. */
  criAfterDropIn: string[];
  /** The drop-in's position is covered (already imported) by the main file or one of its imports. */
  dropInImported: boolean;
}

/**
 * Walks the main file and its imports breadth-first, as containerd's LoadConfig does. Give it the
 * main text as it will be (with the drop-in's imports entry) to see where the drop-in lands.
 */
export function loadConfigChain(host: HostRoot, mainSeen: string, mainText: string | undefined, dropInSeen: string, criPlugin: string): LoadedConfig {
  const out: LoadedConfig = { files: [], cri: {}, criAfterDropIn: [], dropInImported: false };
  if (mainText === undefined) return out;
  const pending: Array<{ file: string; text?: string }> = [{ file: mainSeen, text: mainText }];
  const loaded = new Set<string>();
  let pastDropIn = false;
  while (pending.length) {
    const { file, text } = pending.shift()!;
    if (loaded.has(file)) continue;
    loaded.add(file);
    if (file === dropInSeen) {
      out.dropInImported = true;
      pastDropIn = true;
      continue; // what a previous install wrote: never an input
    }
    let doc: Table;
    try {
      doc = parseToml(text ?? fs.readFileSync(host.fromSeen(file), 'utf8')) as Table;
    } catch (err) {
      throw new Error(`${file} (imported by the containerd config): ${(err as Error).message.split('\n')[0]}`);
    }
    out.files.push(file);
    const plugins = isTable(doc.plugins) ? doc.plugins : {};
    if (isTable(plugins[criPlugin])) {
      if (pastDropIn) out.criAfterDropIn.push(file);
      else out.cri = plugins[criPlugin] as Table;
    }
    const imports = Array.isArray(doc.imports) ? (doc.imports as string[]) : [];
    for (const f of resolveImports(host, file, imports, dropInSeen)) pending.push({ file: f });
  }
  return out;
}

export interface DropInOptions {
  version: ContainerdVersion;
  handlers: readonly HandlerDefinition[];
  /** Seen paths: the handler config directory and the shim binary. */
  configDir: string;
  runtimePath: string;
  /** 1.x: the operator's CRI table (loadConfigChain). */
  operatorCri: Table;
  /** 1.x: the files it came from, for the header. */
  sources: string[];
}

function deepMerge(base: Table, over: Table): Table {
  const out: Table = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTable(out[k]) && isTable(v) ? deepMerge(out[k] as Table, v) : v;
  return out;
}

/** The drop-in file's text. */
export function renderDropIn(o: DropInOptions): string {
  const entries = Object.fromEntries(runtimeEntries({ version: o.version, entries: o.handlers, configDir: o.configDir, runtimePath: o.runtimePath }).map((e) => [e.name, e.table]));
  const header = [
    `# tsshim's runtime entries for containerd ${o.version === '2' ? '2.x' : o.version}, written by \`tsshim install\`;`,
    '# `tsshim uninstall` removes this file. Do not edit it: run `tsshim install` again instead.',
    `# The entries are \`tsshim config containerd --version ${o.version}\`'s, with runtime_path naming the installed shim.`,
  ];
  let doc: Table;
  if (replacesPluginTables(o.version)) {
    const cri = deepMerge(o.operatorCri, { containerd: { runtimes: entries } });
    const c = cri.containerd as Table;
    const runtimes = c.runtimes as Table;
    const defaultName = typeof c.default_runtime_name === 'string' ? c.default_runtime_name : 'runc';
    // CRI refuses to start when default_runtime_name names no entry; containerd's implicit runc
    // entry exists only while no config defines runtimes, and this file now does.
    if (!(defaultName in runtimes) && defaultName === 'runc') {
      c.runtimes = { runc: { runtime_type: 'io.containerd.runc.v2' }, ...runtimes };
      header.push('# runc: containerd\'s implicit default runtime entry, restated (defining runtimes drops it).');
    }
    header.push(
      `# containerd ${o.version} replaces a plugin's whole table with the one an imported file brings (2.x merges`,
      '# them), so this file restates the CRI table it found in',
      ...(o.sources.length ? o.sources.map((s) => `#   ${s}`) : ['#   (no file: containerd\'s defaults)']),
      '# at install time, with tsshim\'s runtimes added. After changing that table there, run',
      '# `tsshim install` again (the DaemonSet does at every start), or this copy shadows the change.',
    );
    doc = { version: 2, plugins: { [CRI_V2]: cri } };
  } else {
    // version 3: what every 2.x reads (2.4 migrates it to its version 4 layout, which keeps this table)
    doc = { version: 3, plugins: { [CRI_V3_RUNTIME]: { containerd: { runtimes: entries } } } };
  }
  return header.join('\n') + '\n\n' + stringifyToml(doc) + '\n';
}

/** The text of a brand-new main config that only imports the drop-in. */
export function renderNewMainConfig(version: ContainerdVersion, dropInSeen: string): string {
  return [
    '# containerd config created by `tsshim install` (there was none); `tsshim uninstall` removes it.',
    `version = ${version === '2' ? 3 : 2}`,
    `imports = [${JSON.stringify(dropInSeen)}]`,
    '',
  ].join('\n');
}

/**
 * After writing: `containerd config dump` of the host's containerd must show every tsshim entry
 * (runtime_type, runtime_path, ConfigPath) and the default runtime's entry. Returns problems.
 */
export function verifyDump(dump: string, o: { version: ContainerdVersion; handlers: readonly HandlerDefinition[]; configDir: string; runtimePath: string }): string[] {
  let doc: Table;
  try {
    doc = parseToml(dump) as Table;
  } catch (err) {
    return [`containerd config dump is not TOML: ${(err as Error).message.split('\n')[0]}`];
  }
  const plugins = isTable(doc.plugins) ? doc.plugins : {};
  const cri = plugins[o.version === '2' ? CRI_V3_RUNTIME : CRI_V2];
  const c = isTable(cri) && isTable(cri.containerd) ? cri.containerd : {};
  const runtimes = isTable(c.runtimes) ? c.runtimes : {};
  const problems: string[] = [];
  for (const e of runtimeEntries({ version: o.version, entries: o.handlers, configDir: o.configDir, runtimePath: o.runtimePath })) {
    const got = runtimes[e.name];
    if (!isTable(got)) {
      problems.push(`no runtime entry ${e.name}`);
      continue;
    }
    for (const k of ['runtime_type', 'runtime_path'] as const) if (got[k] !== e.table[k]) problems.push(`${e.name}.${k} = ${JSON.stringify(got[k])}, expected ${JSON.stringify(e.table[k])}`);
    const cp = isTable(got.options) ? got.options.ConfigPath : undefined;
    if (cp !== e.table.options.ConfigPath) problems.push(`${e.name}.options.ConfigPath = ${JSON.stringify(cp)}, expected ${JSON.stringify(e.table.options.ConfigPath)}`);
  }
  const def = typeof c.default_runtime_name === 'string' ? c.default_runtime_name : 'runc';
  if (!isTable(runtimes[def])) problems.push(`default_runtime_name "${def}" names no runtime entry (CRI would not start)`);
  return problems;
}
