// config.toml of a private containerd: everything under its own directory, CRI off unless asked.
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { containerdRelease, criPluginIds, migrateConfigToV3, selectedContainerd, type ContainerdVersion } from './containerd-version.js';

const CRI_PLUGIN = 'io.containerd.grpc.v1.cri';

type TomlTable = Record<string, unknown>;
const isTable = (v: unknown): v is TomlTable => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Tables merge, values (arrays included) replace. */
export function deepMerge(base: TomlTable, over: TomlTable): TomlTable {
  const out: TomlTable = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isTable(b) && isTable(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/** The config.toml text for a private instance rooted at dir. Exported for inspection and tests. */
export function renderConfig(dir: string, opts: { extraConfig?: string; debug?: boolean; containerd?: ContainerdVersion } = {}): string {
  const version = opts.containerd ?? selectedContainerd();
  const extra = opts.extraConfig ? (parseToml(opts.extraConfig) as TomlTable) : {};
  const plugins = isTable(extra.plugins) ? extra.plugins : {};
  const criRequested = CRI_PLUGIN in plugins;
  const base: TomlTable = {
    version: 2,
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    disabled_plugins: criRequested ? [] : criPluginIds(version),
    grpc: { address: join(dir, 'c.sock'), uid: 0, gid: 0 },
    ttrpc: { address: join(dir, 'c.sock.ttrpc'), uid: 0, gid: 0 },
    debug: { address: '', level: opts.debug ? 'debug' : 'info' },
    metrics: { address: '' },
    plugins: {
      'io.containerd.internal.v1.opt': { path: join(dir, 'opt') },
    },
  };
  // Written as version 2; containerd 2.x gets the version-3 layout (containerd-version.ts).
  const doc = deepMerge(base, extra);
  return stringifyToml(containerdRelease(version).configVersion === 3 ? migrateConfigToV3(doc) : doc) + '\n';
}
