/**
 * The handler config file `tsshim config handlers` writes (<config-dir>/<type>.toml): the
 * header, `handler`, `name` and the keys every handler shares are rendered here; the
 * definition contributes its top-level settings and `[options]` (DefaultConfig).
 * Format and parser: config.ts.
 */
import type { HandlerDefinition } from '../shim-api/definition.js';

const COMMON = `debug = false                       # raise the shim's log level
allow_annotation_override = []      # handler config files the io.tsshim.handler annotation may pick
`;

export function renderHandlerConfig(def: Pick<HandlerDefinition, 'type' | 'runtimeEntry' | 'docsPage' | 'defaultConfig'>): string {
  const c = def.defaultConfig;
  return `# tsshim handler config: ${def.type} (${c.description}).
# Written by \`tsshim config handlers\`; format in src/composition/config.ts, ${def.docsPage}.

handler = "${def.type}"
name = "${def.runtimeEntry}"
${c.settings}${COMMON}
[options]
${c.options}`;
}
