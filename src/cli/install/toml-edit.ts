/**
 * The one edit `tsshim install` makes to the operator's own containerd config: an entry in its
 * top-level `imports` array (the line added when there is none), and the exact inverse. Text in,
 * text out: every other byte (comments, order, spacing) stays as it was, and each edit is checked by
 * parsing both texts: the documents must differ in `imports` by exactly that entry.
 */
import { isDeepStrictEqual } from 'node:util';
import { parse as parseToml } from 'smol-toml';

type Table = Record<string, unknown>;

/** Comment on the line `install` adds when the config has no `imports`. */
export const ADDED_LINE_COMMENT = '# added by `tsshim install`; `tsshim uninstall` removes it';

interface Scan {
  /** Index of the first table header (`[x]` or `[[x]]` at line start, outside values), or text.length. */
  firstTable: number;
  /** The top-level `imports = [...]` key, if any. */
  imports?: {
    lineStart: number;
    /** Index of its `[` and of the matching `]`. */
    open: number;
    close: number;
    /** Its string elements: value, and start/end (end exclusive) of each literal. */
    elements: Array<{ value: string; start: number; end: number }>;
  };
  /** End of the top-level `version = N` line (index after its newline), if before the first table. */
  versionLineEnd?: number;
}

class TomlScanError extends Error {}

/**
 * A small scanner, enough for the top level of a containerd config: comments, the four string
 * forms, arrays (nested), inline tables, bare values. It stops at the first table header.
 */
function scan(text: string): Scan {
  let i = 0;
  const n = text.length;
  const out: Scan = { firstTable: n };

  const skipSpace = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const skipComment = () => {
    if (text[i] === '#') while (i < n && text[i] !== '\n') i++;
  };
  /** Reads a string literal at i; returns its value (escapes of basic strings decoded through JSON for the common cases). */
  const readString = (): string => {
    const start = i;
    const q = text[i]!;
    const triple = text.startsWith(q.repeat(3), i);
    if (triple) {
      const end = text.indexOf(q.repeat(3), i + 3);
      if (end < 0) throw new TomlScanError('unterminated multi-line string');
      i = end + 3;
      while (text[i] === q) i++; // up to two quotes may end the content
      return parseToml(`v = ${text.slice(start, i)}`).v as string;
    }
    i++;
    while (i < n && text[i] !== q) {
      if (text[i] === '\n') throw new TomlScanError('newline in a string');
      if (q === '"' && text[i] === '\\') i++;
      i++;
    }
    if (i >= n) throw new TomlScanError('unterminated string');
    i++;
    return parseToml(`v = ${text.slice(start, i)}`).v as string;
  };
  /** Skips one value at i (recursing into arrays and inline tables); returns string values of a top array when asked. */
  const skipValue = (): void => {
    const c = text[i];
    if (c === '"' || c === "'") {
      readString();
      return;
    }
    if (c === '[' || c === '{') {
      const close = c === '[' ? ']' : '}';
      i++;
      for (;;) {
        while (i < n && /[ \t\r\n,]/.test(text[i]!)) i++;
        skipComment();
        if (i >= n) throw new TomlScanError(`unterminated ${c}`);
        if (text[i] === close) {
          i++;
          return;
        }
        if (/[ \t\r\n,#]/.test(text[i]!)) continue;
        if (c === '{') {
          // key = value
          while (i < n && text[i] !== '=') {
            if (text[i] === '"' || text[i] === "'") readString();
            else i++;
          }
          i++;
          skipSpace();
        }
        skipValue();
      }
    }
    while (i < n && !/[ \t\r\n,\]}#]/.test(text[i]!)) i++; // bare value: number, bool, date
  };

  while (i < n) {
    const lineStart = i;
    skipSpace();
    if (text[i] === '\n' || text[i] === '\r') {
      i = text.indexOf('\n', i) + 1 || n;
      continue;
    }
    if (text[i] === '#') {
      skipComment();
      continue;
    }
    if (text[i] === '[') {
      out.firstTable = lineStart;
      return out;
    }
    // key (bare, quoted or dotted) = value
    const keyStart = i;
    while (i < n && text[i] !== '=' && text[i] !== '\n') {
      if (text[i] === '"' || text[i] === "'") readString();
      else i++;
    }
    if (text[i] !== '=') throw new TomlScanError(`expected "=" after a key at offset ${keyStart}`);
    const rawKey = text.slice(keyStart, i).trim();
    const key = /^[A-Za-z0-9_-]+$/.test(rawKey) ? rawKey : (() => {
      try {
        return Object.keys(parseToml(`${rawKey} = 0`))[0];
      } catch {
        return rawKey;
      }
    })();
    i++;
    skipSpace();
    if (key === 'imports' && text[i] === '[') {
      const open = i;
      const elements: NonNullable<Scan['imports']>['elements'] = [];
      i++;
      for (;;) {
        while (i < n && /[ \t\r\n,]/.test(text[i]!)) i++;
        if (text[i] === '#') {
          skipComment();
          continue;
        }
        if (i >= n) throw new TomlScanError('unterminated imports array');
        if (text[i] === ']') break;
        if (text[i] !== '"' && text[i] !== "'") throw new TomlScanError('imports holds something other than strings');
        const start = i;
        const value = readString();
        elements.push({ value, start, end: i });
      }
      out.imports = { lineStart, open, close: i, elements };
      i++;
    } else {
      skipValue();
    }
    skipSpace();
    skipComment();
    if (i < n && text[i] === '\r') i++;
    if (i < n && text[i] !== '\n') throw new TomlScanError(`unexpected text after a value at offset ${i}`);
    i++;
    if (key === 'version') out.versionLineEnd = Math.min(i, n);
  }
  return out;
}

function parse(text: string, what: string): Table {
  try {
    return parseToml(text) as Table;
  } catch (err) {
    throw new Error(`${what} is not valid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
}

function without(doc: Table, key: string): Table {
  const { [key]: _, ...rest } = doc;
  return rest;
}

/** The `imports` list of a config text (empty when absent). */
export function importsOf(text: string): string[] {
  const v = parse(text, 'the containerd config').imports;
  return Array.isArray(v) ? (v as string[]) : [];
}

function check(before: string, after: string, expected: string[]): void {
  const a = parse(before, 'the containerd config');
  const b = parse(after, 'the edited containerd config');
  const got = Array.isArray(b.imports) ? b.imports : [];
  if (!isDeepStrictEqual(got, expected) || !isDeepStrictEqual(without(a, 'imports'), without(b, 'imports'))) {
    throw new Error('internal: the imports edit changed more than the imports list (nothing written)');
  }
}

export interface ImportEdit {
  text: string;
  /** True when the whole `imports = [...]` line was added (uninstall then removes the line). */
  addedLine: boolean;
}

/**
 * `text` with `entry` appended to its top-level `imports` (a new `imports = [...]` line after
 * `version`, or before the first table, when there is none). Already listed: unchanged.
 */
export function addImport(text: string, entry: string): ImportEdit {
  const before = importsOf(text);
  if (before.includes(entry)) return { text, addedLine: false };
  let s: Scan;
  try {
    s = scan(text);
  } catch (err) {
    throw new Error(`cannot place an imports entry in the containerd config (${(err as Error).message}): add ${JSON.stringify(entry)} to its imports yourself`);
  }
  const lit = JSON.stringify(entry);
  let out: string;
  let addedLine = false;
  if (s.imports) {
    const last = s.imports.elements.at(-1);
    out = last ? text.slice(0, last.end) + `, ${lit}` + text.slice(last.end) : text.slice(0, s.imports.open + 1) + lit + text.slice(s.imports.open + 1);
  } else {
    addedLine = true;
    const line = `imports = [${lit}]  ${ADDED_LINE_COMMENT}\n`;
    const at = s.versionLineEnd ?? (s.firstTable < text.length ? s.firstTable : text.length);
    const head = text.slice(0, at);
    out = head + (head.length && !head.endsWith('\n') ? '\n' : '') + line + text.slice(at);
  }
  check(text, out, [...before, entry]);
  return { text: out, addedLine };
}

/** The inverse of addImport: `entry` removed from `imports` (and the line, when install added it and nothing else is left). */
export function removeImport(text: string, entry: string, opts: { addedLine: boolean }): string {
  const before = importsOf(text);
  if (!before.includes(entry)) return text;
  const s = scan(text);
  const imp = s.imports;
  if (!imp) throw new Error('internal: imports listed but not found by the scanner');
  const idx = imp.elements.findIndex((e) => e.value === entry);
  const el = imp.elements[idx]!;
  let out: string | undefined;
  if (opts.addedLine && imp.elements.length === 1) {
    const lineEnd = text.indexOf('\n', imp.close);
    out = text.slice(0, imp.lineStart) + text.slice(lineEnd < 0 ? text.length : lineEnd + 1);
  } else {
    const prevEnd = idx > 0 ? imp.elements[idx - 1]!.end : -1;
    let from = el.start;
    let to = el.end;
    if (prevEnd >= 0 && text.slice(prevEnd, el.start) === ', ') {
      from = prevEnd; // `, "entry"` exactly as addImport wrote it
    } else {
      let j = el.end;
      while (text[j] === ' ' || text[j] === '\t') j++;
      if (text[j] === ',') {
        to = j + 1; // the element and its own comma
        while (text[to] === ' ' || text[to] === '\t') to++;
      } else if (prevEnd >= 0) {
        // the last element without a trailing comma: drop the separator after the previous one
        const comma = text.indexOf(',', prevEnd);
        if (comma >= 0 && comma < el.start) {
          out = text.slice(0, comma) + text.slice(comma + 1, el.start) + text.slice(el.end);
          out = dropEmptiedLine(text.slice(0, comma) + text.slice(comma + 1), out, el.start - 1);
        }
      }
    }
    if (out === undefined) out = dropEmptiedLine(text, text.slice(0, from) + text.slice(to), from);
  }
  check(text, out, before.filter((e) => e !== entry));
  return out;
}

/** When the removal left the line at `at` holding only blanks (it did not before), remove that line. */
function dropEmptiedLine(before: string, after: string, at: number): string {
  const start = after.lastIndexOf('\n', at - 1) + 1;
  const endNl = after.indexOf('\n', at);
  const end = endNl < 0 ? after.length : endNl + 1;
  if (after.slice(start, end).trim() !== '') return after;
  const oldEnd = before.indexOf('\n', at);
  if (before.slice(start, oldEnd < 0 ? before.length : oldEnd).trim() === '') return after;
  return after.slice(0, start) + after.slice(end);
}

/** The top-level `version` of a config text (undefined: absent, containerd reads it as 1). */
export function configVersion(text: string): number | undefined {
  const v = parse(text, 'the containerd config').version;
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
}
