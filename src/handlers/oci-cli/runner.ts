/**
 * The one way the OCI-CLI driver runs a runtime binary. The driver never spawns
 * processes itself: the process-wide reaper supplies a CommandRunner so that the
 * runtime's own exit status is not stolen by the subreaper's wait loop.
 */
export type StdioSlot = number | 'ignore' | 'pipe';

export interface RunOptions {
  cwd?: string;
  /** Written to the child's stdin (stdin must be 'pipe'). */
  input?: string | Uint8Array;
  /** Extra environment; merged over the parent's environment by the runner. */
  env?: Record<string, string>;
  /** Kill the child after this many milliseconds. */
  timeoutMs?: number;
  stdio?: [StdioSlot, StdioSlot, StdioSlot];
  /** The backend subcommand (create, start, ...), for metrics and spans (observedRunner). */
  command?: string;
}

/** What one command run gives back: the reaper's own result type (src/sys). */
export type { RunResult } from '../../sys/reaper.js';
import type { RunResult } from '../../sys/reaper.js';

/** Throws only when the binary cannot be spawned (ENOENT, EACCES, ...); the error carries `code`. */
export type CommandRunner = (file: string, args: string[], opts?: RunOptions) => Promise<RunResult>;

import { metrics } from '../../observe/shim-metrics.js';
import { SpanKind, formatTraceparent, tracer } from '../../observe/tracing.js';
import { currentRequest } from '../../shim-api/request-scope.js';

/**
 * `run` with each command timed and its failures counted by handler and subcommand, and, when
 * the request that runs it is traced, a child span of the request's span; the backend gets that
 * span as TRACEPARENT/TRACESTATE in its environment, as runc-v2 built with shim_tracing passes
 * it to runc (ADR 0025).
 */
export function observedRunner(run: CommandRunner, handler: string): CommandRunner {
  return async (file, args, opts = {}) => {
    const command = opts.command ?? '?';
    const parent = currentRequest()?.span;
    const span = parent ? tracer()?.startSpan(`${file.slice(file.lastIndexOf('/') + 1)} ${command}`, SpanKind.INTERNAL, parent) : undefined;
    let runOpts = opts;
    if (span) {
      span.setAttribute('tsshim.handler', handler).setAttribute('process.executable.path', file).setAttribute('tsshim.backend.command', command);
      const env: Record<string, string> = { ...opts.env, TRACEPARENT: formatTraceparent(span.context) };
      if (span.context.state) env.TRACESTATE = span.context.state;
      runOpts = { ...opts, env };
    }
    const started = process.hrtime.bigint();
    const done = (reason: string | undefined, detail?: string) => {
      metrics.commandSeconds.observe({ handler, command }, Number(process.hrtime.bigint() - started) / 1e9);
      if (reason) metrics.commandFailures.inc({ handler, command, reason });
      if (span) {
        if (reason) span.fail(detail ?? reason);
        span.finish();
      }
    };
    let r: RunResult;
    try {
      r = await run(file, args, runOpts);
    } catch (err) {
      done('spawn', (err as Error)?.message);
      throw err;
    }
    span?.setAttribute('process.exit.code', r.exitCode);
    if (r.timedOut) done('timeout');
    else if (r.signal !== undefined) done('signal', `killed by ${r.signal}`);
    else if (r.failed || r.exitCode !== 0) done('exit', `exit status ${r.exitCode}`);
    else done(undefined);
    return r;
  };
}
