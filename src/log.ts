/**
 * pino into fd 2: the bundle's `log` FIFO that containerd copies into its own log (pod mode), or
 * the node daemon's log file. Lines follow containerd's own format (ADR 0025): logrus text
 * (logfmt) by default, logrus-keyed JSON when containerd logs JSON; `format: 'pino'` keeps
 * pino's native JSON (tests, tools).
 */
import pino, { type Logger } from 'pino';
import { logrusLevel, nowRfc3339, renameErr, toLogfmt } from './observe/logfmt.js';

/** Log lines waiting for a slow reader, at most (older lines are kept, newer ones dropped). */
export const MAX_LOG_BUFFER = 8 << 20;
/** Longest string field logged as is; longer ones (request data such as a 1 MiB id) are cut. */
export const MAX_LOG_FIELD = 1024;

export type LogFormat = 'logfmt' | 'json' | 'pino';

/** Top-level string fields cut to MAX_LOG_FIELD characters, with the original length noted. */
export function boundFields(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    if (typeof v === 'string' && v.length > MAX_LOG_FIELD) {
      out ??= { ...obj };
      out[k] = `${v.slice(0, MAX_LOG_FIELD)}... (${v.length} characters)`;
    }
  }
  return out ?? obj;
}

/** The pino options that make its records carry logrus's keys, level names and time format. */
export function logrusPinoOptions(): pino.LoggerOptions {
  return {
    timestamp: () => `,"time":"${nowRfc3339()}"`,
    formatters: {
      level: (label) => ({ level: logrusLevel(label) }),
      log: (obj) => renameErr(boundFields(obj)),
    },
  };
}

export function createLogger(opts: { level: string; base?: Record<string, unknown>; format?: LogFormat; fd?: number }): Logger {
  // maxLength: a reader that stalls must not grow the shim without bound (ADR 0012).
  const dest = pino.destination({ dest: opts.fd ?? 2, sync: false, minLength: 0, maxLength: MAX_LOG_BUFFER });
  // No reader left (containerd gone, or a grouped task's FIFO): drop, never crash.
  dest.on('error', () => undefined);
  const format = opts.format ?? 'logfmt';
  const common: pino.LoggerOptions = {
    level: opts.level,
    base: opts.base,
    // Spec env values may carry secrets: never log them, wherever they appear.
    redact: { paths: ['env', '*.env', '*.*.env', 'spec.process.env', 'process.env'], censor: '[redacted]' },
  };
  if (format === 'pino') return pino({ ...common, formatters: { log: boundFields } }, dest);
  const options = { ...common, ...logrusPinoOptions() };
  if (format === 'json') return pino(options, dest);
  // logfmt: pino's JSON line, turned into logrus text synchronously on its way to the destination.
  const stream = {
    write: (line: string) => dest.write(toLogfmt(line)),
    flush: (cb?: (err?: Error) => void) => dest.flush(cb),
    flushSync: () => dest.flushSync(),
  };
  return pino(options, stream);
}
