/**
 * `tsshim`: the operator CLI.
 *
 *   tsshim doctor [--json] [--config-dir DIR]
 *   tsshim config containerd [--version 1.6|1.7|2] [--handlers a,b] [--config-dir DIR]
 *   tsshim config handlers --out DIR [--handlers a,b] [--force]
 *   tsshim config runtimeclass [--handlers a,b]
 *   tsshim node status [--json] [--reset-event-loop] [--address ADDR]
 *   tsshim node reload [--json] [--address ADDR]
 *   tsshim install --host-root DIR [--containerd-config PATH] [--restart-cmd CMD] [--handlers a,b] ...
 *   tsshim uninstall --host-root DIR [--restart-cmd CMD] [--force]
 *
 * Everything comes from the one handler list (src/composition/registry.ts): plain
 * definitions whose task code loads lazily, and no inversify container, so start-up stays light.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_CONFIG_PATH, defaultConfig, loadConfigFile, type ShimConfig } from '../composition/config.js';
import { findHandler, registry } from '../composition/registry.js';
import { bindHandler } from '../composition/handler-module.js';
import { gatherHostFacts } from '../composition/host.js';
import { renderHandlerConfig } from '../composition/handler-config.js';
import type { HandlerConfig } from '../shim-api/handler.js';
import type { HandlerDefinition } from '../shim-api/definition.js';
import type { Probe } from '../shim-api/host-facts.js';
import { version } from '../version.js';
import { containerdConfig, handlerConfigPath, parseContainerdVersion, runtimeClasses } from './generate.js';

const DEFAULT_CONFIG_DIR = path.dirname(DEFAULT_CONFIG_PATH);

const USAGE = `usage:
  tsshim doctor [--json] [--config-dir DIR] [--handler-config FILE]...
      Probe every handler on this host: the built-ins, the handler packages the
      config dir's files name (handler = "module:..."), and each FILE. Exit 0 iff
      the default handler (from $TSSHIM_CONFIG or ${DEFAULT_CONFIG_PATH}, else runc)
      is usable.
  tsshim config containerd [--version 1.6|1.7|2] [--handlers LIST] [--config-dir DIR]
      Print containerd CRI runtime entries (default --version 1.7, --config-dir ${DEFAULT_CONFIG_DIR}).
  tsshim config handlers --out DIR [--handlers LIST] [--force]
      Write the per-handler TOML files the runtime entries point at.
  tsshim config runtimeclass [--handlers LIST]
      Print Kubernetes RuntimeClass documents.
  tsshim conformance --handler-config FILE [--scenarios LIST] [--out DIR] [--handlers LIST] [--list]
      The conformance kit: every scenario of the catalogue (or those matching LIST's
      substrings) on the handler FILE selects, through a private containerd, beside the
      reference io.containerd.runc.v2; writes conformance.md/.json/.html into DIR
      (default: the current directory). Needs root, containerd, ctr, runc.
  tsshim new-handler NAME [--dir DIR] [--tsshim-dep SPEC]
      Scaffold a handler package (TypeScript, built with tsc) in DIR (default
      ./tsshim-handler-NAME): package.json, src/index.ts written with tsshim/handler,
      a handler config, README. SPEC is its tsshim devDependency (default: file: this tsshim).
  tsshim node status [--json] [--reset-event-loop] [--address ADDR]
      The node daemon (node mode) of the containerd at ADDR (default
      /run/containerd/containerd.sock): pids, uptime, restarts, tasks by namespace and handler,
      the longest event-loop delay (and p99) of supervisor and worker since the last reset;
      --reset-event-loop starts a new window after this answer.
  tsshim node reload [--json] [--address ADDR]
      Replace the node daemon's worker with one running the tsshim installed now (an upgrade):
      containers, containerd's connections and stdio stay with the supervisor.
  tsshim install --host-root DIR [--containerd-config PATH] [--restart-cmd CMD] [--handlers LIST]
                 [--containerd-version 1.6|1.7|2] [--drop-in PATH] [--node copy|host] [--force] [--prefix-paths]
      Install tsshim into the host whose / is at DIR (a DaemonSet's hostPath mount): the package and
      its Node under /opt/tsshim, containerd-shim-tsshim-v2 and tsshim in /usr/local/bin, handler configs
      in /etc/tsshim (an operator's own file is kept unless --force), a containerd drop-in
      (/etc/containerd/conf.d/tsshim.toml) and that file in the config's imports: the only edit of
      PATH (default /etc/containerd/config.toml). Every change is recorded, originals backed up,
      under DIR/var/lib/tsshim/install. containerd has no config reload: CMD (run with sh -c, e.g.
      "systemctl restart containerd") restarts it when its config changed. --prefix-paths: the
      host's containerd sees DIR at DIR (tests), not at /. Idempotent.
  tsshim uninstall --host-root DIR [--restart-cmd CMD] [--force]
      Put back every file install changed, byte for byte, and remove what it created. Refuses
      while processes run from the installed release (drain the node's tsshim pods; --force).
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

function parseArgsPositional(args: string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

// ---------------------------------------------------------------- conformance (the kit)

/**
 * `tsshim conformance`: the conformance runner (compiled to dist/conformance beside dist/src), reached
 * at run time so that the CLI and the shim never load it otherwise, and the shim's code does not
 * depend on the harness (which depends on it).
 */
async function conformance(args: string[]): Promise<number> {
  const kit = new URL('../../conformance/kit.js', import.meta.url);
  if (!fs.existsSync(kit)) {
    process.stderr.write(`tsshim: the conformance kit is not installed with this tsshim (${kit.pathname} missing)\n`);
    return 2;
  }
  const { runConformanceCli } = (await import(kit.href)) as { runConformanceCli(argv: string[], cmd: string): Promise<number> };
  return runConformanceCli(args, 'tsshim conformance');
}

// ---------------------------------------------------------------- doctor

interface DoctorRow extends Probe {
  /** Config used for the probe: a file path, or "defaults". */
  config: string;
  /** A handler package's row: what the config names and the file it loaded (absent when it failed to). */
  module?: { specifier: string; path: string | null };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** One row to probe: a built-in with its config, or a handler config file (a package's, or given by --handler-config). */
interface Target {
  def?: HandlerDefinition;
  config?: HandlerConfig;
  source: string;
  /** Why the handler config's definition could not be had (missing or broken module, unknown type). */
  error?: string;
  /** What the config said, when its definition could not be had. */
  wanted?: HandlerConfig;
}

/** The handler config files of the config dir whose handler is a package (`handler = "module:..."`). */
function moduleConfigFiles(configDir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(configDir).filter((n) => n.endsWith('.toml') && n !== path.basename(DEFAULT_CONFIG_PATH)).sort();
  } catch {
    return [];
  }
  return names
    .map((n) => path.join(configDir, n))
    .filter((f) => {
      try {
        return /^\s*handler\s*=\s*["']module:/m.test(fs.readFileSync(f, 'utf8'));
      } catch {
        return false;
      }
    });
}

async function configTarget(shim: ShimConfig): Promise<Target> {
  try {
    const bound = await bindHandler(shim.handler, shim.source, registry);
    return { def: bound.definition, config: bound.config, source: shim.source };
  } catch (err) {
    return { source: shim.source, error: (err as Error).message, wanted: shim.handler };
  }
}

async function doctor(args: string[]): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean' }, 'config-dir': { type: 'string' }, 'handler-config': { type: 'string', multiple: true } });
  const configDir = (values['config-dir'] as string | undefined) ?? DEFAULT_CONFIG_DIR;

  let shim: ShimConfig | undefined;
  let configError: string | undefined;
  try {
    shim = await defaultConfig();
  } catch (err) {
    configError = (err as Error).message;
  }

  // Built-ins: the default config when it is of that type, else <config-dir>/<type>.toml when present.
  const builtins = new Map<string, Target>(registry.map((e) => [e.type, { def: e, source: 'defaults' }]));
  const problems: string[] = [];
  for (const e of registry) {
    const file = handlerConfigPath(e, configDir);
    if (fs.existsSync(file)) {
      try {
        const c = await loadConfigFile(file);
        if (c.handler.type === e.type) builtins.set(e.type, { def: e, config: c.handler, source: file });
        else problems.push(`${file}: handler = "${c.handler.type}", expected "${e.type}"; probed with defaults`);
      } catch (err) {
        problems.push(`${(err as Error).message}; probed with defaults`);
      }
    }
  }
  let defaultTarget: Target | undefined;
  if (shim && !shim.handler.module && findHandler(shim.handler.type)?.type === shim.handler.type) {
    defaultTarget = { def: findHandler(shim.handler.type)!, config: shim.handler, source: shim.source };
    builtins.set(shim.handler.type, defaultTarget);
  }

  // Handler packages in the config dir, the default config's package, and --handler-config files (any handler).
  const extra: Target[] = [];
  const seen = new Set<string>();
  const files = [...moduleConfigFiles(configDir), ...((values['handler-config'] as string[] | undefined) ?? []).map((f) => path.resolve(f))];
  for (const file of files) {
    if (seen.has(file)) continue;
    seen.add(file);
    try {
      extra.push(await configTarget(await loadConfigFile(file)));
    } catch (err) {
      extra.push({ source: file, error: (err as Error).message });
    }
  }
  if (shim && !defaultTarget) {
    defaultTarget = extra.find((t) => t.source === shim!.source) ?? (await configTarget(shim));
    if (!extra.includes(defaultTarget)) extra.push(defaultTarget);
  }
  for (const t of extra) if (t.error) problems.push(t.error);

  const targets = [...builtins.values(), ...extra];
  const facts = await gatherHostFacts(targets.flatMap((t) => (t.def ? t.def.binariesFor(t.config) : [])));
  const rowOf = (t: Target): DoctorRow => {
    const module = (t.config ?? t.wanted)?.module;
    const mod = module ? { module: { specifier: module.specifier, path: module.path ?? null } } : {};
    if (!t.def) {
      const w = t.wanted;
      return { type: w?.type ?? '?', runtimeEntry: w?.name ?? '-', usable: false, binary: '-', path: null, version: null, reason: t.error ?? 'unknown', details: {}, config: t.source, ...mod };
    }
    let probe: Probe;
    try {
      probe = t.def.assess(facts, t.config);
    } catch (err) {
      // A package's assess that throws is its verdict: not usable, and why.
      probe = { type: t.def.type, runtimeEntry: t.def.runtimeEntry, usable: false, binary: t.def.binary, path: null, version: null, reason: `assess() threw: ${(err as Error).message}`, details: {} };
    }
    return { ...probe, config: t.source, ...mod };
  };
  const rows = targets.map(rowOf);
  const defaultRow = defaultTarget ? rows[targets.indexOf(defaultTarget)] : rows.find((r) => r.type === 'runc' && r.config === 'defaults');
  const defaultType = defaultRow?.type ?? shim?.handler.type ?? 'runc';
  if (configError) problems.push(`default config: ${configError}`);
  else if (defaultTarget?.error) problems.push(`default config ${shim!.source}: its handler cannot be loaded (above)`);
  const ok = !configError && defaultRow !== undefined && defaultRow.usable;

  if (values.json) {
    const report = {
      ok,
      defaultHandler: { type: defaultType, source: shim?.source ?? null, usable: defaultRow?.usable ?? false },
      handlers: rows,
      problems,
    };
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    const lines = [['HANDLER', 'RUNTIME ENTRY', 'USABLE', 'BACKEND VERSION', 'REASON']];
    for (const r of rows) {
      const name = r.module ? (r.module.path ? `${r.type} (module:${r.module.specifier})` : r.type) : r.type;
      const failed = targets[rows.indexOf(r)]!.error !== undefined;
      const reason = failed ? `cannot be loaded (problem below) [${r.config}]` : r.config === 'defaults' || !r.module ? r.reason : `${r.reason} [${r.config}]`;
      lines.push([name, r.runtimeEntry, r.usable ? 'yes' : 'no', r.version ?? '-', reason]);
    }
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

// ---------------------------------------------------------------- install

async function installCommand(cmd: 'install' | 'uninstall', args: string[]): Promise<number> {
  const { install, uninstall, InstallError } = await import('./install/install.js');
  const out = (line: string) => process.stdout.write(`tsshim ${cmd}: ${line}\n`);
  const common = { 'host-root': { type: 'string' }, 'restart-cmd': { type: 'string' }, force: { type: 'boolean' } } as const;
  try {
    if (cmd === 'uninstall') {
      const { values } = parse(args, common);
      if (!values['host-root']) throw new UsageError('uninstall needs --host-root DIR');
      return uninstall({ hostRoot: values['host-root'] as string, restartCmd: values['restart-cmd'] as string | undefined, force: values.force === true, out });
    }
    const { values } = parse(args, {
      ...common,
      'containerd-config': { type: 'string' },
      'containerd-version': { type: 'string' },
      handlers: { type: 'string' },
      'drop-in': { type: 'string' },
      node: { type: 'string' },
      'prefix-paths': { type: 'boolean' },
    });
    if (!values['host-root']) throw new UsageError('install needs --host-root DIR (/ for this machine)');
    const node = (values.node as string | undefined) ?? 'copy';
    if (node !== 'copy' && node !== 'host') throw new UsageError(`--node must be copy or host, got "${node}"`);
    return install({
      hostRoot: values['host-root'] as string,
      containerdConfig: values['containerd-config'] as string | undefined,
      restartCmd: values['restart-cmd'] as string | undefined,
      handlers: selectHandlers(values.handlers as string | undefined),
      containerdVersion: values['containerd-version'] as string | undefined,
      dropIn: values['drop-in'] as string | undefined,
      prefixPaths: values['prefix-paths'] === true,
      node,
      force: values.force === true,
      out,
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // the installer's errors say what to do; the stack only when asked (TSSHIM_DEBUG=1)
    process.stderr.write(`tsshim ${cmd}: ${(err as Error).message}${process.env.TSSHIM_DEBUG === '1' && !(err instanceof InstallError) ? `\n${(err as Error).stack ?? ''}` : ''}\n`);
    return 1;
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
      case 'conformance':
        return await conformance(rest);
      case 'new-handler': {
        const { newHandler } = await import('./new-handler.js');
        const { values, positionals } = parseArgsPositional(rest, { dir: { type: 'string' }, 'tsshim-dep': { type: 'string' } });
        if (positionals.length !== 1) throw new UsageError('new-handler needs one NAME, e.g. tsshim new-handler audit');
        return await newHandler({ name: positionals[0]!, dir: values.dir as string | undefined, tsshimDep: values['tsshim-dep'] as string | undefined });
      }
      case 'install':
      case 'uninstall':
        return await installCommand(cmd, rest);
      case 'node': {
        const [what, ...more] = rest;
        if (what !== 'status' && what !== 'reload') throw new UsageError(what ? `unknown node command "${what}"` : 'node needs a command: status or reload');
        const { values } = parse(more, { json: { type: 'boolean' }, address: { type: 'string' }, ...(what === 'status' ? { 'reset-event-loop': { type: 'boolean' } } : {}) });
        const cli = await import('./node.js');
        const opts = { json: values.json === true, address: values.address as string | undefined };
        return what === 'status' ? await cli.nodeStatus({ ...opts, resetEventLoop: values['reset-event-loop'] === true }) : await cli.nodeReload(opts);
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
