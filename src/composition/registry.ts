/**
 * The handler list: one array of handler definitions, in display order (runc first: the
 * default). The shim's resolver, `tsshim doctor`, `tsshim config ...`, the docs test and the
 * conformance columns all read this array; nothing else lists handlers. Adding a handler is
 * one folder under src/handlers/ exporting a HandlerDefinition, plus one line here.
 *
 * Definitions are data plus lazy factories, so importing this stays light (the CLI does).
 */
import type { HandlerConfig } from '../shim-api/handler.js';
import type { HandlerDefinition } from '../shim-api/definition.js';
import type { Probe } from '../shim-api/host-facts.js';
import { runcDefinition } from '../handlers/runc/definition.js';
import { gvisorDefinition } from '../handlers/gvisor/definition.js';
import { youkiDefinition } from '../handlers/youki/definition.js';
import { kataDefinition } from '../handlers/kata/definition.js';
import { crunDefinition } from '../handlers/crun/definition.js';
import { ociDefinition } from '../handlers/oci/definition.js';
import { gatherHostFacts } from './host.js';

export const registry = Object.freeze([
  runcDefinition,
  gvisorDefinition,
  youkiDefinition,
  kataDefinition,
  crunDefinition,
  ociDefinition,
] as const);

/** A handler type the shim ships: 'runc' | 'gvisor' | ... */
export type HandlerType = (typeof registry)[number]['type'];

export const DEFAULT_HANDLER: HandlerType = 'runc';

/** Look a definition up by type ("gvisor"), runtime entry ("tsshim-gvisor") or entry suffix. */
export function findHandler(name: string): HandlerDefinition | undefined {
  return registry.find((e) => e.type === name) ?? registry.find((e) => e.runtimeEntry === name || e.runtimeEntry === `tsshim-${name}`);
}

/** Probe every definition with one gathering of host facts; `configs` overrides per type. */
export async function probeAll(configs: Partial<Record<string, HandlerConfig>> = {}, entries: readonly HandlerDefinition[] = registry): Promise<Probe[]> {
  const facts = await gatherHostFacts(entries.flatMap((e) => e.binariesFor(configs[e.type])));
  return entries.map((e) => e.assess(facts, configs[e.type]));
}

/** Probe one handler on this host. */
export async function probeHandler(def: HandlerDefinition, config?: HandlerConfig): Promise<Probe> {
  return def.assess(await gatherHostFacts(def.binariesFor(config)), config);
}
