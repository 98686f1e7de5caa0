/**
 * The shim's log lines as containerd's shims write them (ADR 0025): logrus through
 * containerd/log, whose text format is
 *
 *   time="2024-05-01T10:00:00.123456789Z" level=info msg="shim serving" id=c1 namespace=default pid=42 runtime=io.containerd.tsshim.v2
 *
 * time, level, msg first, then the other fields sorted by key; a value is quoted (Go's %q) when
 * it has a character other than [A-Za-z0-9-._/@^+]; levels as logrus names them (warning, not
 * warn); the error goes under `error`. The JSON format (containerd's `[debug] format = "json"`)
 * has the same keys. pino stays the logger: `logrusPinoOptions` makes its JSON carry these keys
 * and this time format, and `toLogfmt` turns one such JSON line into the text format.
 */

/** pino level label -> logrus level name. */
const LEVELS: Record<string, string> = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warning', error: 'error', fatal: 'fatal' };
const LEVEL_BY_NUMBER: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' };

export function logrusLevel(label: string): string {
  return LEVELS[label] ?? label;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * containerd's log.RFC3339NanoFixed ("2006-01-02T15:04:05.000000000Z07:00") in local time, as
 * Go's time.Format writes it. `nanos`: the sub-millisecond part of the time (0..999999).
 */
export function rfc3339NanoFixed(ms: number, subMsNanos = 0): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  const frac = pad(d.getMilliseconds(), 3) + pad(subMsNanos, 6);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${frac}${zone}`;
}

const hrBase = process.hrtime.bigint();
const msBase = Date.now();
/** Now, with nanoseconds from the monotonic clock (the wall clock read once at start). */
export function nowRfc3339(): string {
  const ns = process.hrtime.bigint() - hrBase;
  const ms = msBase + Number(ns / 1_000_000n);
  return rfc3339NanoFixed(ms, Number(ns % 1_000_000n));
}

const QUOTE_NEEDED = /[^A-Za-z0-9\-._/@^+]/;
/** Printable ASCII without `"` and `\`: quoted as is. */
const PLAIN_PRINTABLE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** logrus TextFormatter.needsQuoting */
function needsQuoting(s: string): boolean {
  return QUOTE_NEEDED.test(s);
}

const GO_ESCAPES: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 0x22: '\\"', 0x5c: '\\\\' };

/** Go's strconv.Quote (as fmt's %q): printable characters as they are, the rest escaped. */
export function goQuote(s: string): string {
  if (PLAIN_PRINTABLE.test(s)) return `"${s}"`;
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    const esc = GO_ESCAPES[c];
    if (esc) out += esc;
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c >= 0x80 && c < 0xa0) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd'; // a lone surrogate: Go would see invalid UTF-8
    else if (c === 0x2028 || c === 0x2029 || c === 0xfeff) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

function valueText(v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (v === null || v === undefined) s = '<nil>';
  else if (typeof v === 'object') s = JSON.stringify(v);
  else s = String(v);
  return needsQuoting(s) ? goQuote(s) : s;
}

const FIXED = new Set(['time', 'level', 'msg']);

/** One logrus text line (with its newline) for the fields of a log record. */
export function formatLogfmt(rec: Record<string, unknown>): string {
  const level = typeof rec.level === 'number' ? (LEVEL_BY_NUMBER[rec.level] ?? String(rec.level)) : String(rec.level ?? 'info');
  const parts = [`time=${valueText(String(rec.time ?? nowRfc3339()))}`, `level=${level}`];
  const msg = rec.msg;
  if (msg !== undefined && msg !== '') parts.push(`msg=${valueText(String(msg))}`);
  const keys = Object.keys(rec)
    .filter((k) => !FIXED.has(k))
    .sort();
  for (const k of keys) {
    const v = rec[k];
    if (v === undefined) continue;
    parts.push(`${k}=${valueText(v)}`);
  }
  return parts.join(' ') + '\n';
}

/** One pino JSON line -> one logrus text line; a line that is not JSON passes unchanged. */
export function toLogfmt(line: string): string {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return line.endsWith('\n') ? line : line + '\n';
  }
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return line.endsWith('\n') ? line : line + '\n';
  return formatLogfmt(rec as Record<string, unknown>);
}

/** `err` -> `error` (logrus WithError), an Error as its message; other fields as they are. */
export function renameErr(obj: Record<string, unknown>): Record<string, unknown> {
  if (!('err' in obj)) return obj;
  const { err, ...rest } = obj;
  if (err === undefined) return rest;
  return { ...rest, error: err instanceof Error ? err.message : err };
}
