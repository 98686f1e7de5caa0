/** pino, JSON lines, into fd 2: the bundle's `log` FIFO that containerd copies into its own log. */
import pino, { type Logger } from 'pino';

/** Log lines waiting for a slow reader, at most (older lines are kept, newer ones dropped). */
export const MAX_LOG_BUFFER = 8 << 20;
/** Longest string field logged as is; longer ones (request data such as a 1 MiB id) are cut. */
export const MAX_LOG_FIELD = 1024;

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

export function createLogger(opts: { level: string; base?: Record<string, unknown> }): Logger {
  // maxLength: a reader that stalls must not grow the shim without bound (ADR 0012).
  const dest = pino.destination({ dest: 2, sync: false, minLength: 0, maxLength: MAX_LOG_BUFFER });
  // No reader left (containerd gone, or a grouped task's FIFO): drop, never crash.
  dest.on('error', () => undefined);
  return pino(
    {
      level: opts.level,
      base: opts.base,
      formatters: { log: boundFields },
      // Spec env values may carry secrets: never log them, wherever they appear.
      redact: { paths: ['env', '*.env', '*.*.env', 'spec.process.env', 'process.env'], censor: '[redacted]' },
    },
    dest,
  );
}
