/**
 * tsshim's configuration: which handler serves a task, with which settings.
 * One TOML format for the default file (/etc/tsshim/config.toml) and for the
 * per-runtime-entry files that containerd names through runtime options.
 *
 *   handler = "gvisor"                 # handler type: runc | gvisor | youki | kata | crun | oci, or
 *                                      # "module:<package or path>": a handler package (docs/handlers/sdk.md);
 *                                      # a package resolves like Node's from this file's directory, then
 *                                      # the global node_modules; a relative path is relative to this file
 *   name = "tsshim-gvisor"             # optional display name
 *   binary = "/usr/bin/runsc"          # optional backend binary
 *   root = "/run/containerd/runsc"     # optional backend state root
 *   debug = false                      # raise the shim's log level
 *   allow_annotation_override = []     # handler config files the io.tsshim.handler annotation may pick
 *                                      # (absolute paths; the annotation names one, by path or by file stem)
 *   [options]                          # handler-specific
 *   platform = "ptrace"
 *   [shim]                             # only read from the default file ($TSSHIM_CONFIG or /etc/tsshim/config.toml)
 *   mode = "pod"                       # pod: one shim process per pod (runc-v2's grouping);
 *                                      # node: one daemon per containerd serves every task (ADR 0018)
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { HandlerConfig } from '../shim-api/handler.js';
import { invalidArgument, failedPrecondition } from '../shim-api/errors.js';

export const DEFAULT_CONFIG_PATH = '/etc/tsshim/config.toml';
export const HANDLER_ANNOTATION = 'io.tsshim.handler';

export type ShimMode = 'pod' | 'node';

export interface ShimConfig {
  handler: HandlerConfig;
  /** [shim] mode; meaningful in the default config file only (the launcher reads it there). */
  mode: ShimMode;
  debug: boolean;
  /** Handler config files (absolute paths) the io.tsshim.handler annotation may choose; empty: none. */
  annotationAllowlist: string[];
  /** Where it came from, for messages. */
  source: string;
}

/** `handler = "module:<specifier>"`: a handler package or file, loaded at run time (handler-module.ts). */
export const MODULE_PREFIX = 'module:';

/** The module part of `handler = "module:..."`, checked for form only (resolution is lazy: handler-module.ts). */
function moduleRef(type: string, source: string, dir: string | undefined): NonNullable<HandlerConfig['module']> {
  const specifier = type.slice(MODULE_PREFIX.length);
  const hint = 'name a package ("module:@acme/tsshim-handler-foo"), an absolute path ("module:/opt/handlers/foo/index.js") or a path relative to this file ("module:./foo/index.js")';
  if (!specifier.trim() || specifier !== specifier.trim() || /[\0\n]/.test(specifier)) throw invalidArgument(`tsshim config ${source}: "handler" = ${JSON.stringify(type)}: ${hint}`);
  if ((specifier.startsWith('./') || specifier.startsWith('../')) && !dir) {
    throw invalidArgument(`tsshim config ${source}: "handler" = ${JSON.stringify(type)} is relative, but ${source} is no file to be relative to: use an absolute path or a package name`);
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier)) throw invalidArgument(`tsshim config ${source}: "handler" = ${JSON.stringify(type)}: URLs are not loaded; ${hint}`);
  return { specifier, ...(dir ? { base: dir } : {}) };
}

/**
 * `source` names where the text came from (for messages); `dir` is the directory of the file it
 * was read from, which a relative or package `handler = "module:..."` resolves from (none for runtime
 * options' ConfigBody).
 */
export function parseConfig(text: string, source: string, dir?: string): ShimConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw invalidArgument(`tsshim config ${source}: ${(err as Error).message}`);
  }
  const type = doc.handler ?? 'runc';
  const isModule = typeof type === 'string' && type.startsWith(MODULE_PREFIX);
  if (typeof type !== 'string' || (!isModule && !/^[a-z0-9][a-z0-9-]*$/.test(type))) {
    throw invalidArgument(`tsshim config ${source}: "handler" must be a handler type name such as "runc" or "gvisor", or "module:<package or path>" for a handler package`);
  }
  const module = isModule ? moduleRef(type, source, dir) : undefined;
  const str = (k: string) => {
    const v = doc[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw invalidArgument(`tsshim config ${source}: "${k}" must be a string`);
    return v;
  };
  const options = doc.options ?? {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidArgument(`tsshim config ${source}: [options] must be a table`);
  }
  return {
    handler: { type, name: str('name') ?? type, binary: str('binary'), root: str('root'), options: options as Record<string, unknown>, ...(module ? { module } : {}) },
    mode: shimMode(doc.shim, source),
    debug: doc.debug === true,
    annotationAllowlist: allowlist(doc.allow_annotation_override, source),
    source,
  };
}

function shimMode(table: unknown, source: string): ShimMode {
  if (table === undefined) return 'pod';
  if (typeof table !== 'object' || table === null || Array.isArray(table)) throw invalidArgument(`tsshim config ${source}: [shim] must be a table`);
  const mode = (table as Record<string, unknown>).mode ?? 'pod';
  if (mode !== 'pod' && mode !== 'node') throw invalidArgument(`tsshim config ${source}: [shim] mode must be "pod" or "node", not ${JSON.stringify(mode)}`);
  return mode;
}

function allowlist(v: unknown, source: string): string[] {
  if (v === undefined || v === false) return [];
  const hint = 'name the handler config files (absolute paths) the io.tsshim.handler annotation may choose, e.g. allow_annotation_override = ["/etc/tsshim/gvisor.toml"]';
  if (!Array.isArray(v)) throw invalidArgument(`tsshim config ${source}: "allow_annotation_override" must be a list of files: ${hint}`);
  for (const f of v) {
    if (typeof f !== 'string' || !f.startsWith('/')) throw invalidArgument(`tsshim config ${source}: "allow_annotation_override" holds ${JSON.stringify(f)}, not an absolute path: ${hint}`);
  }
  return v as string[];
}

/** The allowlisted file an annotation value names (its path, or its file name without .toml); undefined if none. */
export function allowlisted(cfg: ShimConfig, wanted: string): string | undefined {
  return cfg.annotationAllowlist.find((f) => f === wanted || f.slice(f.lastIndexOf('/') + 1).replace(/\.toml$/, '') === wanted);
}

export async function loadConfigFile(file: string): Promise<ShimConfig> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw failedPrecondition(`cannot read tsshim config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfig(text, file, path.dirname(path.resolve(file)));
}

/** The default config: $TSSHIM_CONFIG, else /etc/tsshim/config.toml when present, else runc. */
export async function defaultConfig(env = process.env): Promise<ShimConfig> {
  const file = env.TSSHIM_CONFIG || DEFAULT_CONFIG_PATH;
  try {
    return parseConfig(await fsp.readFile(file, 'utf8'), file, path.dirname(path.resolve(file)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if ((err as NodeJS.ErrnoException).code) throw failedPrecondition(`cannot read tsshim config ${file}: ${(err as NodeJS.ErrnoException).code}`);
      throw err;
    }
  }
  return { handler: { type: 'runc', name: 'runc', options: {} }, mode: 'pod', debug: false, annotationAllowlist: [], source: 'built-in default' };
}
