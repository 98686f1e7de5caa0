/**
 * `tsshim`: the operator CLI.
 *
 *   tsshim doctor [--json] [--config-dir DIR]
 *   tsshim config containerd [--version 1.6|1.7|2] [--handlers a,b] [--config-dir DIR]
 *   tsshim config handlers --out DIR [--handlers a,b] [--force]
 *   tsshim config runtimeclass [--handlers a,b]
 *   tsshim node status|reload [--json] [--address ADDR]
 *
 * Everything comes from the one handler list (src/composition/registry.ts): plain
 * definitions whose task code loads lazily, and no inversify container, so start-up stays light.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_CONFIG_PATH, defaultConfig, loadConfigFile, type ShimConfig } from '../composition/config.js';
import { findHandler, probeAll, registry } from '../composition/registry.js';
import { renderHandlerConfig } from '../composition/handler-config.js';
import type { HandlerConfig } from '../shim-api/handler.js';
import type { HandlerDefinition } from '../shim-api/definition.js';
import type { Probe } from '../shim-api/host-facts.js';
import { version } from '../version.js';
import { containerdConfig, handlerConfigPath, parseContainerdVersion, runtimeClasses } from './generate.js';

const DEFAULT_CONFIG_DIR = path.dirname(DEFAULT_CONFIG_PATH);

const USAGE = `usage:
  tsshim doctor [--json] [--config-dir DIR]
      Probe every handler on this host. Exit 0 iff the default handler (from
      $TSSHIM_CONFIG or ${DEFAULT_CONFIG_PATH}, else runc) is usable.
  tsshim config containerd [--version 1.6|1.7|2] [--handlers LIST] [--config-dir DIR]
      Print containerd CRI runtime entries (default --version 1.7, --config-dir ${DEFAULT_CONFIG_DIR}).
  tsshim config handlers --out DIR [--handlers LIST] [--force]
      Write the per-handler TOML files the runtime entries point at.
  tsshim config runtimeclass [--handlers LIST]
      Print Kubernetes RuntimeClass documents.
  tsshim node status [--json] [--address ADDR]
      The node daemon (node mode) of the containerd at ADDR (default
      /run/containerd/containerd.sock): pids, uptime, restarts, tasks by namespace and handler.
  tsshim node reload [--json] [--address ADDR]
      Replace the node daemon's worker with one running the tsshim installed now (an upgrade):
      containers, containerd's connections and stdio stay with the supervisor.
  tsshim --version

LIST is comma-separated handler types or entry names (${registry.map((e) => e.type).join(', ')}; e.g. tsshim-gvisor for gvisor).
`;

class UsageError extends Error {}

function selectHandlers(list: string | undefined): HandlerDefinition[] {
  if (list === undefined || list.trim() === '') return [...registry];
  const out: HandlerDefinition[] = [];
  for (const raw of list.split(',')) {
    const name = raw.trim();
    if (!name) continue;
    const e = findHandler(name);
    if (!e) throw new UsageError(`unknown handler "${name}": known handlers are ${registry.map((r) => `${r.type} (${r.runtimeEntry})`).join(', ')}`);
    if (!out.includes(e)) out.push(e);
  }
  if (!out.length) throw new UsageError('--handlers names no handler');
  return out;
}

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

// ---------------------------------------------------------------- doctor

interface DoctorRow extends Probe {
  /** Config used for the probe: a file path, or "defaults". */
  config: string;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

async function doctor(args: string[]): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean' }, 'config-dir': { type: 'string' } });
  const configDir = (values['config-dir'] as string | undefined) ?? DEFAULT_CONFIG_DIR;

  let shim: ShimConfig | undefined;
  let configError: string | undefined;
  try {
    shim = await defaultConfig();
  } catch (err) {
    configError = (err as Error).message;
  }
  const defaultType = shim?.handler.type ?? 'runc';

  // Per handler: the default config when it is of that type, else <config-dir>/<type>.toml when present.
  const configs: Record<string, HandlerConfig> = {};
  const sources: Record<string, string> = {};
  const fileErrors: string[] = [];
  for (const e of registry) {
    const file = handlerConfigPath(e, configDir);
    if (fs.existsSync(file)) {
      try {
        const c = await loadConfigFile(file);
        if (c.handler.type === e.type) {
          configs[e.type] = c.handler;
          sources[e.type] = file;
        } else {
          fileErrors.push(`${file}: handler = "${c.handler.type}", expected "${e.type}"; probed with defaults`);
        }
      } catch (err) {
        fileErrors.push(`${(err as Error).message}; probed with defaults`);
      }
    }
  }
  if (shim && findHandler(shim.handler.type)?.type === shim.handler.type) {
    configs[shim.handler.type] = shim.handler;
    sources[shim.handler.type] = shim.source;
  }

  const probes = await probeAll(configs);
  const rows: DoctorRow[] = probes.map((p) => ({ ...p, config: sources[p.type] ?? 'defaults' }));
  const defaultProbe = rows.find((r) => r.type === defaultType);
  const problems = [...fileErrors];
  if (configError) problems.push(`default config: ${configError}`);
  else if (!defaultProbe) problems.push(`default config ${shim!.source}: unknown handler "${defaultType}"; known handlers are ${registry.map((e) => e.type).join(', ')}`);
  const ok = !configError && defaultProbe !== undefined && defaultProbe.usable;

  if (values.json) {
    const report = {
      ok,
      defaultHandler: { type: defaultType, source: shim?.source ?? null, usable: defaultProbe?.usable ?? false },
      handlers: rows,
      problems,
    };
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    const lines = [['HANDLER', 'RUNTIME ENTRY', 'USABLE', 'BACKEND VERSION', 'REASON']];
    for (const r of rows) lines.push([r.type, r.runtimeEntry, r.usable ? 'yes' : 'no', r.version ?? '-', r.reason]);
    let out = table(lines);
    out += `\ndefault handler: ${defaultType} (${shim?.source ?? 'config unreadable'}): ${ok ? 'usable' : 'NOT usable'}\n`;
    for (const p of problems) out += `problem: ${p}\n`;
    process.stdout.write(out);
  }
  return ok ? 0 : 1;
}

// ---------------------------------------------------------------- config

async function config(args: string[]): Promise<number> {
  const [what, ...rest] = args;
  switch (what) {
    case 'containerd': {
      const { values } = parse(rest, { version: { type: 'string' }, handlers: { type: 'string' }, 'config-dir': { type: 'string' } });
      const v = parseContainerdVersion((values.version as string | undefined) ?? '1.7');
      if (!v) throw new UsageError(`--version must be 1.6, 1.7 or 2, got "${String(values.version)}"`);
      const configDir = (values['config-dir'] as string | undefined) ?? DEFAULT_CONFIG_DIR;
      if (!configDir.startsWith('/')) throw new UsageError(`--config-dir must be an absolute path (containerd reads it), got "${configDir}"`);
      process.stdout.write(containerdConfig({ version: v, entries: selectHandlers(values.handlers as string | undefined), configDir }));
      return 0;
    }
    case 'handlers': {
      const { values } = parse(rest, { out: { type: 'string' }, handlers: { type: 'string' }, force: { type: 'boolean' } });
      const out = values.out as string | undefined;
      if (!out) throw new UsageError('config handlers needs --out DIR');
      const entries = selectHandlers(values.handlers as string | undefined);
      const files = entries.map((e) => ({ e, file: path.join(out, e.configFile) }));
      const existing = files.filter((f) => fs.existsSync(f.file)).map((f) => f.file);
      if (existing.length && !values.force) {
        process.stderr.write(`tsshim: not overwriting ${existing.join(', ')} (use --force)\n`);
        return 1;
      }
      fs.mkdirSync(out, { recursive: true });
      for (const { e, file } of files) {
        fs.writeFileSync(file, renderHandlerConfig(e), { mode: 0o644 });
        process.stdout.write(`wrote ${file}\n`);
      }
      return 0;
    }
    case 'runtimeclass': {
      const { values } = parse(rest, { handlers: { type: 'string' } });
      process.stdout.write(runtimeClasses(selectHandlers(values.handlers as string | undefined)));
      return 0;
    }
    default:
      throw new UsageError(what ? `unknown config target "${what}"` : 'config needs a target: containerd, handlers or runtimeclass');
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'doctor':
        return await doctor(rest);
      case 'config':
        return await config(rest);
      case 'node': {
        const [what, ...more] = rest;
        if (what !== 'status' && what !== 'reload') throw new UsageError(what ? `unknown node command "${what}"` : 'node needs a command: status or reload');
        const { values } = parse(more, { json: { type: 'boolean' }, address: { type: 'string' } });
        const cli = await import('./node.js');
        const opts = { json: values.json === true, address: values.address as string | undefined };
        return what === 'status' ? await cli.nodeStatus(opts) : await cli.nodeReload(opts);
      }
      case '--version':
      case 'version':
        process.stdout.write(`tsshim ${version()}\n`);
        return 0;
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return 0;
      default:
        throw new UsageError(cmd ? `unknown command "${cmd}"` : 'no command');
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tsshim: ${err.message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`tsshim: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
