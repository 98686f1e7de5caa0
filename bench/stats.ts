// Small statistics for the benchmark: medians with their spread, never a pass/fail.

export interface Summary {
  n: number;
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
}

/** Nearest-rank quantile of the samples (q in [0, 1]). */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
}

export function summarize(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    median: quantile(xs, 0.5),
    p10: quantile(xs, 0.1),
    p90: quantile(xs, 0.9),
    min: xs.length ? Math.min(...xs) : NaN,
    max: xs.length ? Math.max(...xs) : NaN,
  };
}

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');

/**
 * `median (p10–p90)` for many samples, `median (min–max)` for a few (one per round).
 */
export function cell(s: Summary, digits = 1): string {
  if (s.n === 0) return 'not run';
  const [lo, hi] = s.n >= 10 ? [s.p10, s.p90] : [s.min, s.max];
  return `${fmt(s.median, digits)} (${fmt(lo, digits)}–${fmt(hi, digits)})`;
}

export const ratio = (a: Summary, b: Summary): string => (a.n && b.n && b.median > 0 ? `${fmt(a.median / b.median, 2)}×` : '–');
