import type { Test } from 'uvu';

/**
 * Registers `t.skip(name)` (counted in uvu's "Skipped") and prints `SKIP: <name>: <reason>`,
 * which scripts/run-tests.mjs collects and repeats at the end of the run.
 */
export function skipWithReason<T>(t: Test<T>, name: string, reason: string): void {
  t.skip(name);
  console.log(`SKIP: ${name}: ${reason.replace(/\s*\n\s*/g, ' ')}`);
}
