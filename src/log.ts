/** pino, JSON lines, into fd 2: the bundle's `log` FIFO that containerd copies into its own log. */
import pino, { type Logger } from 'pino';

export function createLogger(opts: { level: string; base?: Record<string, unknown> }): Logger {
  const dest = pino.destination({ dest: 2, sync: false, minLength: 0 });
  // No reader left (containerd gone, or a grouped task's FIFO): drop, never crash.
  dest.on('error', () => undefined);
  return pino(
    {
      level: opts.level,
      base: opts.base,
      // Spec env values may carry secrets: never log them, wherever they appear.
      redact: { paths: ['env', '*.env', '*.*.env', 'spec.process.env', 'process.env'], censor: '[redacted]' },
    },
    dest,
  );
}
