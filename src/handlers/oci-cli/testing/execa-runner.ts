/**
 * A CommandRunner built on execa, for tests only. Production code gets its runner
 * from the process-wide reaper; the driver itself never imports execa.
 */
import { execa, type Options } from 'execa';
import type { CommandRunner, RunResult } from '../runner.js';

export const execaRunner: CommandRunner = async (file, args, opts = {}) => {
  const options: Options = {
    reject: false,
    stripFinalNewline: false,
    stdio: (opts.stdio ?? ['ignore', 'pipe', 'pipe']) as Options['stdio'],
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
    ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
  };
  const r = await execa(file, args, options);
  const code = (r as { code?: string }).code;
  if (r.exitCode === undefined && r.signal === undefined && !r.timedOut && code) {
    // Spawn failure (ENOENT, EACCES...): the runner contract says throw.
    throw Object.assign(new Error(r.message), { code });
  }
  const result: RunResult = {
    exitCode: r.exitCode ?? -1,
    stdout: typeof r.stdout === 'string' ? r.stdout : '',
    stderr: typeof r.stderr === 'string' ? r.stderr : '',
    failed: r.failed,
    timedOut: r.timedOut,
  };
  if (r.signal !== undefined) result.signal = r.signal;
  return result;
};
