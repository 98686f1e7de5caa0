/**
 * Which log format containerd writes (ADR 0025). containerd tells its shims nothing about it: no
 * flag, no environment variable, no bootstrap field (1.6, 1.7, 2.x; only `-debug` for the level).
 * runc-v2 writes logrus text whatever containerd's format. We can do better for `format = "auto"`:
 * containerd's own config file says it (`[debug] format`), and containerd is our parent at `start`
 * (its pid and command line, hence `--config`, are in /proc).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';

export const CONTAINERD_DEFAULT_CONFIG = '/etc/containerd/config.toml';

/** containerd's config file from its argv (`--config X`, `-c X`, `--config=X`, `-c=X`, `-config X`). */
export function configFromArgv(argv: readonly string[]): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--?(?:config|c)(?:=(.*))?$/.exec(a);
    if (!m) continue;
    if (m[1] !== undefined) return m[1];
    return argv[i + 1];
  }
  return undefined;
}

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `[debug] format` of one parsed config ("json", "text" or undefined). */
function formatOf(doc: Record<string, unknown>): string | undefined {
  const d = doc.debug;
  return isTable(d) && typeof d.format === 'string' && d.format !== '' ? d.format : undefined;
}

/** Files an `imports` entry names: a path, or a glob in its last component (containerd uses filepath.Glob). */
async function expandImport(entry: string, dir: string): Promise<string[]> {
  const p = path.isAbsolute(entry) ? entry : path.join(dir, entry);
  const base = path.basename(p);
  if (!/[*?[]/.test(base)) return [p];
  const re = new RegExp('^' + base.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
  const names = await fsp.readdir(path.dirname(p)).catch(() => [] as string[]);
  return names.filter((n) => re.test(n)).sort().map((n) => path.join(path.dirname(p), n));
}

/**
 * containerd's log format as its config files set it: the main file, then its `imports` in
 * order (a later one wins, as containerd merges them). undefined when nothing says (text).
 */
export async function formatFromConfig(file: string, parse: (text: string) => Record<string, unknown>): Promise<string | undefined> {
  let doc: Record<string, unknown>;
  try {
    doc = parse(await fsp.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  let format = formatOf(doc);
  const imports = Array.isArray(doc.imports) ? doc.imports.filter((x): x is string => typeof x === 'string') : [];
  for (const entry of imports) {
    for (const f of await expandImport(entry, path.dirname(file))) {
      try {
        format = formatOf(parse(await fsp.readFile(f, 'utf8'))) ?? format;
      } catch {
        /* unreadable import: containerd would not have started; ignore */
      }
    }
  }
  return format;
}

/** The format containerd `pid` logs in: 'json' or 'logfmt' (its text format; also when unknown). */
export async function containerdLogFormat(pid: number | undefined): Promise<'json' | 'logfmt'> {
  if (!pid || !Number.isInteger(pid) || pid <= 1) return 'logfmt';
  try {
    const argv = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
    if (!argv[0] || !path.basename(argv[0]).startsWith('containerd')) return 'logfmt';
    let file = configFromArgv(argv) ?? CONTAINERD_DEFAULT_CONFIG;
    if (!path.isAbsolute(file)) file = path.join(await fsp.readlink(`/proc/${pid}/cwd`), file);
    const { parse } = await import('smol-toml');
    const f = await formatFromConfig(file, (t) => parse(t) as Record<string, unknown>);
    return f === 'json' ? 'json' : 'logfmt';
  } catch {
    return 'logfmt';
  }
}
