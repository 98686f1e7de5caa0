// Structural comparison of two observations: one line per differing leaf.
import type { Json } from './types.js';

const show = (v: Json | undefined): string => (v === undefined ? '(absent)' : JSON.stringify(v).slice(0, 300));

/** Lines `path: reference=<a> column=<b>` for every difference; empty when equal. */
export function diffObservations(reference: Json | undefined, column: Json | undefined, path = ''): string[] {
  const here = path || '(root)';
  if (reference === column) return [];
  const isObj = (v: Json | undefined): v is { [k: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (Array.isArray(reference) && Array.isArray(column)) {
    // Arrays of scalars (event orders, outputs) are compared as a whole: a shifted element is one difference.
    if (reference.every((v) => typeof v !== 'object' || v === null) && column.every((v) => typeof v !== 'object' || v === null)) {
      return JSON.stringify(reference) === JSON.stringify(column) ? [] : [`${here}: reference=${show(reference)} column=${show(column)}`];
    }
    const out: string[] = [];
    const n = Math.max(reference.length, column.length);
    for (let i = 0; i < n; i++) out.push(...diffObservations(reference[i], column[i], `${path}[${i}]`));
    return out;
  }
  if (isObj(reference) && isObj(column)) {
    const out: string[] = [];
    const keys = [...new Set([...Object.keys(reference), ...Object.keys(column)])];
    for (const k of keys) out.push(...diffObservations(reference[k], column[k], path ? `${path}.${k}` : k));
    return out;
  }
  return [`${here}: reference=${show(reference)} column=${show(column)}`];
}
