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
 *   [log]                              # default file only (ADR 0025)
 *   format = "auto"                    # auto: containerd's own ([debug] format of its config); logfmt; json
 *   [metrics]                          # default file only; off unless an address is given (ADR 0025)
 *   address = "unix:///run/tsshim/metrics.sock"   # or "127.0.0.1:9464" (loopback only): node mode's endpoint
 *   pod_dir = "/run/tsshim/metrics"    # pod mode: each pod's shim serves <pod_dir>/<its socket's name>.sock
 *   [tracing]                          # default file only; off unless an endpoint is given (or OTEL_EXPORTER_OTLP_*)
 *   endpoint = "http://127.0.0.1:4318/v1/traces"  # OTLP/HTTP (protobuf)
 *   sample_ratio = 1.0                 # for traces containerd did not start (its sampled flag is obeyed)
 *   service_name = "tsshim"
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { HandlerConfig } from '../shim-api/handler.js';
import { invalidArgument, failedPrecondition } from '../shim-api/errors.js';

export const DEFAULT_CONFIG_PATH = '/etc/tsshim/config.toml';
export const HANDLER_ANNOTATION = 'io.tsshim.handler';

export type ShimMode = 'pod' | 'node';

/** Observability settings of the default config (ADR 0025). */
export interface ObserveConfig {
  /** auto: follow containerd's `[debug] format` (read from its config file) */
  logFormat: 'auto' | 'logfmt' | 'json';
  /** node mode's endpoint: `unix:///path` or `host:port` on loopback */
  metricsAddress?: string;
  /** pod mode: directory of the per-shim metrics sockets */
  metricsPodDir?: string;
  tracing?: { endpoint: string; sampleRatio: number; serviceName: string };
}

export interface ShimConfig {
  handler: HandlerConfig;
  /** [shim] mode; meaningful in the default config file only (the launcher reads it there). */
  mode: ShimMode;
  debug: boolean;
  /** Handler config files (absolute paths) the io.tsshim.handler annotation may choose; empty: none. */
  annotationAllowlist: string[];
  observe: ObserveConfig;
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
    observe: observeConfig(doc, source),
    source,
  };
}

function table(doc: Record<string, unknown>, name: string, source: string): Record<string, unknown> {
  const t = doc[name] ?? {};
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw invalidArgument(`tsshim config ${source}: [${name}] must be a table`);
  return t as Record<string, unknown>;
}

function optString(t: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = t[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw invalidArgument(`${where}: "${key}" must be a string`);
  return v;
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])$/;

/** `unix:///abs/path` or `host:port` with a loopback host: the metrics endpoint has no authentication. */
export function parseMetricsAddress(address: string, where = 'metrics address'): { path: string } | { host: string; port: number } {
  if (address.startsWith('unix://')) {
    const p = address.slice('unix://'.length);
    if (!p.startsWith('/')) throw invalidArgument(`${where} ${JSON.stringify(address)}: a unix socket needs an absolute path (unix:///run/tsshim/metrics.sock)`);
    return { path: p };
  }
  const m = /^(.*):(\d{1,5})$/.exec(address);
  if (!m || !LOOPBACK.test(m[1]!)) {
    throw invalidArgument(`${where} ${JSON.stringify(address)}: use "unix:///path/to.sock" or a loopback "127.0.0.1:PORT" / "[::1]:PORT" (the endpoint has no authentication; put a proxy in front to expose it)`);
  }
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw invalidArgument(`${where} ${JSON.stringify(address)}: port must be 1..65535`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function observeConfig(doc: Record<string, unknown>, source: string): ObserveConfig {
  const log = table(doc, 'log', source);
  const format = log.format ?? 'auto';
  if (format !== 'auto' && format !== 'logfmt' && format !== 'json') {
    throw invalidArgument(`tsshim config ${source}: [log] format must be "auto", "logfmt" or "json", not ${JSON.stringify(format)}`);
  }
  const out: ObserveConfig = { logFormat: format };
  const m = table(doc, 'metrics', source);
  const address = optString(m, 'address', `tsshim config ${source} [metrics]`);
  if (address) {
    parseMetricsAddress(address, `tsshim config ${source}: [metrics] address`);
    out.metricsAddress = address;
  }
  const podDir = optString(m, 'pod_dir', `tsshim config ${source} [metrics]`);
  if (podDir) {
    if (!podDir.startsWith('/')) throw invalidArgument(`tsshim config ${source}: [metrics] pod_dir must be an absolute directory, not ${JSON.stringify(podDir)}`);
    out.metricsPodDir = podDir;
  }
  const tr = table(doc, 'tracing', source);
  const endpoint = optString(tr, 'endpoint', `tsshim config ${source} [tracing]`);
  if (endpoint) {
    if (!/^https?:\/\/[^/]/.test(endpoint)) throw invalidArgument(`tsshim config ${source}: [tracing] endpoint must be an OTLP/HTTP URL such as "http://127.0.0.1:4318/v1/traces", not ${JSON.stringify(endpoint)}`);
    const ratio = tr.sample_ratio ?? 1;
    if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) throw invalidArgument(`tsshim config ${source}: [tracing] sample_ratio must be a number from 0 to 1`);
    out.tracing = { endpoint, sampleRatio: ratio, serviceName: optString(tr, 'service_name', `tsshim config ${source} [tracing]`) ?? 'tsshim' };
  }
  return out;
}

/**
 * The tracing endpoint when the config names none: the OpenTelemetry environment variables,
 * which containerd passes on to its shims (containerd 2.x is configured for OTLP by the same
 * variables). Only OTLP/HTTP protobuf; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off.
 */
export function tracingFromEnv(env: NodeJS.ProcessEnv): ObserveConfig['tracing'] {
  if (/^true$/i.test(env.OTEL_SDK_DISABLED ?? '') || env.OTEL_TRACES_EXPORTER === 'none') return undefined;
  const proto = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf';
  if (proto !== 'http/protobuf') return undefined;
  let endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (!endpoint && env.OTEL_EXPORTER_OTLP_ENDPOINT) endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/traces';
  if (!endpoint || !/^https?:\/\//.test(endpoint)) return undefined;
  return { endpoint, sampleRatio: 1, serviceName: 'tsshim' };
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
  return { handler: { type: 'runc', name: 'runc', options: {} }, mode: 'pod', debug: false, annotationAllowlist: [], observe: { logFormat: 'auto' }, source: 'built-in default' };
}
