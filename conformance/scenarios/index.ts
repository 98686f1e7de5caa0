// The scenario catalogue, in report order.
import type { Scenario } from '../types.js';
import { lifecycleScenarios } from './lifecycle.js';
import { execScenarios } from './exec.js';
import { controlScenarios } from './control.js';
import { misuseScenarios } from './misuse.js';
import { robustnessScenarios } from './robustness.js';
import { criScenarios } from './cri.js';
import { runcOptionsScenarios } from './runc-options.js';

export const SCENARIOS: readonly Scenario[] = Object.freeze([
  ...lifecycleScenarios,
  ...execScenarios,
  ...controlScenarios,
  ...misuseScenarios,
  ...robustnessScenarios,
  ...runcOptionsScenarios,
  ...criScenarios,
]);

/** Scenarios whose id contains one of the comma-separated substrings (all when undefined). */
export function selectScenarios(filter: string | undefined, all: readonly Scenario[] = SCENARIOS): Scenario[] {
  const subs = filter?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!subs || subs.length === 0) return [...all];
  const chosen = all.filter((s) => subs.some((f) => s.id.includes(f)));
  if (chosen.length === 0) throw new Error(`no scenario id contains ${subs.join(' or ')}; ids: ${all.map((s) => s.id).join(', ')}`);
  return chosen;
}
